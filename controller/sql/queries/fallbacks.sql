-- Requests answered with the documented fallback (model failure, no cohort, release
-- unavailable) or disabled (kill switch, unreadable flags), by the reason's first clause.
-- Parameters: since day, until day, since, until (ISO 8601).
SELECT
    r.decision AS decision,
    split_part(r.reason, ':', 1) AS reason,
    count(*) AS requests
FROM requests AS r
WHERE r.day BETWEEN ? AND ?
  AND from_iso8601_timestamp(r."time") >= from_iso8601_timestamp(?)
  AND from_iso8601_timestamp(r."time") < from_iso8601_timestamp(?)
  AND NOT r."eval"
  AND r.decision IN ('fallback', 'disabled')
GROUP BY 1, 2
ORDER BY 1, 2
