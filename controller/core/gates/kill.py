"""The kill switch: engaged by anyone, never gated; released only by an authorised operator
with a reason, and the release is remembered (``released_at``) so a flag document killed
before it may be replaced (``controller.core.flags.publish_hold``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from controller.core.gates.commands import Kill, ReleaseKill
from controller.core.gates.decisions import (
    Decision,
    Reason,
    ReasonCode,
    Refused,
    applied,
    authority,
    needs_reason,
    noop,
)
from controller.core.gates.evidence import GateEvidence, due_rollbacks
from controller.core.gates.state import KillSwitchState, RolloutState, served
from controller.core.timefmt import iso

__all__ = ["kill", "release_kill"]


def kill(state: RolloutState, cmd: Kill, now: dt.datetime) -> Decision:
    if state.kill.engaged:
        return noop(state, f"the kill switch is already engaged (by {state.kill.by} at {state.kill.at})")
    reason = cmd.reason if cmd.reason and cmd.reason.strip() else "(no reason given)"
    new = dataclasses.replace(state, kill=KillSwitchState(True, reason, cmd.operator, iso(now), state.kill.released_at))
    return applied(
        state, new, cmd, now, "kill switch engaged: every cohort falls back", {"served_before": served(state)}, None
    )


def release_kill(state: RolloutState, cmd: ReleaseKill, ev: GateEvidence, now: dt.datetime) -> Decision:
    reasons = authority(ev.policy, cmd.operator, ev.actor) + needs_reason(cmd.reason)
    if reasons:
        return Refused(tuple(reasons))
    if not state.kill.engaged:
        return noop(state, "the kill switch is not engaged")
    warnings = tuple(
        Reason(ReasonCode.WARNING, f"{due.reason}; `rollout reconcile` will roll it back")
        for due in due_rollbacks(state, ev)
    )
    new = dataclasses.replace(state, kill=KillSwitchState(released_at=iso(now)))
    evidence = {"was": dataclasses.asdict(state.kill), "now_served": served(state)}
    return applied(state, new, cmd, now, "kill switch released", evidence, None, warnings)
