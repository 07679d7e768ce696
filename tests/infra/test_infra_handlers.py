"""The Lambda handlers: the redaction drain's pure parts, and the thin entry points' laziness."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import sys
import types
from typing import Any

import pytest
from infra_mocks import PROJECT

from infra.handlers import redaction
from infra.handlers.redaction import AuditTarget, audit_key_for, drain_event, parse_log, redact_log

TARGET = AuditTarget("audit-bucket", "invocations/", "arn:aws:kms:eu-west-1:123456789012:key/k")


def upper_secret(text: str) -> tuple[str, dict[str, int]]:
    """A stand-in redactor: 'SECRET' -> placeholder."""
    count = text.count("SECRET")
    return text.replace("SECRET", "[REDACTED:test]"), ({"test": count} if count else {})


def test_parse_log_reads_json_json_lines_and_gzip():
    record = {"modelId": "m", "input": {"inputBodyJson": {"messages": ["hi"]}}}
    as_json = json.dumps(record).encode()
    as_lines = b"\n".join([as_json, as_json, b""])
    assert parse_log(as_json) == [record]
    assert parse_log(as_lines) == [record, record]
    assert parse_log(gzip.compress(as_lines)) == [record, record]
    assert parse_log(json.dumps([record]).encode()) == [record]
    assert parse_log(b"  \n") == []


def test_redact_log_redacts_every_string_at_any_depth_and_counts_findings():
    record = {"requestId": "r-1", "schemaType": "ModelInvocationLog", "input": {
        "inputBodyJson": {"messages": [{"role": "user", "content": [{"text": "my SECRET and SECRET"}]}]},
        "inputTokenCount": 12}, "output": {"outputBodyJson": {"text": "no SECRET here"}}}  # fmt: skip
    result = redact_log(json.dumps(record).encode(), upper_secret)
    (out,) = [json.loads(line) for line in gzip.decompress(result.body).decode().splitlines()]
    assert out["input"]["inputBodyJson"]["messages"][0]["content"][0]["text"] == (
        "my [REDACTED:test] and [REDACTED:test]"
    )
    assert out["output"]["outputBodyJson"]["text"] == "no [REDACTED:test] here"
    assert out["input"]["inputTokenCount"] == 12 and out["requestId"] == "r-1"
    assert "SECRET" not in gzip.decompress(result.body).decode()
    assert (result.records, result.findings) == (1, {"test": 3})


def test_redacted_output_is_deterministic():
    body = json.dumps({"a": "SECRET"}).encode()
    assert redact_log(body, upper_secret).body == redact_log(body, upper_secret).body


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("bedrock/AWSLogs/1/BedrockModelInvocationLogs/eu-west-1/2024/01/01/00/x.json.gz",
         "invocations/bedrock/AWSLogs/1/BedrockModelInvocationLogs/eu-west-1/2024/01/01/00/x.jsonl.gz"),
        ("bedrock/a.json", "invocations/bedrock/a.jsonl.gz"),
        ("bedrock/a", "invocations/bedrock/a.jsonl.gz"),
    ],
)  # fmt: skip
def test_audit_key_keeps_the_raw_path(raw, expected):
    assert audit_key_for(raw, "invocations/") == expected


class FakeS3:
    """The three calls the drain makes, in memory; ``fail_put`` simulates a refused write."""

    def __init__(self, objects: dict[tuple[str, str], bytes], fail_put: bool = False):
        self.objects = dict(objects)
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.fail_put = fail_put

    def get_object(self, **kw: Any) -> dict[str, Any]:
        self.calls.append(("get", kw))
        return {"Body": io.BytesIO(self.objects[(kw["Bucket"], kw["Key"])])}

    def put_object(self, **kw: Any) -> dict[str, Any]:
        self.calls.append(("put", kw))
        if self.fail_put:
            raise RuntimeError("AccessDenied")
        self.objects[(kw["Bucket"], kw["Key"])] = kw["Body"]
        return {}

    def delete_object(self, **kw: Any) -> dict[str, Any]:
        self.calls.append(("delete", kw))
        del self.objects[(kw["Bucket"], kw["Key"])]
        return {}


def s3_event(bucket: str, key: str, version: str | None = "v1") -> dict[str, Any]:
    obj: dict[str, Any] = {"key": key}
    if version:
        obj["versionId"] = version
    return {"Records": [{"eventSource": "aws:s3", "s3": {"bucket": {"name": bucket}, "object": obj}}]}


def test_drain_writes_the_redacted_copy_with_sse_kms_then_deletes_the_raw_version():
    raw_key = "bedrock/a b.json.gz"
    s3 = FakeS3({("raw", raw_key): gzip.compress(b'{"text": "SECRET"}')})
    (summary,) = drain_event(s3_event("raw", "bedrock/a+b.json.gz"), s3, upper_secret, TARGET)
    assert [c for c, _ in s3.calls] == ["get", "put", "delete"]  # never delete before the copy
    get, put, delete = (kw for _, kw in s3.calls)
    assert get == {"Bucket": "raw", "Key": raw_key, "VersionId": "v1"}
    assert put["Bucket"] == "audit-bucket" and put["Key"] == "invocations/bedrock/a b.jsonl.gz"
    assert (put["ServerSideEncryption"], put["SSEKMSKeyId"]) == ("aws:kms", TARGET.kms_key_arn)
    assert put["Metadata"]["findings"] == "test=1" and "SECRET" not in json.dumps(put["Metadata"])
    assert b"SECRET" not in gzip.decompress(put["Body"])
    assert delete == {"Bucket": "raw", "Key": raw_key, "VersionId": "v1"}
    assert ("raw", raw_key) not in s3.objects
    assert summary == {"raw": raw_key, "audit": put["Key"], "records": 1, "findings": {"test": 1}}


def test_a_failed_write_keeps_the_raw_object_and_raises_for_retry():
    s3 = FakeS3({("raw", "bedrock/a.json"): b'{"text": "SECRET"}'}, fail_put=True)
    with pytest.raises(RuntimeError):
        drain_event(s3_event("raw", "bedrock/a.json", version=None), s3, upper_secret, TARGET)
    assert ("raw", "bedrock/a.json") in s3.objects
    assert "delete" not in [c for c, _ in s3.calls]


def test_a_non_s3_event_is_an_error():
    with pytest.raises(ValueError):
        drain_event({"Records": [{"s3": {}}]}, FakeS3({}), upper_secret, TARGET)


def test_the_bundles_redactor_replaces_every_forbidden_category(bundle):
    redact = redaction.build_text_redactor(bundle)
    text, counts = redact(
        "key AKIAZ3X7Q2LMNPRT4VWB, mail jane.doe@example.com, see INC-20431 and MRN-0042137"
    )
    assert "AKIAZ3X7Q2LMNPRT4VWB" not in text and "jane.doe@example.com" not in text
    assert "INC-20431" not in text and "MRN-0042137" not in text  # "block" categories too
    assert "[REDACTED:" in text and sum(counts.values()) >= 4
    record = {"input": {"text": "mail jane.doe@example.com"}, "tokens": 3}
    result = redact_log(json.dumps(record).encode(), redact)
    assert b"jane.doe@example.com" not in gzip.decompress(result.body)


def test_handlers_import_nothing_heavy_at_module_load():
    code = (
        "import sys; import infra.handlers.gateway, infra.handlers.reconcile, infra.handlers.redaction; "
        "heavy = [m for m in ('boto3', 'controller.gateway.lambda_handler', 'controller.gateway.handler', "
        "'controller.service.rollout', 'controller.boundaries.redactor') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=PROJECT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_gateway_handler_delegates_to_the_controller(monkeypatch):
    from infra.handlers import gateway

    seen = []
    fake = types.ModuleType("controller.gateway.lambda_handler")
    fake.handle_lambda_event = lambda event, context: seen.append((event, context)) or {"statusCode": 200}
    monkeypatch.setitem(sys.modules, "controller.gateway.lambda_handler", fake)
    assert gateway.handler({"rawPath": "/v1/ask"}, "ctx") == {"statusCode": 200}
    assert seen == [({"rawPath": "/v1/ask"}, "ctx")]


# --- scheduled reconcile ---------------------------------------------------------------------


class FlagBucket:
    def __init__(self, live: bytes | None = None):
        self.objects: dict[tuple[str, str], bytes] = {}
        self.puts: list[dict[str, Any]] = []
        if live is not None:
            self.objects[("flags-bucket", "flags/wf.flagd.json")] = live

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:  # noqa: N803 - boto3's names
        from botocore.exceptions import ClientError

        if (Bucket, Key) not in self.objects:
            raise ClientError({"Error": {"Code": "NoSuchKey"}}, "GetObject")
        return {"Body": io.BytesIO(self.objects[(Bucket, Key)])}

    def put_object(self, **kw: Any) -> dict[str, Any]:
        self.puts.append(kw)
        self.objects[(kw["Bucket"], kw["Key"])] = kw["Body"]
        return {}


def reconcile_once(bundle, s3, tmp_path) -> dict[str, Any]:
    from controller.adapters import MemoryStore
    from infra.handlers.reconcile import run_reconcile

    return run_reconcile(bundle, MemoryStore(), s3, flags_bucket="flags-bucket",
                         flags_key="flags/wf.flagd.json", kms_key_id="arn:kms:k", workdir=tmp_path)  # fmt: skip


def kill_doc(bundle, engaged: bool) -> bytes:
    doc = json.loads(bundle.flags_path.read_text())
    doc["flags"][bundle.workflow.rollout.kill_switch_flag]["defaultVariant"] = "engaged" if engaged else "released"
    return json.dumps(doc).encode()


def test_reconcile_publishes_the_rendered_flags_with_sse_kms(bundle, tmp_path):
    s3 = FlagBucket()
    report = reconcile_once(bundle, s3, tmp_path)
    (put,) = s3.puts
    assert (put["ServerSideEncryption"], put["SSEKMSKeyId"]) == ("aws:kms", "arn:kms:k")
    doc = json.loads(put["Body"])
    assert bundle.workflow.rollout.release_flag in doc["flags"]
    assert report["published"]["written"] is True and report["ok"] is True


def test_reconcile_never_releases_a_kill_it_did_not_record(bundle, tmp_path):
    s3 = FlagBucket(live=kill_doc(bundle, engaged=True))
    report = reconcile_once(bundle, s3, tmp_path)
    assert s3.puts == []
    assert "kill switch engaged" in report["published"]["held_because"]
