"""The control-plane audit chain: tamper-evident, hash-linked records of every rollout action.

A record is ``{seq, time, operator, action, workflow, from, to, release, evidence, reason,
prev_hash, hash}``. ``hash`` is the sha256 (hex) of the record's canonical JSON without the
``hash`` field (sorted keys, no whitespace, UTF-8, no NaN); ``prev_hash`` is the previous
record's ``hash``, and 64 zeros for seq 1. Sequence numbers start at 1. The stored bytes are
exactly the canonical JSON of the whole record, so a record has one valid encoding.

Records live in the Store as ``audit/<workflow>/<seq:012d>.json``, written create-only: two
operators racing to append the same seq cannot both win; the loser gets ``AlreadyExists``
(a ``Conflict``), re-reads and re-decides.

Who trusts what: the chain proves its records are intact *relative to its head*. The head
(``ChainHead``: seq + hash of the last record) is kept by the caller inside its state record,
so truncating or rewriting the chain's tail also needs the state changed. The controller
appends the audit record first and writes the state second: a crash between the two leaves the
chain *ahead* of the head. ``verify_chain`` reports that as ``ahead=N``, a distinct,
non-failing condition (``status == "ahead"``); the caller decides whether to adopt or flag the
extra records. Anything else wrong is a failure naming the first bad sequence number:

- a record that is unreadable, non-canonical or whose content no longer matches its ``hash``
  (modified) -> that record's seq;
- a position holding the wrong seq (deleted, reordered, duplicated) -> the seq expected there;
- a ``prev_hash`` that does not match the predecessor's hash -> this record's seq (its
  predecessor was rewritten and rehashed, or this record was forged);
- the record at the head's seq not matching the head's hash (tail rewritten) -> the head's seq;
- the chain ending before the head's seq (truncated) -> the first missing seq.

``next_record`` and ``verify_chain`` are pure; ``append`` and ``read_chain`` are the only I/O.

Anchoring the head (checkpoints): the head in the state is only as safe as the state. So after
every command the controller writes a **signed checkpoint** of the new head, create-only, beside
the chain: ``audit-checkpoints/<workflow>/<seq:012d>.json`` = canonical JSON
``{"checkpoint": {schema, workflow, seq, hash, time}, "signature": <envelope>}``, the envelope
signing the canonical JSON of ``checkpoint`` with the controller's key
(``controller.adapters.signing``). On S3 the store is the control-plane bucket, whose Object
Lock keeps every checkpoint for the retention period: nobody, the bucket owner included, can
remove or overwrite one. ``check_checkpoints`` (pure) then finds a truncated tail (the chain ends
before a checkpointed seq) or a rewritten record (its hash is not the checkpointed one) even when
the state's head was rewritten to match.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from controller.core.canonical import canonical_json, sha256_hex
from controller.core.keys import validate_key
from controller.errors import InvalidInput
from controller.ports import Store

__all__ = [
    "GENESIS_HASH",
    "AuditRecord",
    "ChainHead",
    "ChainStatus",
    "Verification",
    "CHECKPOINT_SCHEMA",
    "Checkpoint",
    "append",
    "canonical_json",
    "chain_prefix",
    "check_checkpoints",
    "checkpoint_body",
    "checkpoint_key",
    "checkpoint_prefix",
    "encode_checkpoint",
    "parse_checkpoint",
    "next_record",
    "read_chain",
    "record_key",
    "verify_chain",
]

GENESIS_HASH = "0" * 64
_HEX64 = re.compile(r"[0-9a-f]{64}")
# JSON name -> Python attribute; "from" is a keyword in Python.
_FIELDS = {
    "seq": "seq",
    "time": "time",
    "operator": "operator",
    "action": "action",
    "workflow": "workflow",
    "from": "from_",
    "to": "to",
    "release": "release",
    "evidence": "evidence",
    "reason": "reason",
    "prev_hash": "prev_hash",
    "hash": "hash",
}


_sha256 = sha256_hex


@dataclass(frozen=True)
class ChainHead:
    """The last record of a chain as the caller's state remembers it."""

    seq: int
    hash: str

    def __post_init__(self) -> None:
        if isinstance(self.seq, bool) or not isinstance(self.seq, int) or self.seq < 1:
            raise InvalidInput(f"Audit chain head seq must be an integer >= 1, not {self.seq!r}.")
        if not isinstance(self.hash, str) or not _HEX64.fullmatch(self.hash):
            raise InvalidInput(f"Audit chain head hash must be 64 hex digits, not {self.hash!r}.")

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "hash": self.hash}


