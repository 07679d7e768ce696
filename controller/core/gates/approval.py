"""Approve: an authenticated approval recorded in the chain, counted by a later Promote.

The rules of who may approve and which approvals count are ``controller.core.approvals``; this
module only decides whether one approval may be recorded now.
"""

from __future__ import annotations

import datetime as dt

from controller.core import approvals as approval_rules
from controller.core.gates.commands import Approve
from controller.core.gates.decisions import Decision, Reason, ReasonCode, Refused, applied
from controller.core.gates.evidence import CLOCK_SKEW, GateEvidence
from controller.core.gates.state import COHORTS, RolloutState
from controller.core.timefmt import iso

__all__ = ["approve"]


def approve(state: RolloutState, cmd: Approve, ev: GateEvidence, now: dt.datetime) -> Decision:
    a = cmd.approval
    policy = ev.policy
    if policy is None or policy.access is None:
        return Refused((Reason(ReasonCode.POLICY_UNREADABLE, "approvals need the bundle's `access` section"),))
    who = approval_rules.approver_problems(policy.access, a.approver)
    reasons = [Reason(ReasonCode.APPROVER_INVALID, m) for m in who]
    if a.cohort not in COHORTS:
        reasons.append(Reason(ReasonCode.UNKNOWN_COHORT, f"cohort {a.cohort!r} is not one of {', '.join(COHORTS)}"))
    problem = ev.releases.get(a.release, f"release {a.release[:12]} was not checked against the store")
    if problem is not None:
        reasons.append(Reason(ReasonCode.RELEASE_UNVERIFIED, str(problem).rstrip(".")))
    if not a.approved_at <= now + CLOCK_SKEW or a.expires_at <= now:
        reasons.append(Reason(ReasonCode.APPROVER_INVALID, "the approval's validity window does not include now"))
    if reasons:
        return Refused(tuple(reasons))
    message = f"{a.approver.name} approved release {a.release[:12]} for {a.cohort} until {iso(a.expires_at)}"
    return applied(state, state, cmd, now, message, {"approval": a.to_dict()}, a.release)
