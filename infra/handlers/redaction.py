"""Lambda: drain one raw Bedrock invocation log into the audit bucket, redacted.

Triggered by ``s3:ObjectCreated:*`` on the raw bucket. For each object: read it (JSON or JSON
Lines, gzip or not), redact every string value with the project's own engine -- the
detectors of every forbidden category in the bundle, via ``controller.boundaries`` and
``controller.boundaries.redactor``, the same code as ``rollout redact`` -- write the records as gzip
JSON Lines to the audit bucket with SSE-KMS (the audit key), and only then delete the raw
object version. Any failure raises, so Lambda retries and finally dead-letters the event; the
raw object is never deleted before its redacted copy is stored.

In a log every finding is replaced, whatever the bundle's action for its category: the
redactor redacts blocking findings too, and "block" (refuse the request) is a decision about a
live request, not about a record of one. Values are never logged by this function; findings
are counted by type in the audit object's metadata.

Environment (set by the RedactionFunction component): ``ROLLOUT_WORKFLOW`` (bundle directory
inside the archive), ``ROLLOUT_AUDIT_BUCKET``, ``ROLLOUT_AUDIT_PREFIX``,
``ROLLOUT_AUDIT_KMS_KEY`` (the audit key's ARN). boto3 is imported only in ``handler`` so the
pure parts run anywhere.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

__all__ = [
    "AuditTarget",
    "Redacted",
    "TextRedactor",
    "audit_key_for",
    "build_text_redactor",
    "drain_event",
    "handler",
    "parse_log",
    "redact_log",
    "redact_value",
]

TextRedactor = Callable[[str], tuple[str, Mapping[str, int]]]
"""Text in, (redacted text, finding counts by type) out."""

_GZIP_MAGIC = b"\x1f\x8b"


@dataclass
class Redacted:
    """A redacted log object: gzip JSON Lines and the finding counts by type (no values)."""

    body: bytes
    records: int
    findings: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class AuditTarget:
    bucket: str
    prefix: str
    kms_key_arn: str


# --- pure ------------------------------------------------------------------------------------


def redact_value(value: Any, redact: TextRedactor, findings: dict[str, int]) -> Any:
    """``value`` with every string (at any depth) redacted; keys are schema, left as they are."""
    if isinstance(value, str):
        text, found = redact(value)
        for kind, count in found.items():
            findings[kind] = findings.get(kind, 0) + count
        return text
    if isinstance(value, Mapping):
        return {key: redact_value(item, redact, findings) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(item, redact, findings) for item in value]
    return value


def parse_log(body: bytes) -> list[Any]:
    """The records of one invocation-log object: gzip or plain; one JSON document or JSON Lines."""
    if body[:2] == _GZIP_MAGIC:
        body = gzip.decompress(body)
    text = body.decode("utf-8")
    if not text.strip():
        return []
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    return doc if isinstance(doc, list) else [doc]


def redact_log(body: bytes, redact: TextRedactor) -> Redacted:
    """Parse, redact every string, re-serialise as gzip JSON Lines (deterministic bytes)."""
    findings: dict[str, int] = {}
    records = [redact_value(record, redact, findings) for record in parse_log(body)]
    lines = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in records)
    return Redacted(gzip.compress(lines.encode("utf-8"), mtime=0), len(records), findings)


def audit_key_for(raw_key: str, prefix: str) -> str:
    """Where the redacted copy of ``raw_key`` goes: same relative path, always ``.jsonl.gz``."""
    name = raw_key.lstrip("/")
    for suffix in (".json.gz", ".jsonl.gz", ".gz", ".json", ".jsonl"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return f"{prefix.rstrip('/')}/{name}.jsonl.gz" if prefix else f"{name}.jsonl.gz"


def _s3_objects(event: Mapping[str, Any]) -> Iterable[tuple[str, str, str | None]]:
    for record in event.get("Records", ()):
        s3 = record.get("s3") or {}
        obj = s3.get("object") or {}
        bucket = (s3.get("bucket") or {}).get("name")
        key = obj.get("key")
        if not bucket or not key:
            raise ValueError("not an S3 object-created event record")
        # S3 event keys are URL-encoded with '+' for spaces.
        yield bucket, unquote_plus(key), obj.get("versionId")


def drain_event(
    event: Mapping[str, Any], s3: Any, redact: TextRedactor, target: AuditTarget
) -> list[dict[str, Any]]:
    """Redact each object of an S3 event into the audit bucket, then delete the raw version.

    ``s3`` is a boto3-style S3 client (``get_object``/``put_object``/``delete_object``), so
    tests pass an in-memory fake. Returns one summary per object (keys and counts, no values).
    """
    done = []
    for bucket, key, version in _s3_objects(event):
        version_arg = {"VersionId": version} if version else {}
        raw = s3.get_object(Bucket=bucket, Key=key, **version_arg)["Body"].read()
        redacted = redact_log(raw, redact)
        audit_key = audit_key_for(key, target.prefix)
        metadata = {
            "source-bucket": bucket,
            "records": str(redacted.records),
            "findings": ",".join(f"{k}={v}" for k, v in sorted(redacted.findings.items())),
        }
        s3.put_object(
            Bucket=target.bucket,
            Key=audit_key,
            Body=redacted.body,
            ContentType="application/x-ndjson",
            ContentEncoding="gzip",
            ServerSideEncryption="aws:kms",
            SSEKMSKeyId=target.kms_key_arn,
            Metadata=metadata,
        )
        # Deleting the exact version removes the raw data now, not at lifecycle expiry.
        s3.delete_object(Bucket=bucket, Key=key, **version_arg)
        done.append({"raw": key, "audit": audit_key, "records": redacted.records,
                     "findings": dict(sorted(redacted.findings.items()))})  # fmt: skip
    return done


# --- wiring ----------------------------------------------------------------------------------


def build_text_redactor(bundle: Any) -> TextRedactor:
    """The bundle's detectors for every forbidden category and its actions -- the redactor the
    gateway and ``rollout redact`` build -- as a text -> (redacted text, counts) function."""
    from controller.boundaries.redactor import bundle_redactor, summarize

    redactor = bundle_redactor(bundle.workflow.data_boundaries)

    def redact(text: str) -> tuple[str, dict[str, int]]:
        result = redactor.apply(text)
        return result.text, summarize(result.findings)  # blocked or not, the text is redacted

    return redact


_redact: TextRedactor | None = None


def _task_root() -> Path:
    return Path(os.environ.get("LAMBDA_TASK_ROOT") or Path(__file__).resolve().parents[2])


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    global _redact
    import boto3  # only in the Lambda runtime

    from controller.bundle.models import load_bundle

    if _redact is None:  # once per cold start
        _redact = build_text_redactor(load_bundle(_task_root() / os.environ["ROLLOUT_WORKFLOW"]))
    target = AuditTarget(
        bucket=os.environ["ROLLOUT_AUDIT_BUCKET"],
        prefix=os.environ.get("ROLLOUT_AUDIT_PREFIX", "invocations/"),
        kms_key_arn=os.environ["ROLLOUT_AUDIT_KMS_KEY"],
    )
    return {"drained": drain_event(event, boto3.client("s3"), _redact, target)}