@dataclass(frozen=True)
class AuditRecord:
    seq: int
    time: str
    operator: str
    action: str
    workflow: str
    from_: Any  # JSON object or string: the state before
    to: Any  # JSON object or string: the state after
    release: str | None
    evidence: Any  # e.g. {"eval": "<sha256 of the eval result>"}
    reason: str | None
    prev_hash: str
    hash: str

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON data, with ``from`` spelled as in storage."""
        return {name: getattr(self, attr) for name, attr in _FIELDS.items()}

    def to_json(self) -> bytes:
        """The stored bytes: canonical JSON of the whole record."""
        return canonical_json(self.to_dict())

    def compute_hash(self) -> str:
        """sha256 of the canonical JSON of the record without ``hash``."""
        body = self.to_dict()
        del body["hash"]
        return _sha256(canonical_json(body))

    @property
    def head(self) -> ChainHead:
        return ChainHead(self.seq, self.hash)

    @classmethod
    def from_json(cls, data: bytes) -> AuditRecord:
        """Parse stored bytes strictly: exactly the record's fields, the right types, and the
        canonical encoding. The hash is *not* checked here (``verify_chain`` does that)."""
        try:
            value = json.loads(bytes(data).decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise InvalidInput(f"not UTF-8 JSON ({exc})") from exc
        if not isinstance(value, dict):
            raise InvalidInput("not a JSON object")
        if set(value) != set(_FIELDS):
            missing = sorted(set(_FIELDS) - set(value))
            extra = sorted(set(value) - set(_FIELDS))
            raise InvalidInput(f"wrong fields (missing {missing}, unexpected {extra})")
        problems = _type_problems(value)
        if problems:
            raise InvalidInput("; ".join(problems))
        if canonical_json(value) != bytes(data):
            raise InvalidInput("not in canonical encoding")
        return cls(**{attr: value[name] for name, attr in _FIELDS.items()})


def _type_problems(value: dict[str, Any]) -> list[str]:
    problems = []
    seq = value["seq"]
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
        problems.append(f"seq must be an integer >= 1, not {seq!r}")
    for name in ("time", "operator", "action", "workflow"):
        if not isinstance(value[name], str) or not value[name]:
            problems.append(f"{name} must be a non-empty string")
    for name in ("release", "reason"):
        if value[name] is not None and not isinstance(value[name], str):
            problems.append(f"{name} must be a string or null")
    for name in ("prev_hash", "hash"):
        if not isinstance(value[name], str) or not _HEX64.fullmatch(value[name]):
            problems.append(f"{name} must be 64 lowercase hex digits")
    return problems


def _time_text(time: datetime | str) -> str:
    if isinstance(time, datetime):
        if time.tzinfo is None or time.utcoffset() is None:
            raise InvalidInput("Audit record time must be timezone-aware (UTC).")
        return time.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if not isinstance(time, str) or not time:
        raise InvalidInput("Audit record time must be an aware datetime or a non-empty string.")
    return time


def _workflow_id(workflow: str) -> str:
    if not isinstance(workflow, str) or "/" in workflow:
        raise InvalidInput(f"Invalid workflow id {workflow!r} for the audit chain.")
    return validate_key(workflow)


def next_record(
    head: ChainHead | None,
    *,
    time: datetime | str,
    operator: str,
    action: str,
    workflow: str,
    from_: Any,
    to: Any,
    release: str | None,
    evidence: Any,
    reason: str | None,
) -> AuditRecord:
    """The record that extends the chain whose head is ``head`` (``None``: an empty chain).

    Pure. JSON values are copied through their canonical encoding, so the record neither shares
    mutable state with the caller nor holds anything JSON cannot represent.
    """
    for name, text in (("operator", operator), ("action", action)):
        if not isinstance(text, str) or not text:
            raise InvalidInput(f"Audit record {name} must be a non-empty string.")
    for name, text in (("release", release), ("reason", reason)):
        if text is not None and not isinstance(text, str):
            raise InvalidInput(f"Audit record {name} must be a string or None.")
    body = {
        "seq": 1 if head is None else head.seq + 1,
        "time": _time_text(time),
        "operator": operator,
        "action": action,
        "workflow": _workflow_id(workflow),
        "from": from_,
        "to": to,
        "release": release,
        "evidence": evidence,
        "reason": reason,
        "prev_hash": GENESIS_HASH if head is None else head.hash,
    }
    body = json.loads(canonical_json(body))
    body["hash"] = _sha256(canonical_json(body))
    return AuditRecord(**{attr: body[name] for name, attr in _FIELDS.items()})


def chain_prefix(workflow: str) -> str:
    return f"audit/{_workflow_id(workflow)}/"


def record_key(workflow: str, seq: int) -> str:
    return f"{chain_prefix(workflow)}{seq:012d}.json"


def append(store: Store, record: AuditRecord) -> None:
    """Store ``record`` create-only. ``AlreadyExists`` (exit 4) when that seq is taken."""
    if record.compute_hash() != record.hash:
        raise InvalidInput(f"Audit record seq {record.seq}: hash does not match its content.")
    store.create(record_key(record.workflow, record.seq), record.to_json())


def read_chain(store: Store, workflow: str) -> list[AuditRecord | bytes]:
    """Every object under ``audit/<workflow>/`` in key (= seq) order: an ``AuditRecord`` when
    the bytes are a well-formed canonical record (its ``to_json()`` reproduces them exactly),
    else the raw bytes. Nothing is verified here; pass the result to ``verify_chain``."""
    items: list[AuditRecord | bytes] = []
    for key in store.list(chain_prefix(workflow)):
        got = store.get(key)
        if got is None:  # listed then gone: stores never delete, so only a foreign hand
            continue
        try:
            items.append(AuditRecord.from_json(got.data))
        except InvalidInput:
            items.append(got.data)
    return items


class ChainStatus(StrEnum):
    OK = "ok"  # intact and ending exactly at the expected head
    AHEAD = "ahead"  # intact, with valid records beyond the expected head
    BROKEN = "broken"  # tampered, truncated or corrupt: see first_bad_seq and reason


@dataclass(frozen=True)
class Verification:
    ok: bool  # no tampering found (True also when ahead)
    checked: int  # records that verified, in order, before any failure
    first_bad_seq: int | None
    reason: str | None
    ahead: int = 0  # valid records beyond the expected head (ok stays True)
    head: ChainHead | None = None  # the last record that verified

    @property
    def status(self) -> ChainStatus:
        if not self.ok:
            return ChainStatus.BROKEN
        return ChainStatus.AHEAD if self.ahead else ChainStatus.OK

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = str(self.status)
        return data


def verify_chain(
    records: Sequence[bytes | AuditRecord], expected_head: ChainHead | None
) -> Verification:
    """Walk the chain from seq 1. Pure: ``records`` as ``read_chain`` returns them (or raw
    bytes), ``expected_head`` as the caller's state records it (``None``: no records expected).
    See the module docstring for what each outcome means."""
    prev_hash = GENESIS_HASH
    last: ChainHead | None = None

    def broken(seq: int, reason: str) -> Verification:
        return Verification(False, seq - 1, seq, reason, 0, last)

    for position, item in enumerate(records, start=1):
        raw = item.to_json() if isinstance(item, AuditRecord) else bytes(item)
        try:
            record = AuditRecord.from_json(raw)
        except InvalidInput as exc:
            return broken(position, f"seq {position}: unreadable record: {exc}")
        if record.seq != position:
            return broken(
                position,
                f"seq {position}: found a record claiming seq {record.seq} in its place "
                "(records deleted, duplicated or reordered)",
            )
        if record.compute_hash() != record.hash:
            return broken(position, f"seq {position}: content does not match its hash (modified)")
        if record.prev_hash != prev_hash:
            return broken(
                position,
                f"seq {position}: prev_hash does not match the hash of seq {position - 1} "
                f"(seq {position - 1} rewritten, or seq {position} forged)",
            )
        at_head = expected_head is not None and position == expected_head.seq
        if at_head and record.hash != expected_head.hash:  # type: ignore[union-attr]
            return broken(
                position,
                f"seq {position}: hash differs from the head recorded in state "
                "(chain rewritten up to the head)",
            )
        prev_hash = record.hash
        last = record.head

    count = len(records)
    expected = 0 if expected_head is None else expected_head.seq
    if count < expected:
        return broken(
            count + 1,
            f"chain ends at seq {count} but state's head is seq {expected} (truncated)",
        )
    return Verification(True, count, None, None, count - expected, last)


# --- checkpoints: signed, create-only anchors of the head ----------------------------------------

CHECKPOINT_SCHEMA = "ai-rollout.audit-checkpoint/v1"


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement that the chain of ``workflow`` had ``hash`` at ``seq`` at ``time``."""

    workflow: str
    seq: int
    hash: str
    time: str


