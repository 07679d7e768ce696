-- Usage by day and cohort: the cohort the release flag placed the user in (its variant name,
-- or off) and the release digest that cohort was served. Eval records (golden-set runs) are
-- not usage. Parameters: since day, until day, since, until (ISO 8601).
SELECT
    r.day AS day,
    coalesce(r.cohort.name, '(none)') AS cohort,
    coalesce(r.cohort.variant, '(none)') AS variant,
    count(*) AS requests,
    count(DISTINCT r.subject) AS subjects,
    sum(CASE WHEN r.decision = 'answered' THEN 1 ELSE 0 END) AS answered,
    sum(CASE WHEN r.decision = 'fallback' THEN 1 ELSE 0 END) AS fallback,
    sum(CASE WHEN r.decision = 'blocked' THEN 1 ELSE 0 END) AS blocked,
    sum(CASE WHEN r.decision = 'disabled' THEN 1 ELSE 0 END) AS disabled,
    sum(CASE WHEN r.decision = 'refused' THEN 1 ELSE 0 END) AS refused
FROM requests AS r
WHERE r.day BETWEEN ? AND ?
  AND from_iso8601_timestamp(r."time") >= from_iso8601_timestamp(?)
  AND from_iso8601_timestamp(r."time") < from_iso8601_timestamp(?)
  AND NOT r."eval"
GROUP BY 1, 2, 3
ORDER BY 1, 2, 3
