"""What a rollout command returns: the loaded state, the flag sync, outcomes and reports (JSON shapes)."""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controller.core.audit import AuditRecord
from controller.core.gates import (
    Decision,
    EvalHistory,
    Reason,
    Refused,
    RolloutState,
    latest,
    no_fresh_evidence,
    served,
)
from controller.service.publish import Published

__all__ = ["FlagSync", "Loaded", "Outcome", "Preview", "ReconcileReport", "StatusReport"]


@dataclass(frozen=True)
class Loaded:
    state: RolloutState
    version: str | None  # the store's version token; None: no state yet
    repaired: tuple[str, ...] = ()
    pending: AuditRecord | None = None  # read-only loads: a logged record not yet applied
    problem: str | None = None  # read-only loads: the chain ahead of the state is not ours


@dataclass(frozen=True)
class FlagSync:
    path: Path
    changed: bool
    killed: bool
    served: dict[str, str]
    published: tuple[str, ...] = ()  # the flag sinks that had to be updated
    held: tuple[Published, ...] = ()  # sinks left as they were: releasing their kill needs an explicit release

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "path": str(self.path),
            "rewritten": self.changed,
            "killed": self.killed,
            "served": self.served,
            "published": list(self.published),
        }
        if self.held:
            out["held"] = [h.to_dict() for h in self.held]
        return out


@dataclass(frozen=True)
class Outcome:
    """What one command did. ``decision`` None: there was nothing to decide (reconcile)."""

    action: str
    decision: Decision | None
    state: RolloutState
    record: AuditRecord | None = None
    flags: FlagSync | None = None
    notes: tuple[str, ...] = ()

    @property
    def refused(self) -> bool:
        return isinstance(self.decision, Refused)

    @property
    def changed(self) -> bool:
        return self.record is not None

    @property
    def reasons(self) -> tuple[Reason, ...]:
        return () if self.decision is None else self.decision.reasons

    @property
    def exit_code(self) -> int:
        return 3 if self.refused else 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": not self.refused,
            "action": self.action,
            "decision": None if self.decision is None else ("refused" if self.refused else "allowed"),
            "changed": self.changed,
            "reasons": [r.to_dict() for r in self.reasons],
            "audit_seq": None if self.record is None else self.record.seq,
            "state": self.state.to_dict(),
            "served": served(self.state),
            "flags": None if self.flags is None else self.flags.to_dict(),
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class ReconcileReport:
    outcomes: tuple[Outcome, ...]
    state: RolloutState
    flags: FlagSync | None
    notes: tuple[str, ...] = ()
    # Live releases whose latest eval is INCONCLUSIVE: kept serving, nothing rolled back.
    no_fresh_evidence: tuple[str, ...] = ()

    @property
    def exit_code(self) -> int:
        return 3 if any(o.refused for o in self.outcomes) else 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.exit_code == 0,
            "actions": [o.to_dict() for o in self.outcomes],
            "state": self.state.to_dict(),
            "served": served(self.state),
            "flags": None if self.flags is None else self.flags.to_dict(),
            "notes": list(self.notes),
            "no_fresh_evidence": list(self.no_fresh_evidence),
        }


@dataclass(frozen=True)
class StatusReport:
    workflow: str
    state: RolloutState
    served: dict[str, str]
    kill_pending: dict[str, Any] | None
    pending: AuditRecord | None
    problem: str | None
    flags_path: Path
    flags_in_sync: bool
    evals: dict[str, Any]
    due: list[str]
    next: dict[str, Any] | None
    store: str
    no_fresh_evidence: tuple[str, ...] = ()  # live releases whose latest eval is INCONCLUSIVE

    def to_dict(self) -> dict[str, Any]:
        return {
            "workflow": self.workflow,
            "store": self.store,
            "state": self.state.to_dict(),
            "served": self.served,
            "kill_switch": {**dataclasses.asdict(self.state.kill), "pending_marker": self.kill_pending},
            "pending_audit_seq": None if self.pending is None else self.pending.seq,
            "problem": self.problem,
            "flags": {"path": str(self.flags_path), "in_sync": self.flags_in_sync},
            "evals": self.evals,
            "rollbacks_due": self.due,
            "next_promotion": self.next,
            "no_fresh_evidence": list(self.no_fresh_evidence),
        }


@dataclass(frozen=True)
class Preview:
    """A dry run: the gate's decision and the flag document's diff; nothing was written."""

    action: str
    decision: Decision
    state: RolloutState
    would_be: RolloutState
    flag_diff: str  # unified diff of the rendered flag document; "" when it would not change

    @property
    def refused(self) -> bool:
        return isinstance(self.decision, Refused)

    @property
    def exit_code(self) -> int:
        return 3 if self.refused else 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": not self.refused,
            "action": self.action,
            "dry_run": True,
            "decision": "refused" if self.refused else "allowed",
            "reasons": [r.to_dict() for r in self.decision.reasons],
            "served": served(self.state),
            "would_serve": served(self.would_be),
            "flag_diff": self.flag_diff,
        }


# --- report pieces (pure) ---------------------------------------------------------------------


def flag_diff(before: bytes, after: bytes, name: str) -> str:
    """The flag document's unified diff, as ``promote --dry-run`` prints it."""
    return "".join(
        difflib.unified_diff(
            before.decode("utf-8").splitlines(keepends=True),
            after.decode("utf-8").splitlines(keepends=True),
            f"{name} (now)",
            f"{name} (after promote)",
        )
    )


def next_promotion(release: str, cohort: str, operator: str, decision: Decision) -> dict[str, Any]:
    """What ``status`` says of the next promotion: ready, or the gate's own reasons it is not."""
    return {
        "release": release,
        "cohort": cohort,
        "operator": operator,
        "ready": not isinstance(decision, Refused),
        "needs": [r.to_dict() for r in decision.reasons] if isinstance(decision, Refused) else [],
    }


def eval_summaries(histories: Mapping[str, EvalHistory], roles: Mapping[str | None, str]) -> dict[str, Any]:
    """Per live release: its role, how many results, the latest, and whether it is fresh evidence."""
    out: dict[str, Any] = {}
    for digest, history in histories.items():
        last = latest(history)
        out[digest] = {
            "role": roles.get(digest, "previous stable"),
            "results": len(history.results),
            "error": history.error,
            "latest": None if last is None else last.to_dict(),
            "fresh_evidence": no_fresh_evidence(history) is None,
        }
    return out