def checkpoint_prefix(workflow: str) -> str:
    return f"audit-checkpoints/{_workflow_id(workflow)}/"


def checkpoint_key(workflow: str, seq: int) -> str:
    return f"{checkpoint_prefix(workflow)}{seq:012d}.json"


def checkpoint_body(workflow: str, head: ChainHead, time: datetime | str) -> bytes:
    """The canonical bytes a checkpoint signs. Pure."""
    return canonical_json(
        {
            "schema": CHECKPOINT_SCHEMA,
            "workflow": _workflow_id(workflow),
            "seq": head.seq,
            "hash": head.hash,
            "time": _time_text(time),
        }
    )


def parse_checkpoint(data: bytes) -> tuple[Checkpoint, bytes, bytes]:
    """(the checkpoint, the bytes its signature signs, the signature envelope) from stored bytes;
    ``InvalidInput`` when they are not a well-formed checkpoint."""
    try:
        doc = json.loads(bytes(data).decode("utf-8"))
        body, envelope = doc["checkpoint"], doc["signature"]
        if set(doc) != {"checkpoint", "signature"} or body.get("schema") != CHECKPOINT_SCHEMA:
            raise ValueError("wrong fields or schema")
        head = ChainHead(body["seq"], body["hash"])
        point = Checkpoint(str(body["workflow"]), head.seq, head.hash, str(body["time"]))
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError, InvalidInput) as exc:
        raise InvalidInput(f"not a checkpoint ({exc})") from None
    return point, canonical_json(body), canonical_json(envelope)


