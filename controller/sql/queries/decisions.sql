-- Records by decision, eval and user traffic apart, and how many lack a field the audit trail
-- needs (subject: the verified identity; release, prompt template, context sources, model and
-- output: what was asked of which model and what it said).
-- Parameters: since day, until day, since, until (ISO 8601).
SELECT
    r."eval" AS is_eval,
    r.decision AS decision,
    count(*) AS records,
    sum(CASE WHEN r.subject IS NULL THEN 1 ELSE 0 END) AS without_subject,
    sum(CASE WHEN r."release" IS NULL THEN 1 ELSE 0 END) AS without_release,
    sum(CASE WHEN r.prompt_template IS NULL THEN 1 ELSE 0 END) AS without_prompt_template,
    sum(CASE WHEN r.context_sources IS NULL THEN 1 ELSE 0 END) AS without_context_sources,
    sum(CASE WHEN r.model IS NULL THEN 1 ELSE 0 END) AS without_model,
    sum(CASE WHEN r.output IS NULL THEN 1 ELSE 0 END) AS without_output,
    min(r."time") AS first_time,
    max(r."time") AS last_time
FROM requests AS r
WHERE r.day BETWEEN ? AND ?
  AND from_iso8601_timestamp(r."time") >= from_iso8601_timestamp(?)
  AND from_iso8601_timestamp(r."time") < from_iso8601_timestamp(?)
GROUP BY 1, 2
ORDER BY 1, 2
