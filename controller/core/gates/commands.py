"""The commands the rollout gate decides. The CLI records an intent as one of these; only the
gate (``controller.core.gates.decide``) turns it into a state.

    Promote(release, cohort, operator, approvers)   widen: move a release to the next cohort
    Rollback(operator, reason)                      the candidate's cohorts go back to stable
    AutoRollback(release, operator, reason)         reconcile / failed eval: a live release whose
                                                    latest conclusive eval FAILED leaves service
    Kill(operator, reason)                          engage the kill switch (never gated)
    ReleaseKill(operator, reason)                   release it (operator authority only)
    Approve(approval, operator, reason)             record an authenticated approval (core.approvals)
"""

from __future__ import annotations

from dataclasses import dataclass

from controller.core import approvals as approval_rules

__all__ = ["Approve", "AutoRollback", "Command", "Kill", "Promote", "ReleaseKill", "Rollback"]


@dataclass(frozen=True)
class Promote:
    release: str | None  # None: no release could be named (e.g. the bundle does not build)
    cohort: str
    operator: str
    approvers: tuple[str, ...] = ()
    reason: str | None = None
    action = "promote"


@dataclass(frozen=True)
class Rollback:
    operator: str
    reason: str
    action = "rollback"


@dataclass(frozen=True)
class AutoRollback:
    release: str
    operator: str = "reconcile"
    reason: str | None = None
    action = "auto-rollback"


@dataclass(frozen=True)
class Kill:
    operator: str
    reason: str
    action = "kill"


@dataclass(frozen=True)
class ReleaseKill:
    operator: str
    reason: str
    action = "release-kill"


@dataclass(frozen=True)
class Approve:
    # Recorded by `rollout approve`; counted by a later Promote (controller.core.approvals).
    approval: approval_rules.Approval
    operator: str
    reason: str | None = None
    action = approval_rules.APPROVE_ACTION

    @property
    def release(self) -> str:
        return self.approval.release


Command = Promote | Rollback | AutoRollback | Kill | ReleaseKill | Approve