def encode_checkpoint(body: bytes, envelope: bytes) -> bytes:
    """The stored bytes of a checkpoint: its body and its signature envelope (both canonical JSON)."""
    return canonical_json({"checkpoint": json.loads(body), "signature": json.loads(envelope)})


def check_checkpoints(records: Sequence[bytes | AuditRecord], checkpoints: Sequence[Checkpoint]) -> list[str]:
    """Every checkpoint the chain contradicts: it ends before a checkpointed seq (truncated) or
    holds another hash there (rewritten). Pure; signatures are checked by the caller."""
    problems: list[str] = []
    beyond = [c for c in checkpoints if c.seq > len(records)]
    if beyond:
        last = max(beyond, key=lambda c: c.seq)
        problems.append(
            f"the chain ends at seq {len(records)} but a signed checkpoint of {last.time} covers seq "
            f"{last.seq} (truncated: records {len(records) + 1}..{last.seq} were removed)"
        )
    for point in sorted(checkpoints, key=lambda c: c.seq):
        if point.seq > len(records):
            break
        item = records[point.seq - 1]
        raw = item.to_json() if isinstance(item, AuditRecord) else bytes(item)
        try:
            record = AuditRecord.from_json(raw)
        except InvalidInput:
            record = None
        if record is None or record.hash != point.hash:
            problems.append(
                f"seq {point.seq} differs from its signed checkpoint of {point.time} (the chain was rewritten "
                "from there on)"
            )
    return problems
