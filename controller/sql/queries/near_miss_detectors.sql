-- The same findings per detector id (the finding type written in the record).
-- Parameters: since day, until day, since, until (ISO 8601).
SELECT
    f.location AS location,
    f.detector AS detector,
    coalesce(c.category, '(unmapped)') AS category,
    f.decision AS decision,
    count(DISTINCT f.request_id) AS requests,
    sum(f.n) AS findings
FROM request_findings AS f
LEFT JOIN detector_categories AS c ON c.detector = f.detector
WHERE f.day BETWEEN ? AND ?
  AND from_iso8601_timestamp(f."time") >= from_iso8601_timestamp(?)
  AND from_iso8601_timestamp(f."time") < from_iso8601_timestamp(?)
  AND NOT f."eval"
GROUP BY 1, 2, 3, 4
ORDER BY 1, 2, 3, 4
