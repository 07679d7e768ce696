"""The audit chain: record format and hashing, tamper detection, and append/read on a Store.

Verification is pure: the tamper tests feed byte lists to ``verify_chain`` with file and socket
I/O disabled. 200 seeded mutations (byte flips, field edits with and without rehashing,
deletions, reorders, duplications, truncations) must each be detected at the right seq.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import random
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.adapters import AlreadyExists, LocalStore, MemoryStore
from controller.core.audit import (
    GENESIS_HASH,
    AuditRecord,
    ChainHead,
    ChainStatus,
    append,
    next_record,
    read_chain,
    record_key,
    verify_chain,
)
from controller.errors import Conflict, InvalidInput

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
WF = "internal-docs-qa"
COHORTS = ["internal", "limited", "general"]


def build_chain(n: int = 30, workflow: str = WF) -> list[AuditRecord]:
    records: list[AuditRecord] = []
    head: ChainHead | None = None
    for i in range(n):
        record = next_record(
            head,
            time=T0 + timedelta(minutes=i),
            operator=f"op{i % 3}@example.com",
            action=["promote", "rollback", "kill", "reconcile"][i % 4],
            workflow=workflow,
            from_={"stable": f"sha256:{i:064x}", "cohorts": COHORTS[: i % 3]},
            to={"stable": f"sha256:{i + 1:064x}", "cohorts": COHORTS[: (i + 1) % 3]},
            release=f"sha256:{i + 1:064x}",
            evidence={"eval": hashlib.sha256(b"%d" % i).hexdigest(), "pass_rate": "0.95"},
            reason=None if i % 5 else f"bake time met ✓ #{i}",
        )
        records.append(record)
        head = record.head
    return records


CHAIN = build_chain()
RAW = [r.to_json() for r in CHAIN]
HEAD = CHAIN[-1].head


@pytest.fixture
def no_io(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Prove purity: any file or network access during the test raises."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("I/O during a pure function")

    monkeypatch.setattr(builtins, "open", refuse)
    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr("os.open", refuse)
    yield


# -- record format --------------------------------------------------------------------------


def test_record_fields_and_hash_follow_the_spec() -> None:
    first = json.loads(RAW[0])
    assert set(first) == {
        "seq", "time", "operator", "action", "workflow", "from", "to", "release", "evidence",
        "reason", "prev_hash", "hash",
    }  # fmt: skip
    assert first["seq"] == 1 and first["prev_hash"] == GENESIS_HASH == "0" * 64
    assert first["time"] == "2025-03-01T09:00:00Z"
    body = {k: v for k, v in first.items() if k != "hash"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert first["hash"] == hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    for prev, record in zip(CHAIN, CHAIN[1:], strict=False):
        assert record.seq == prev.seq + 1 and record.prev_hash == prev.hash


def test_stored_bytes_are_canonical_and_round_trip() -> None:
    for record, raw in zip(CHAIN, RAW, strict=True):
        canonical = json.dumps(
            json.loads(raw), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode("utf-8")
        assert raw == canonical
        assert AuditRecord.from_json(raw) == record
        if record.reason and "✓" in record.reason:
            assert "✓".encode() in raw  # UTF-8, not \u escapes


def test_record_key_layout() -> None:
    assert record_key(WF, 7) == "audit/internal-docs-qa/000000000007.json"


def test_next_record_is_pure_and_detached() -> None:
    to = {"cohorts": ["internal"]}
    kwargs: dict[str, Any] = dict(
        time=T0, operator="a@x", action="promote", workflow=WF, from_="none", to=to,
        release="sha256:ab", evidence=None, reason=None,
    )  # fmt: skip
    one, two = next_record(None, **kwargs), next_record(None, **kwargs)
    assert one == two
    to["cohorts"].append("limited")
    assert one.to == {"cohorts": ["internal"]} and one.compute_hash() == one.hash


def test_time_is_normalised_to_utc() -> None:
    cet = timezone(timedelta(hours=1))
    record = next_record(
        None, time=datetime(2025, 3, 1, 10, 0, tzinfo=cet), operator="a", action="b",
        workflow=WF, from_=None, to=None, release=None, evidence=None, reason=None,
    )  # fmt: skip
    assert record.time == "2025-03-01T09:00:00Z"


@pytest.mark.parametrize(
    "override",
    [
        {"time": datetime(2025, 1, 1)},  # naive
        {"workflow": "a/b"},
        {"workflow": ".."},
        {"operator": ""},
        {"action": ""},
        {"evidence": {1, 2}},
        {"evidence": float("nan")},
        {"reason": 5},
        {"to": "\ud800"},  # lone surrogate: not UTF-8
    ],
    ids=repr,
)
def test_next_record_rejects_bad_input(override: dict[str, Any]) -> None:
    kwargs: dict[str, Any] = dict(
        time=T0, operator="a", action="b", workflow=WF, from_=None, to=None,
        release=None, evidence=None, reason=None,
    )  # fmt: skip
    kwargs.update(override)
    with pytest.raises(InvalidInput):
        next_record(None, **kwargs)


@pytest.mark.parametrize("bad", [(0, "0" * 64), (1, "xyz"), (True, "0" * 64), (1, "A" * 64)])
def test_chain_head_is_validated(bad: tuple[Any, Any]) -> None:
    with pytest.raises(InvalidInput):
        ChainHead(*bad)


# -- verification: intact chains ------------------------------------------------------------


def test_unmodified_chain_verifies(no_io: None) -> None:
    result = verify_chain(RAW, HEAD)
    assert result.ok and result.status is ChainStatus.OK
    assert (result.checked, result.first_bad_seq, result.reason, result.ahead) == (30, None, None, 0)
    assert result.head == HEAD
    assert result.to_dict()["status"] == "ok"


def test_records_and_bytes_verify_alike(no_io: None) -> None:
    assert verify_chain(CHAIN, HEAD) == verify_chain(RAW, HEAD)


def test_empty_chain() -> None:
    assert verify_chain([], None).ok
    assert verify_chain([], None).checked == 0
    truncated = verify_chain([], ChainHead(3, HEAD.hash))
    assert not truncated.ok and truncated.first_bad_seq == 1 and "truncated" in truncated.reason


def test_chain_ahead_of_state_is_reported_not_failed() -> None:
    extra = next_record(
        HEAD, time=T0 + timedelta(hours=5), operator="op", action="promote", workflow=WF,
        from_="a", to="b", release=None, evidence=None, reason="crash before state write",
    )  # fmt: skip
    result = verify_chain([*RAW, extra.to_json()], HEAD)
    assert result.ok and result.status is ChainStatus.AHEAD
    assert (result.ahead, result.checked, result.head) == (1, 31, extra.head)
    assert verify_chain(RAW, None).ahead == 30
    assert verify_chain(RAW, CHAIN[9].head).ahead == 20


def test_state_head_that_does_not_match_is_broken_at_the_head() -> None:
    result = verify_chain(RAW, ChainHead(30, "f" * 64))
    assert not result.ok and result.first_bad_seq == 30 and "head recorded in state" in result.reason
    result = verify_chain(RAW, ChainHead(12, CHAIN[12].hash))  # seq 12 with seq 13's hash
    assert not result.ok and result.first_bad_seq == 12


def test_non_canonical_encoding_is_rejected() -> None:
    pretty = json.dumps(json.loads(RAW[4]), indent=1, sort_keys=True).encode()
    result = verify_chain([*RAW[:4], pretty, *RAW[5:]], HEAD)
    assert not result.ok and result.first_bad_seq == 5 and "canonical" in result.reason


# -- verification: 200 seeded mutations -----------------------------------------------------

FIELDS = ["seq", "time", "operator", "action", "workflow", "from", "to", "release", "evidence",
          "reason", "prev_hash", "hash"]  # fmt: skip


def _edit_field(raw: bytes, rng: random.Random, rehash: bool) -> tuple[bytes, str]:
    value = json.loads(raw)
    field = rng.choice([f for f in FIELDS if f != "hash"] if rehash else FIELDS)
    old = value[field]
    if field == "seq":
        value[field] = old + rng.choice([-1, 1, 7])
    elif field in ("prev_hash", "hash"):
        value[field] = "".join(rng.choice("0123456789abcdef") for _ in range(64))
    elif isinstance(old, dict):
        value[field] = {**old, "tampered": True}
    else:
        value[field] = f"{old}-edited"
    if rehash:
        body = {k: v for k, v in value.items() if k != "hash"}
        value["hash"] = hashlib.sha256(
            json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        ).hexdigest()
    encoded = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return encoded.encode(), field


Mutation = tuple[str, list[bytes], int]


def _mutations(seed: int, count: int) -> list[Mutation]:
    """``(description, mutated chain, expected first bad seq)`` for ``count`` mutations."""
    rng = random.Random(seed)
    kinds: list[Callable[[], Mutation | None]] = []

    def first_difference(chain: list[bytes]) -> int:
        for i, (a, b) in enumerate(zip(chain, RAW, strict=False), start=1):
            if a != b:
                return i
        return min(len(chain), len(RAW)) + 1  # one is a prefix of the other

    def flip() -> Mutation:
        k = rng.randrange(30)
        data = bytearray(RAW[k])
        pos = rng.randrange(len(data))
        data[pos] ^= rng.randrange(1, 256)
        chain = [*RAW]
        chain[k] = bytes(data)
        return (f"flip byte {pos} of seq {k + 1}", chain, k + 1)

    def edit() -> Mutation:
        k = rng.randrange(30)
        chain = [*RAW]
        chain[k], field = _edit_field(RAW[k], rng, rehash=False)
        return (f"edit field {field} of seq {k + 1}", chain, k + 1)

    def forge() -> Mutation:
        # rewrite and rehash: caught by the successor's prev_hash, or at the state's head
        k = rng.randrange(30)
        chain = [*RAW]
        chain[k], field = _edit_field(RAW[k], rng, rehash=True)
        # a wrong seq or prev_hash shows in the record itself; the last record is caught by
        # the state's head; any other rewrite by the successor's prev_hash
        expected = k + 1 if field in ("seq", "prev_hash") or k == 29 else k + 2
        return (f"edit field {field} and rehash seq {k + 1}", chain, expected)

    def delete() -> Mutation:
        k = rng.randrange(30)
        chain = RAW[:k] + RAW[k + 1 :]
        return (f"delete seq {k + 1}", chain, k + 1)

    def reorder() -> Mutation | None:
        i, j = rng.sample(range(30), 2)
        chain = [*RAW]
        if rng.random() < 0.5:
            chain[i], chain[j] = chain[j], chain[i]
            what = f"swap seq {i + 1} and {j + 1}"
        else:
            chain.insert(j, chain.pop(i))
            what = f"move seq {i + 1} to position {j + 1}"
        return (what, chain, first_difference(chain))

    def duplicate() -> Mutation | None:
        k = rng.randrange(30)
        at = rng.randrange(31)
        chain = [*RAW]
        chain.insert(at, RAW[k])
        return (f"duplicate seq {k + 1} at position {at + 1}", chain, first_difference(chain))

    def truncate() -> Mutation:
        keep = rng.randrange(30)
        return (f"truncate to {keep} records", RAW[:keep], keep + 1)

    kinds = [flip, edit, forge, delete, reorder, duplicate, truncate]
    out: list[Mutation] = []
    while len(out) < count:
        mutation = kinds[len(out) % len(kinds)]()
        if mutation is not None and mutation[1] != RAW:
            out.append(mutation)
    return out


MUTATIONS = _mutations(seed=20250301, count=200)


def test_the_mutation_set_covers_every_kind() -> None:
    described = " ".join(m[0] for m in MUTATIONS)
    for word in ("flip", "edit field", "rehash", "delete", "swap", "move", "duplicate",
                 "truncate"):  # fmt: skip
        assert word in described
    assert len(MUTATIONS) == 200


def test_200_mutations_all_detected_at_the_right_seq(no_io: None) -> None:
    wrong = []
    for what, chain, expected in MUTATIONS:
        result = verify_chain(chain, HEAD)
        if result.ok or result.first_bad_seq != expected or result.checked != expected - 1:
            wrong.append((what, expected, result))
    assert wrong == []


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(k=st.integers(0, 29), pos=st.integers(0, 10_000), mask=st.integers(1, 255))
def test_any_byte_flip_is_detected_at_its_record(k: int, pos: int, mask: int) -> None:
    data = bytearray(RAW[k])
    data[pos % len(data)] ^= mask
    chain = [*RAW]
    chain[k] = bytes(data)
    result = verify_chain(chain, HEAD)
    assert not result.ok and result.first_bad_seq == k + 1


@settings(max_examples=50, deadline=None)
@given(
    texts=st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=8),
    payload=st.recursive(
        st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=10),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
        max_leaves=8,
    ),
)
def test_arbitrary_content_chains_verify(texts: list[str], payload: Any) -> None:
    head = None
    raws = []
    for text in texts:
        try:
            record = next_record(
                head, time=T0, operator=text, action=text, workflow=WF, from_=payload,
                to=text, release=None, evidence=payload, reason=text,
            )  # fmt: skip
        except InvalidInput:
            return  # lone surrogates are refused up front, never stored
        raws.append(record.to_json())
        head = record.head
    assert verify_chain(raws, head).ok


# -- append / read on a Store ---------------------------------------------------------------


@pytest.fixture(params=["memory", "local"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    return MemoryStore() if request.param == "memory" else LocalStore(tmp_path / "s")


def test_append_then_read_chain_verifies(store: Any) -> None:
    for record in CHAIN:
        append(store, record)
    other = build_chain(3, workflow="other-wf")
    for record in other:
        append(store, record)
    items = read_chain(store, WF)
    assert items == CHAIN
    assert verify_chain(items, HEAD).ok
    assert read_chain(store, "other-wf") == other
    assert store.list("audit/") == sorted(
        [record_key(WF, i) for i in range(1, 31)] + [record_key("other-wf", i) for i in (1, 2, 3)]
    )


def test_append_is_create_only(store: Any) -> None:
    append(store, CHAIN[0])
    rival = next_record(
        None, time=T0, operator="someone-else", action="kill", workflow=WF, from_=None, to=None,
        release=None, evidence=None, reason=None,
    )  # fmt: skip
    with pytest.raises(AlreadyExists) as info:
        append(store, rival)
    assert isinstance(info.value, Conflict)
    assert read_chain(store, WF) == [CHAIN[0]]


def test_concurrent_appenders_of_one_seq_have_one_winner(store: Any) -> None:
    candidates = [
        next_record(
            None, time=T0, operator=f"op{i}", action="promote", workflow=WF, from_=None, to=None,
            release=None, evidence=None, reason=None,
        )  # fmt: skip
        for i in range(8)
    ]
    won: list[AuditRecord] = []
    barrier = threading.Barrier(8)

    def go(record: AuditRecord) -> None:
        barrier.wait()
        try:
            append(store, record)
            won.append(record)
        except AlreadyExists:
            pass

    threads = [threading.Thread(target=go, args=(c,)) for c in candidates]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1
    assert read_chain(store, WF) == won


def test_append_refuses_a_record_whose_hash_does_not_match(store: Any) -> None:
    forged = AuditRecord(**{**CHAIN[0].__dict__, "operator": "mallory"})
    with pytest.raises(InvalidInput):
        append(store, forged)
    assert store.list("") == []


def test_garbage_in_the_store_comes_back_as_bytes_and_fails_verification(store: Any) -> None:
    for record in CHAIN[:5]:
        append(store, record)
    store.create(record_key(WF, 6), b"\x00not json")
    items = read_chain(store, WF)
    assert items[:5] == CHAIN[:5] and items[5] == b"\x00not json"
    result = verify_chain(items, CHAIN[4].head)
    assert not result.ok and result.first_bad_seq == 6 and "unreadable" in result.reason
