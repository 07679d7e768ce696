"""What the gate returns: ``Allowed(new_state, reasons, evidence)`` or ``Refused(reasons)``, the
reason codes, and the small rules every command shares (operator authority, a required reason,
how an applied decision is recorded in the state).

A refusal is a value, never an exception (the exception that exits 3 is
``controller.errors.RefusedError``), and lists *every* reason.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from controller.bundle.models import Workflow
from controller.core import approvals as approval_rules
from controller.core.gates.commands import Command
from controller.core.gates.state import MAX_LAST_ACTIONS, SYSTEM_OPERATORS, ActionNote, RolloutState
from controller.core.timefmt import iso

__all__ = [
    "Allowed",
    "Decision",
    "Reason",
    "ReasonCode",
    "Refused",
    "applied",
    "authority",
    "needs_reason",
    "noop",
]


class ReasonCode(StrEnum):
    # refusals
    KILL_SWITCH = "kill-switch"
    ROLLBACK_DUE = "rollback-due"
    POLICY_UNREADABLE = "policy-unreadable"
    BUNDLE_INVALID = "bundle-invalid"
    NOT_AUTHORISED = "not-authorised"
    REASON_REQUIRED = "reason-required"
    UNKNOWN_COHORT = "unknown-cohort"
    RELEASE_UNKNOWN = "release-unknown"
    RELEASE_UNVERIFIED = "release-unverified"
    EVAL_MISSING = "eval-missing"
    EVAL_UNREADABLE = "eval-unreadable"
    EVAL_FAILED = "eval-failed"
    EVAL_INCONCLUSIVE = "eval-inconclusive"
    EVAL_STALE = "eval-stale"
    EVAL_OTHER_RELEASE = "eval-other-release"
    EVAL_FROM_FUTURE = "eval-from-future"
    CANDIDATE_IN_PROGRESS = "candidate-in-progress"
    COHORT_ORDER = "cohort-order"
    BAKE_TIME = "bake-time"
    APPROVALS = "approvals"
    APPROVER_INVALID = "approver-invalid"
    NO_FAILED_EVAL = "no-failed-eval"
    # notes on an Allowed decision
    APPLIED = "applied"
    NOTHING_TO_DO = "nothing-to-do"
    WARNING = "warning"


@dataclass(frozen=True)
class Reason:
    code: ReasonCode
    message: str

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, str]:
        return {"code": str(self.code), "message": self.message}


@dataclass(frozen=True)
class Allowed:
    new_state: RolloutState
    reasons: tuple[Reason, ...]
    changed: bool = True
    evidence: Mapping[str, Any] = field(default_factory=dict)  # what the decision relied on (audit)


@dataclass(frozen=True)
class Refused:
    reasons: tuple[Reason, ...]

    @property
    def codes(self) -> tuple[ReasonCode, ...]:
        return tuple(r.code for r in self.reasons)


Decision = Allowed | Refused


# --- rules every command shares ------------------------------------------------------------


def authority(policy: Workflow | None, operator: str, actor: approval_rules.Principal | None = None) -> list[Reason]:
    if policy is not None and policy.access is not None and actor is not None and actor.authenticated:
        return [Reason(ReasonCode.NOT_AUTHORISED, m) for m in approval_rules.operator_problems(policy.access, actor)]
    if policy is None:
        return [
            Reason(
                ReasonCode.POLICY_UNREADABLE,
                "the bundle's workflow.yaml cannot be read, so nobody's authority can be checked",
            )
        ]
    if operator in SYSTEM_OPERATORS or operator not in policy.rollout.operators:
        return [
            Reason(
                ReasonCode.NOT_AUTHORISED,
                f"operator {operator!r} is not in rollout.operators ({', '.join(policy.rollout.operators)})",
            )
        ]
    return []


def needs_reason(reason: str | None) -> list[Reason]:
    if reason is None or not reason.strip():
        return [Reason(ReasonCode.REASON_REQUIRED, "a reason is required (--reason TEXT)")]
    return []


def noop(state: RolloutState, message: str) -> Allowed:
    return Allowed(state, (Reason(ReasonCode.NOTHING_TO_DO, message),), changed=False)


def applied(
    state: RolloutState,
    new: RolloutState,
    command: Command,
    now: dt.datetime,
    message: str,
    evidence: Mapping[str, Any],
    release: str | None,
    extra: Sequence[Reason] = (),
) -> Allowed:
    revision = state.revision + 1
    note = ActionNote(revision, command.action, command.operator, iso(now), release, command.reason)
    final = dataclasses.replace(
        new, revision=revision, last_actions=(note, *state.last_actions)[:MAX_LAST_ACTIONS], head=state.head
    )
    return Allowed(final, (Reason(ReasonCode.APPLIED, message), *extra), True, dict(evidence))
