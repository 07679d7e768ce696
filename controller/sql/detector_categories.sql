-- Detector id -> the bundle's forbidden category and its action (block | redact), rendered from
-- the bundle by controller.review (controller.boundaries.resolve_detectors); the request log
-- records detector ids only. DuckDB creates it as a TEMP view, Athena as a view.
CREATE OR REPLACE {{temp}}VIEW detector_categories AS
SELECT * FROM (
VALUES
{{rows}}
) AS t (detector, category, action)
