-- The request audit trail in the audit bucket, for Amazon Athena. The gateway Lambda's S3 sink
-- (controller.request_log.S3Sink) writes batches of JSON lines to
--   s3://{{bucket}}/requests/date=YYYY-MM-DD/<time>-<uuid>.jsonl
-- one record per line, schema controller/schemas/request-record.v1.json. Partition projection
-- on `day` means no MSCK REPAIR / crawler: a new day is queryable as soon as it is written.
-- The column list must stay identical to duckdb/requests.sql (tests/test_review.py checks it).
CREATE EXTERNAL TABLE IF NOT EXISTS requests (
  `schema` string,
  request_id string,
  `time` string,
  workflow string,
  `eval` boolean,
  subject string,
  `groups` array<string>,
  `release` string,
  cohort struct<name:string,variant:string,reason:string>,
  kill_switch struct<engaged:boolean,reason:string>,
  prompt_template struct<id:string,version:bigint,sha256:string>,
  context_sources array<string>,
  model struct<adapter:string,id:string>,
  prompt string,
  output string,
  findings map<string,map<string,bigint>>,
  decision string,
  reason string,
  requires_human_verification boolean,
  error string,
  latency_ms map<string,double>
)
PARTITIONED BY (day string)
ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'
WITH SERDEPROPERTIES ('ignore.malformed.json' = 'false')
LOCATION 's3://{{bucket}}/requests/'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.day.type' = 'date',
  'projection.day.format' = 'yyyy-MM-dd',
  'projection.day.range' = 'NOW-10YEARS,NOW',
  'projection.day.interval' = '1',
  'projection.day.interval.unit' = 'DAYS',
  'storage.location.template' = 's3://{{bucket}}/requests/date=${day}/'
)
