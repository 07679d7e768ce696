-- The logged (already redacted) prompts and outputs, for re-scanning with the bundle's
-- detectors: a value found here was written to the audit trail unredacted.
-- Parameters: since day, until day, since, until (ISO 8601).
SELECT
    r.request_id AS request_id,
    r."eval" AS is_eval,
    r."release" AS release_digest,
    r.decision AS decision,
    r.prompt AS prompt,
    r.output AS output
FROM requests AS r
WHERE r.day BETWEEN ? AND ?
  AND from_iso8601_timestamp(r."time") >= from_iso8601_timestamp(?)
  AND from_iso8601_timestamp(r."time") < from_iso8601_timestamp(?)
  AND (r.prompt IS NOT NULL OR r.output IS NOT NULL)
ORDER BY r."time", r.request_id
