-- The request log as DuckDB sees it locally: the JSONL files controller.request_log.JsonlSink
-- writes under <state>/requests/ (schema controller/schemas/request-record.v1.json).
-- controller.review replaces @files@ with a list literal of those files; the column list is the
-- schema's, and must stay identical to athena/requests.sql (tests/test_review.py checks both).
-- After this script, DuckDB and Athena expose the same relations to controller/sql/queries/:
--   requests          one row per record, plus day = the record's UTC date (Athena: partition)
--   request_findings  one row per (record, location, detector) with the finding count n
--   from_iso8601_timestamp(text)  Trino's function, so the queries are the same text

CREATE OR REPLACE TEMP MACRO from_iso8601_timestamp(s) AS CAST(s AS TIMESTAMPTZ);

CREATE OR REPLACE TEMP VIEW requests AS
SELECT *, substr("time", 1, 10) AS day
FROM read_json(@files@, format = 'newline_delimited', columns = {
    'schema': 'VARCHAR',
    'request_id': 'VARCHAR',
    'time': 'VARCHAR',
    'workflow': 'VARCHAR',
    'eval': 'BOOLEAN',
    'subject': 'VARCHAR',
    'groups': 'VARCHAR[]',
    'release': 'VARCHAR',
    'cohort': 'STRUCT(name VARCHAR, variant VARCHAR, reason VARCHAR)',
    'kill_switch': 'STRUCT(engaged BOOLEAN, reason VARCHAR)',
    'prompt_template': 'STRUCT(id VARCHAR, version BIGINT, sha256 VARCHAR)',
    'context_sources': 'VARCHAR[]',
    'model': 'STRUCT(adapter VARCHAR, id VARCHAR)',
    'prompt': 'VARCHAR',
    'output': 'VARCHAR',
    'findings': 'MAP(VARCHAR, MAP(VARCHAR, BIGINT))',
    'decision': 'VARCHAR',
    'reason': 'VARCHAR',
    'requires_human_verification': 'BOOLEAN',
    'error': 'VARCHAR',
    'latency_ms': 'MAP(VARCHAR, DOUBLE)'
});

CREATE OR REPLACE TEMP VIEW request_findings AS
WITH by_location AS (
    SELECT r.request_id, r.day, r."time", r."eval", r.decision, unnest(map_entries(r.findings)) AS l
    FROM requests AS r
)
SELECT request_id, day, "time", "eval", decision, location, d.key AS detector, d.value AS n
FROM (SELECT *, l.key AS location, unnest(map_entries(l.value)) AS d FROM by_location);
