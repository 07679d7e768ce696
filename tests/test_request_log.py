"""The request audit trail's sinks: local JSONL and S3 (moto's real server on 127.0.0.1),
and the Lambda's flag mirror that fails closed when the flag document goes stale."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from controller.adapters.request_sinks import REQUEST_SCHEMA, JsonlSink, S3Sink, read_records
from controller.gateway.lambda_handler import FLAG_MAX_STALENESS_SECONDS, FlagMirror


def record(i: int, day: str = "2026-11-26") -> dict[str, Any]:
    return {"schema": REQUEST_SCHEMA, "request_id": f"r{i}", "time": f"{day}T10:00:00+00:00", "n": i}


def test_jsonl_sink_writes_daily_files(tmp_path: Path) -> None:
    sink = JsonlSink(tmp_path)
    sink.write(record(1, "2026-11-25"))
    sink.write(record(2, "2026-11-26"))
    sink.write(record(3, "2026-11-26"))
    sink.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2026-11-25.jsonl", "2026-11-26.jsonl"]
    assert [r["n"] for r in read_records(tmp_path)] == [1, 2, 3]


def test_jsonl_sink_never_interleaves_concurrent_records(tmp_path: Path) -> None:
    sink = JsonlSink(tmp_path, fsync=False)
    big = "x" * 20_000  # larger than a pipe buffer: a torn write would show up as bad JSON

    def writer(base: int) -> None:
        for i in range(100):
            sink.write({**record(base + i), "pad": big})

    threads = [threading.Thread(target=writer, args=(k * 1000,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sink.close()
    records = read_records(tmp_path)
    assert len(records) == 800
    assert len({r["n"] for r in records}) == 800


def test_jsonl_sink_appends_across_instances(tmp_path: Path) -> None:
    for i in range(3):
        sink = JsonlSink(tmp_path)
        sink.write(record(i))
        sink.close()
    assert [r["n"] for r in read_records(tmp_path)] == [0, 1, 2]


def test_s3_sink_batches_create_only_kms_encrypted_objects(s3_bucket: Any, s3_client: Any) -> None:
    kms = "arn:aws:kms:eu-west-1:123456789012:key/test-key"
    sink = S3Sink(s3_client, s3_bucket.name, "requests", kms_key_id=kms, batch_size=3)
    for i in range(7):
        sink.write(record(i))
    objects = s3_client.list_objects_v2(Bucket=s3_bucket.name, Prefix="requests/")["Contents"]
    assert len(objects) == 2  # two full batches flushed; one record still buffered
    sink.close()
    objects = s3_client.list_objects_v2(Bucket=s3_bucket.name, Prefix="requests/")["Contents"]
    assert len(objects) == 3
    seen = []
    for obj in objects:
        assert obj["Key"].startswith("requests/date=2026-11-26/")
        got = s3_client.get_object(Bucket=s3_bucket.name, Key=obj["Key"])
        assert got["ServerSideEncryption"] == "aws:kms"
        seen += [json.loads(line)["n"] for line in got["Body"].read().decode().splitlines()]
    assert sorted(seen) == list(range(7))


def test_s3_sink_keeps_records_when_the_bucket_is_unreachable(s3_client: Any) -> None:
    sink = S3Sink(s3_client, "no-such-bucket-for-this-test", batch_size=1)
    with pytest.raises(Exception):  # noqa: B017 - botocore's NoSuchBucket
        sink.write(record(1))
    assert sink._buffer and sink._buffer[0]["n"] == 1  # nothing dropped


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_flag_mirror_copies_refreshes_and_fails_closed_when_stale(s3_bucket: Any, s3_client: Any, tmp_path: Path) -> None:
    key = "flags/internal-docs-qa.flagd.json"
    s3_client.put_object(Bucket=s3_bucket.name, Key=key, Body=b'{"flags": {}, "v": 1}')
    clock = Clock()
    local = tmp_path / "flags.json"
    mirror = FlagMirror(s3_client, s3_bucket.name, key, local, clock=clock)
    mirror.sync()
    assert json.loads(local.read_text())["v"] == 1

    s3_client.put_object(Bucket=s3_bucket.name, Key=key, Body=b'{"flags": {}, "v": 2}')
    mirror.sync()  # within the sync interval: no fetch
    assert json.loads(local.read_text())["v"] == 1
    clock.now += 10
    mirror.sync()
    assert json.loads(local.read_text())["v"] == 2

    clock.now += 10
    mirror.sync()  # unchanged (304): the copy stays fresh
    assert local.exists()

    s3_client.delete_object(Bucket=s3_bucket.name, Key=key)
    clock.now += 10
    mirror.sync()
    assert local.exists(), "a short outage keeps the last good copy"
    clock.now += FLAG_MAX_STALENESS_SECONDS + 1
    mirror.sync()
    assert not local.exists(), "a stale copy is removed so the provider fails closed"


def test_jsonl_group_commit_shares_one_fdatasync_between_concurrent_writers(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import time

    synced: list[int] = []
    real = os.fdatasync

    def slow_sync(fd: int) -> None:
        time.sleep(0.02)  # a slow disk: writers pile up behind the leader's sync
        real(fd)
        synced.append(fd)

    monkeypatch.setattr(os, "fdatasync", slow_sync)
    sink = JsonlSink(tmp_path)
    durable_at_return: list[int] = []

    def writer(base: int) -> None:
        for i in range(10):
            sink.write(record(base + i))
            # the record is on disk (and synced) when write returns
            lines = sum(len(p.read_bytes().splitlines()) for p in tmp_path.glob("*.jsonl"))
            durable_at_return.append(lines >= 1 and bool(synced))

    threads = [threading.Thread(target=writer, args=(k * 100,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sink.close()
    assert len(read_records(tmp_path)) == 80
    assert all(durable_at_return)
    assert sink.groups == len(synced) < 80 / 2  # far fewer syncs than records


def test_jsonl_group_commit_failure_raises_in_the_writer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    sink = JsonlSink(tmp_path)
    sink.write(record(1))

    def broken(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fdatasync", broken)
    with pytest.raises(OSError, match="audit record not written"):
        sink.write(record(2))
    monkeypatch.undo()
    sink.write(record(3))  # the sink recovers once the disk does
    sink.close()
