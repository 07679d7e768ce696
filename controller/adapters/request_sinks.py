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

from controller.ports import REQUEST_SCHEMA, RequestSink

__all__ = [
    "REQUEST_SCHEMA",
    "JsonlSink",
    "MemorySink",
    "RequestSink",
    "S3Sink",
    "read_records",
    "schema_document",
]

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
    """Daily files ``<dir>/YYYY-MM-DD.jsonl`` with group commit: durable before ``write`` returns.

    Guarantee: when ``write(record)`` returns, the record's line is on disk (fdatasync), so a
    response released after it can never outlive its audit record. Concurrent writers share
    the cost: the first becomes the leader, writes every pending line with one O_APPEND
    ``write()`` per file and one fdatasync, and wakes the others; records that arrive during
    that flush form the next group. A failed write or sync raises in every writer of that
    group (their requests then answer 500: no record, no answer). One write() per group keeps
    concurrent processes (``rollout serve --workers N``) from interleaving lines.
    """

    def __init__(self, directory: Path, *, fsync: bool = True):
        self.directory = directory
        self.fsync = fsync
        self._cond = threading.Condition()
        self._fd: int | None = None
        self._day: str | None = None
        self._pending: list[tuple[str, bytes]] = []
        self._seq = 0  # records accepted
        self._durable = 0  # records flushed (or failed) so far
        self._flushing = False
        self._failures: list[tuple[int, int, BaseException]] = []
        self.groups = 0  # flushes done: the number of fdatasync calls (tests, benchmarks)

    def write(self, record: dict[str, Any]) -> None:
        day = str(record.get("time", ""))[:10] or dt.date.today().isoformat()
        data = _line(record)
        with self._cond:
            self._pending.append((day, data))
            self._seq += 1
            mine = self._seq
            while self._durable < mine:
                if self._flushing:
                    self._cond.wait()
                    continue
                self._flush_locked()
            for lo, hi, exc in self._failures:
                if lo < mine <= hi:
                    raise OSError(f"audit record not written to {self.directory}: {exc}") from exc

    def _flush_locked(self) -> None:
        """Lead one group: called with the lock held; releases it while writing."""
        batch, self._pending = self._pending, []
        lo, hi = self._durable, self._seq
        self._flushing = True
        self._cond.release()
        error: BaseException | None = None
        try:
            self._write_batch(batch)
        except BaseException as exc:  # noqa: BLE001 - reported to every writer of the group
            error = exc
        finally:
            self._cond.acquire()
            self._flushing = False
            self._durable = hi
            self.groups += 1
            if error is not None:
                self._failures = [*self._failures[-15:], (lo, hi, error)]
            self._cond.notify_all()

    def _write_batch(self, batch: list[tuple[str, bytes]]) -> None:
        runs: list[tuple[str, list[bytes]]] = []
        for day, data in batch:
            if runs and runs[-1][0] == day:
                runs[-1][1].append(data)
            else:
                runs.append((day, [data]))
        for day, lines in runs:
            if day != self._day:
                self._open(day)
            assert self._fd is not None
            payload = b"".join(lines)
            view = memoryview(payload)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
            if self.fsync:
                os.fdatasync(self._fd)  # data and size; mtime need not hit the disk

    def _open(self, day: str) -> None:
        if self._fd is not None:
            os.close(self._fd)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.directory / f"{day}.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
        self._day = day

    def close(self) -> None:
        with self._cond:
            while self._flushing:
                self._cond.wait()
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
