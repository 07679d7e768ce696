-- Forbidden input found, by where (prompt: the user's question; context: retrieved passages;
-- output: the model's answer), the bundle's category and action for the detector, and what the
-- gateway decided. requests counts each request once per category, however many detectors of
-- that category fired; findings is the number of values found. Eval records excluded.
-- Parameters: since day, until day, since, until (ISO 8601).
SELECT
    f.location AS location,
    coalesce(c.category, '(unmapped)') AS category,
    coalesce(c.action, '(unmapped)') AS action,
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
