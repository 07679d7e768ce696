"""Concurrent operators are serialised: 8 processes x 50 mixed promote / rollback / kill /
release-kill commands against one LocalStore directory (and, with fewer commands, one S3 bucket
on a moto server), each process its own RolloutService, on the real clock.

Afterwards: no lost update (every applied command has its own audit seq, the seqs are exactly
1..N, and each record's ``from`` is the previous record's ``to``: every decision was taken on
the latest state), the chain verifies against the state's head with nothing ahead, the state is
the last record's ``to``, the flag file is the render of the final state, and every refusal
carries its reasons.
"""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import random
import time
from pathlib import Path
from typing import Any

import pytest

from controller.adapters import LocalStore
from controller.core import audit
from controller.errors import Conflict
from controller.service.rollout import RolloutService, render

try:
    from tests.test_rollout import OP, OP2, OP3, digest, store_eval, workflow_with
except ModuleNotFoundError:
    from test_rollout import OP, OP2, OP3, digest, store_eval, workflow_with

WORKERS = 8
# No bake time so promotions can succeed on the real clock; approvals stay as shipped.
WF = workflow_with(internal={"bake_time": "0h"}, limited={"bake_time": "0h"})
RELEASES = (1, 2, 3)


def _open(spec: dict[str, Any]) -> Any:
    if spec["kind"] == "local":
        return LocalStore(spec["root"])
    try:
        from tests.fakes.s3 import make_client
    except ModuleNotFoundError:
        from fakes.s3 import make_client
    from controller.adapters.s3 import S3Store

    return S3Store(spec["bucket"], "rollout", make_client(spec["endpoint"]))


class _LostRaces:
    """Counts the races this process lost (create-only or compare-and-swap said "someone else")."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.lost = inner, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def create(self, key: str, data: bytes) -> None:
        try:
            self.inner.create(key, data)
        except Conflict:
            self.lost += 1
            raise

    def replace(self, key: str, data: bytes, *, expected: str | None) -> str:
        try:
            return self.inner.replace(key, data, expected=expected)
        except Conflict:
            self.lost += 1
            raise


def _worker(spec: dict[str, Any], seed: int, ops: int, start: Any, results: Any) -> None:
    store = _LostRaces(_open(spec))
    service = RolloutService(WF, store, Path(spec["flags"]), release_check=lambda d: None)
    rng = random.Random(seed)
    log: list[tuple[Any, ...]] = []
    start.wait()
    for _ in range(ops):
        kind = rng.choices(["promote", "rollback", "kill", "release-kill"], weights=[5, 2, 1.5, 1.5])[0]
        try:
            if kind == "promote":
                cohort = rng.choice(["internal", "limited", "general"])
                out = service.promote(digest(rng.choice(RELEASES)), cohort, operator=OP, approvers=[OP2, OP3])
            elif kind == "rollback":
                out = service.rollback(operator=OP2, reason=f"worker {seed}")
            elif kind == "kill":
                out = service.kill(operator=f"oncall-{seed}", reason=f"worker {seed}")
            else:
                out = service.release_kill(operator=OP3, reason=f"worker {seed}")
        except Conflict as exc:
            log.append(("conflict", kind, str(exc)))
            continue
        if out.refused:
            log.append(("refused", kind, [(str(r.code), r.message) for r in out.reasons]))
        elif out.changed:
            log.append(("applied", kind, out.record.seq))
        else:
            log.append(("noop", kind, out.reasons[0].message))
    log.append(("races-lost", store.lost))
    results.put((seed, log))


def _hammer(spec: dict[str, Any], ops: int) -> tuple[list[tuple[Any, ...]], float]:
    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(spec, seed, ops, start, results)) for seed in range(WORKERS)]
    for p in procs:
        p.start()
    time.sleep(0.5)  # let the interpreters come up so the work really overlaps
    began = time.monotonic()
    start.set()
    logs = [results.get(timeout=240) for _ in procs]
    elapsed = time.monotonic() - began
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    return [entry for _, log in sorted(logs) for entry in log], elapsed


def _check(store: Any, flags: Path, entries: list[tuple[Any, ...]], total: int) -> dict[str, int]:
    counts = {k: sum(1 for e in entries if e[0] == k) for k in ("applied", "noop", "refused", "conflict")}
    assert sum(counts.values()) == total
    counts["races-lost"] = sum(e[1] for e in entries if e[0] == "races-lost")
    assert counts["conflict"] == 0, [e for e in entries if e[0] == "conflict"][:3]
    for entry in entries:
        if entry[0] == "refused":
            assert entry[2] and all(code and message for code, message in entry[2]), entry

    service = RolloutService(WF, store, flags, release_check=lambda d: None)
    state = service.load(repair=False).state
    records = service.history()
    applied = sorted(e[2] for e in entries if e[0] == "applied")
    assert applied == list(range(1, len(records) + 1)), "an applied command without its own seq: a lost update"
    assert state.revision == len(records) and state.head is not None and state.head.seq == len(records)
    verification = audit.verify_chain(records, state.head)
    assert verification.ok and verification.ahead == 0, verification
    previous_to = None
    for record in records:
        assert isinstance(record, audit.AuditRecord)
        if previous_to is not None:
            assert audit.canonical_json(record.from_) == audit.canonical_json(previous_to), f"seq {record.seq}"
        previous_to = record.to
    assert audit.canonical_json(previous_to) == audit.canonical_json(state.body())
    assert json.loads(flags.read_bytes()) == render(WF, state)
    # the mix really exercised the gate
    kinds = {e[1] for e in entries if e[0] == "applied"}
    assert {"promote", "kill", "release-kill"} <= kinds, counts
    return counts


def _seed_evals(store: Any) -> None:
    now = dt.datetime.now(dt.UTC)
    for n in RELEASES:
        store_eval(store, n, "PASS", now - dt.timedelta(hours=1), WF)


def test_local_store_eight_processes(tmp_path: Path) -> None:
    root = tmp_path / "store"
    store = LocalStore(root)
    _seed_evals(store)
    flags = tmp_path / "flags" / f"{WF.id}.flagd.json"
    spec = {"kind": "local", "root": str(root), "flags": str(flags)}
    entries, elapsed = _hammer(spec, 50)
    counts = _check(store, flags, entries, WORKERS * 50)
    print(f"local: {counts} in {elapsed:.1f}s")
    assert counts["races-lost"] > 0  # the processes really raced


def test_s3_eight_processes(tmp_path: Path, s3_server: str) -> None:
    try:
        from tests.fakes.s3 import make_bucket
    except ModuleNotFoundError:
        from fakes.s3 import make_bucket
    spec = {"kind": "s3", "endpoint": s3_server, "bucket": make_bucket(s3_server), "flags": str(tmp_path / "flags.flagd.json")}
    store = _open(spec)
    _seed_evals(store)
    entries, elapsed = _hammer(spec, 50)
    counts = _check(store, Path(spec["flags"]), entries, WORKERS * 50)
    print(f"s3: {counts} in {elapsed:.1f}s")


@pytest.fixture(scope="session")
def s3_server() -> Any:
    try:
        from tests.fakes.s3 import fake_aws_env, shared_s3_server
    except ModuleNotFoundError:
        from fakes.s3 import fake_aws_env, shared_s3_server
    with fake_aws_env():
        yield shared_s3_server()
