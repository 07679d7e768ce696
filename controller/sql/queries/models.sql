-- Which release and model answered user requests (eval records excluded).
-- Parameters: since day, until day, since, until (ISO 8601).
SELECT
    r."release" AS release_digest,
    r.model.adapter AS adapter,
    r.model.id AS model_id,
    count(*) AS requests
FROM requests AS r
WHERE r.day BETWEEN ? AND ?
  AND from_iso8601_timestamp(r."time") >= from_iso8601_timestamp(?)
  AND from_iso8601_timestamp(r."time") < from_iso8601_timestamp(?)
  AND NOT r."eval"
  AND r.decision = 'answered'
GROUP BY 1, 2, 3
ORDER BY 1, 2, 3
