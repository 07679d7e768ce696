-- One row per (record, location, detector): findings are {location: {detector id: count}}.
-- Same columns as the DuckDB view of the same name (duckdb/requests.sql).
CREATE OR REPLACE VIEW request_findings AS
SELECT r.request_id, r.day, r."time", r."eval", r.decision, f.location, d.detector, d.n
FROM requests AS r
CROSS JOIN UNNEST(r.findings) AS f (location, detectors)
CROSS JOIN UNNEST(f.detectors) AS d (detector, n)
