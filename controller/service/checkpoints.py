"""Signed checkpoints of the audit chain head: the chain's external anchor.

After every command the controller writes, create-only beside the chain, a checkpoint of the new
head signed with its key (``controller.adapters.signing``); on S3 it lands under the
control-plane bucket's Object Lock. ``rollout audit verify`` checks every checkpoint it can read
against the chain (``controller.core.audit.check_checkpoints``), so a truncated tail or a
rewritten head is found whenever a checkpoint covers it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from controller.core import audit
from controller.core.audit import AuditRecord
from controller.errors import InvalidInput, RolloutError
from controller.ports import AlreadyExists, Store

__all__ = ["read_checkpoints", "write_checkpoint"]


def write_checkpoint(store: Store, workflow_id: str, record: AuditRecord, signer: Any, now: dt.datetime) -> list[str]:
    """Anchor the new head. The command has already happened; a checkpoint that cannot be
    written is a note, and the next command's checkpoint covers this record too (the hash chain)."""
    if signer is None:
        return []
    body = audit.checkpoint_body(workflow_id, record.head, now)
    try:
        data = audit.encode_checkpoint(body, signer.seal(body))
        store.create(audit.checkpoint_key(workflow_id, record.seq), data)
    except AlreadyExists:
        return []
    except RolloutError as exc:
        return [f"the signed checkpoint of audit seq {record.seq} was not written ({exc})"]
    return []


def read_checkpoints(store: Store, workflow_id: str, signer: Any) -> tuple[list[audit.Checkpoint], list[str]]:
    """The chain's checkpoints whose signature verifies with the controller's key, and a problem
    for each one that is malformed, misplaced or not signed by it."""
    points: list[audit.Checkpoint] = []
    problems: list[str] = []
    prefix = audit.checkpoint_prefix(workflow_id)
    retained = getattr(store, "retained", None)  # S3: every locked version, not just the latest
    if callable(retained):
        stored = list(retained(prefix))
    else:
        stored = [(k, got.data) for k in store.list(prefix) if (got := store.get(k)) is not None]
    for key, data in stored:
        try:
            point, body, envelope = audit.parse_checkpoint(data)
        except InvalidInput as exc:
            problems.append(f"checkpoint {key}: {exc}")
            continue
        if point.workflow != workflow_id or key != audit.checkpoint_key(workflow_id, point.seq):
            problems.append(f"checkpoint {key}: it is the checkpoint of {point.workflow} seq {point.seq} (moved)")
            continue
        if signer is not None:
            why = signer.check(body, envelope)
            if why is not None:
                problems.append(f"checkpoint {key}: {why}")
                continue
        points.append(point)
    return points, problems
