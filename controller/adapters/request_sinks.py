"""The request audit trail: one record per gateway request, to local JSONL or to S3.

A record carries what the checklist requires (prompt template + version + hash, retrieved
context source ids, model, output) plus who (a keyed pseudonym, groups), which cohort
variant and kill-switch state, the decision and a latency breakdown. Prompt and output are
stored redacted; findings are types and counts, never values. The schema is versioned and
published as ``controller/schemas/request-record.v1.json``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
import uuid
from pathlib import Path
from typing import Any

from controller.ports import RequestSink

__all__ = [
    "REQUEST_SCHEMA",
    "JsonlSink",
    "MemorySink",
    "RequestSink",
    "S3Sink",
    "read_records",
    "schema_document",
]

REQUEST_SCHEMA = "ai-rollout.request/v1"
SCHEMA_PATH = Path(__file__).parents[1] / "schemas" / "request-record.v1.json"


def schema_document() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def _line(record: dict[str, Any]) -> bytes:
    return (json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n").encode()


class MemorySink:
    """Records kept in a list: the test seam and the dry-run sink."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def write(self, record: dict[str, Any]) -> None:
        with self._lock:
            self.records.append(json.loads(_line(record)))

    def close(self) -> None:
        pass


class JsonlSink:
    """Daily files ``<dir>/YYYY-MM-DD.jsonl``; each record is one O_APPEND write, then fdatasync.

    One write() per record keeps concurrent writers (threads of ``rollout serve``, several
    processes) from interleaving lines; fsync makes an answered request's record durable.
    """

    def __init__(self, directory: Path, *, fsync: bool = True):
        self.directory = directory
        self.fsync = fsync
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._day: str | None = None

    def write(self, record: dict[str, Any]) -> None:
        day = str(record.get("time", ""))[:10] or dt.date.today().isoformat()
        data = _line(record)
        with self._lock:
            if day != self._day:
                self._open(day)
            assert self._fd is not None
            os.write(self._fd, data)
            if self.fsync:
                os.fdatasync(self._fd)  # data and size; mtime need not hit the disk

    def _open(self, day: str) -> None:
        if self._fd is not None:
            os.close(self._fd)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.directory / f"{day}.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
        self._day = day

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
                self._day = None


class S3Sink:
    """Batched, create-only JSONL objects under ``<prefix>/date=YYYY-MM-DD/`` with SSE-KMS.

    Objects are never overwritten (``If-None-Match: *``), so the audit bucket's Object Lock
    and versioning see one immutable object per batch. ``close()`` flushes.
    """

    def __init__(
        self,
        client: Any,
        bucket: str,
        prefix: str = "requests",
        *,
        kms_key_id: str | None = None,
        batch_size: int = 100,
    ):
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.kms_key_id = kms_key_id
        self.batch_size = batch_size
        self._buffer: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def write(self, record: dict[str, Any]) -> None:
        with self._lock:
            self._buffer.append(record)
            if len(self._buffer) >= self.batch_size:
                self._flush()

    def flush(self) -> None:
        with self._lock:
            self._flush()

    def _flush(self) -> None:
        if not self._buffer:
            return
        batch, self._buffer = self._buffer, []
        day = str(batch[0].get("time", ""))[:10] or dt.date.today().isoformat()
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        key = f"{self.prefix}/date={day}/{stamp}-{uuid.uuid4().hex}.jsonl"
        extra: dict[str, Any] = {}
        if self.kms_key_id:
            extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.kms_key_id}
        try:
            self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=b"".join(_line(r) for r in batch),
                ContentType="application/x-ndjson",
                IfNoneMatch="*",
                **extra,
            )
        except Exception:
            self._buffer = batch + self._buffer  # keep them for the next flush; never drop records
            raise

    def close(self) -> None:
        self.flush()


def read_records(directory: Path) -> list[dict[str, Any]]:
    """Every record under a JsonlSink directory, oldest file first."""
    out = []
    for path in sorted(directory.glob("*.jsonl")):
        with path.open(encoding="utf-8") as fh:
            out.extend(json.loads(line) for line in fh if line.strip())
    return out
