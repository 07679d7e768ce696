"""Rollbacks: the operator's (the candidate goes back to stable) and the automatic one that a
FAILED eval forces (reconcile, or ``rollout eval run`` through its rollback hook).

An automatic rollback of the stable release (its latest conclusive eval FAILED) reverts to the
most recent earlier stable release whose latest conclusive verified eval is a PASS (age is not
required: it served everyone before, and the alternative is off), else turns the workflow off:
every cohort off. An INCONCLUSIVE eval never rolls anything back.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from controller.core.gates.commands import AutoRollback, Rollback
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
from controller.core.gates.evidence import (
    EvalEvidence,
    GateEvidence,
    eval_problems,
    failed_eval,
    latest,
    latest_conclusive,
)
from controller.core.gates.state import OFF, RolloutState
from controller.core.verdict import Verdict

__all__ = ["auto_rollback", "rollback"]


def rollback(state: RolloutState, cmd: Rollback, ev: GateEvidence, now: dt.datetime) -> Decision:
    reasons = authority(ev.policy, cmd.operator, ev.actor) + needs_reason(cmd.reason)
    if reasons:
        return Refused(tuple(reasons))
    cand = state.candidate
    if cand is None:
        return noop(state, "nothing to roll back: there is no candidate release")
    back = state.stable[:12] if state.stable else OFF
    new = dataclasses.replace(state, candidate=None)
    evidence = {"rolled_back": cand.release, "cohorts": list(cand.cohorts), "now_served": back}
    return applied(
        state,
        new,
        cmd,
        now,
        f"candidate {cand.release[:12]} rolled back from {', '.join(cand.cohorts)}; they get {back}",
        evidence,
        cand.release,
    )


def auto_rollback(state: RolloutState, cmd: AutoRollback, ev: GateEvidence, now: dt.datetime) -> Decision:
    release = cmd.release
    live = {state.candidate.release if state.candidate else None, state.stable} - {None}
    if release not in live:
        return noop(state, f"release {release[:12]} is not live; nothing to roll back")
    failed = failed_eval(ev.evals.get(release))
    if failed is None:
        return Refused(
            (
                Reason(
                    ReasonCode.NO_FAILED_EVAL,
                    f"an automatic rollback of {release[:12]} needs its latest conclusive verified eval to be a FAIL",
                ),
            )
        )
    evidence: dict[str, Any] = {"eval": failed.to_dict()}
    if state.candidate is not None and state.candidate.release == release:
        back = state.stable[:12] if state.stable else OFF
        new = dataclasses.replace(state, candidate=None)
        evidence.update(rolled_back=release, cohorts=list(state.candidate.cohorts), now_served=back)
        return applied(
            state,
            new,
            cmd,
            now,
            f"candidate {release[:12]} rolled back automatically (its latest eval FAILED); its cohorts get {back}",
            evidence,
            release,
        )
    # The stable release failed: the newest earlier stable release that still passes, else off.
    older = state.previous_stables
    for index, earlier in enumerate(older):
        last = _still_passes(earlier, ev, now)
        if last is not None:
            new = dataclasses.replace(
                state, stable=earlier, previous_stables=older[index + 1 :], generation=state.generation + 1
            )
            evidence.update(reverted_to=earlier, reverted_to_eval=last.to_dict())
            return applied(
                state,
                new,
                cmd,
                now,
                f"stable release {release[:12]} FAILED its eval; reverted to the earlier stable release {earlier[:12]}",
                evidence,
                release,
            )
    off_reason = (
        f"stable release {release[:12]} FAILED its eval ({failed.content_hash[:12]}) and no earlier stable "
        "release passes"
    )
    new = dataclasses.replace(
        state, stable=None, previous_stables=(), generation=state.generation + 1, off_reason=off_reason
    )
    evidence.update(reverted_to=None, checked=list(older))
    return applied(state, new, cmd, now, f"workflow turned off: {off_reason}; every cohort is off", evidence, release)


def _still_passes(earlier: str, ev: GateEvidence, now: dt.datetime) -> EvalEvidence | None:
    """The PASS that lets a failed stable release revert to ``earlier``: its latest conclusive
    verified eval (age is not required, and an INCONCLUSIVE after it is no evidence against it:
    it served everyone before, and the alternative is off)."""
    history = ev.evals.get(earlier)
    problems, _ = eval_problems(earlier, history, now, None)
    if not problems:
        return latest(history)
    if any(p.code is not ReasonCode.EVAL_INCONCLUSIVE for p in problems):
        return None
    last = latest_conclusive(history)
    return last if last is not None and last.verdict == Verdict.PASS else None
