-- Identities the gateway refused, by reason code (personal-account, expired, wrong-issuer...).
-- Parameters: since day, until day, since, until (ISO 8601).
SELECT
    CASE
        WHEN r.reason LIKE 'identity rejected (%' THEN split_part(split_part(r.reason, '(', 2), ')', 1)
        ELSE r.reason
    END AS reason,
    count(*) AS requests
FROM requests AS r
WHERE r.day BETWEEN ? AND ?
  AND from_iso8601_timestamp(r."time") >= from_iso8601_timestamp(?)
  AND from_iso8601_timestamp(r."time") < from_iso8601_timestamp(?)
  AND NOT r."eval"
  AND r.decision = 'refused'
GROUP BY 1
ORDER BY 1
