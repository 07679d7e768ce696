"""Promotion: the one command that widens exposure, and the precedence that can hold it.

Promotion needs, all at once (each missing one is a reason): no kill switch; no rollback due;
a valid bundle (the deployed policy); an authorised operator (``rollout.operators``); the release
stored and verified; a stored, verified PASS of exactly that digest, younger than
``eval.max_result_age``, with nothing but passes after it (an INCONCLUSIVE after it is "no fresh
evidence"); the next cohort in order (no skipping); the bake time of the cohort it already holds
elapsed; the approvals of the target cohort (``_approvals``), from people other than the operator
and each other.

Replacing a candidate: a candidate exists only once it reached a cohort, so promoting a
*different* release while a candidate is live is refused: roll the candidate back first
(explicit, audited, and it restores the flag document byte for byte). A new release always
starts at ``internal``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from enum import IntEnum
from typing import Any

from controller.bundle.models import Workflow
from controller.core import approvals as approval_rules
from controller.core.gates.commands import Command, Promote
from controller.core.gates.decisions import Allowed, Decision, Reason, ReasonCode, Refused, applied, authority, noop
from controller.core.gates.evidence import EvalEvidence, GateEvidence, due_rollbacks, eval_problems, span
from controller.core.gates.state import (
    COHORTS,
    MAX_PREVIOUS_STABLES,
    SYSTEM_OPERATORS,
    Candidate,
    RolloutState,
)
from controller.core.timefmt import iso

__all__ = ["Precedence", "outranked", "promote"]


class Precedence(IntEnum):
    """Written once: kill > rollback > promote.

    A condition of higher precedence refuses every command of lower precedence that would widen
    exposure; only Promote widens it. Kill and rollback compose instead of blocking each other
    (a rollback under an engaged kill switch decides what is served once it is released), and
    the flag document gives the kill switch the last word over every cohort.
    """

    PROMOTE = 1
    ROLLBACK = 2
    KILL = 3


_WIDENS = {Promote: Precedence.PROMOTE}


def outranked(state: RolloutState, command: Command, evidence: GateEvidence) -> list[Reason]:
    """The conditions of higher precedence that refuse ``command`` (only widening is refused)."""
    rank = _WIDENS.get(type(command))
    if rank is None:
        return []
    holding: list[tuple[Precedence, Reason]] = []
    if state.kill.engaged:
        holding.append(
            (
                Precedence.KILL,
                Reason(
                    ReasonCode.KILL_SWITCH,
                    f"the kill switch is engaged (by {state.kill.by} at {state.kill.at}: {state.kill.reason}); "
                    "release it with `rollout kill --release` first",
                ),
            )
        )
    for due in due_rollbacks(state, evidence):
        holding.append(
            (Precedence.ROLLBACK, Reason(ReasonCode.ROLLBACK_DUE, f"a rollback is due and comes first: {due.reason}"))
        )
    return [reason for level, reason in holding if level > rank]


def promote(state: RolloutState, cmd: Promote, ev: GateEvidence, now: dt.datetime) -> Decision:
    """Allowed to the next cohort, or every reason it may not happen."""
    already = _already_served(state, cmd)
    if already is not None:
        return already
    reasons = _preconditions(state, cmd, ev)
    found, passing = _release_evidence(cmd, ev, now)
    reasons += found
    valid_approvers: list[str] = []
    approval_records: list[dict[str, Any]] = []
    new = state
    if cmd.release is not None and cmd.cohort in COHORTS:
        found, reached = _cohort_step(state, cmd.release, cmd.cohort, ev.policy, now)
        reasons += found
        if ev.policy is not None and ev.policy.access is not None:  # only recorded, authenticated approvals
            found, counted = _recorded_approvals(cmd, ev, now)
            reasons += found
            valid_approvers = [a.approver.name for a in counted]
            approval_records = [a.summary() for a in counted]
        elif ev.policy is not None:  # a bundle without `access`: named approvers (no identity)
            found, valid_approvers = _approvals(ev.policy, cmd.cohort, cmd.operator, cmd.approvers)
            reasons += found
        new = _promoted(state, cmd.release, cmd.cohort, reached)
    if reasons:
        return Refused(tuple(reasons))
    assert cmd.release is not None and passing is not None
    became = " (now the stable release)" if cmd.cohort == COHORTS[-1] else ""
    evidence = {
        "cohort": cmd.cohort,
        "eval": passing.to_dict(),
        "approved_by": valid_approvers,
        "bundle": "valid",
    }
    if approval_records:
        evidence["approvals"] = approval_records
    message = f"release {cmd.release[:12]} promoted to {cmd.cohort}{became}"
    return applied(state, new, cmd, now, message, evidence, cmd.release)


def _recorded_approvals(
    cmd: Promote, ev: GateEvidence, now: dt.datetime
) -> tuple[list[Reason], list[approval_rules.Approval]]:
    """The chain's authenticated approvals of exactly this release and cohort (``core.approvals``)."""
    assert ev.policy is not None and ev.policy.access is not None and cmd.release is not None
    found, counted = approval_rules.count_approvals(
        ev.approvals,
        access=ev.policy.access,
        release=cmd.release,
        cohort=cmd.cohort,
        operator=ev.actor,
        needed=ev.policy.rollout.cohort(cmd.cohort).approvals,
        now=now,
    )
    return [Reason(ReasonCode(code), message) for code, message in found], list(counted)


def _already_served(state: RolloutState, cmd: Promote) -> Allowed | None:
    """The idempotent no-op when the release already serves the cohort (a safe retry)."""
    release, cohort, cand = cmd.release, cmd.cohort, state.candidate
    if release is None or cohort not in COHORTS:
        return None
    if cand is not None and cand.release == release and cohort in cand.cohorts:
        return noop(state, f"release {release[:12]} already serves cohort {cohort}")
    if cand is None and release == state.stable:
        return noop(state, f"release {release[:12]} is the stable release; it already serves every cohort")
    return None


def _preconditions(state: RolloutState, cmd: Promote, ev: GateEvidence) -> list[Reason]:
    """What holds any promotion: precedence, the bundle, the operator's authority, the cohort."""
    reasons = outranked(state, cmd, ev)
    if ev.bundle_problems:
        listed = "; ".join(ev.bundle_problems[:10]) + (" ..." if len(ev.bundle_problems) > 10 else "")
        reasons.append(
            Reason(ReasonCode.BUNDLE_INVALID, f"the bundle is invalid ({len(ev.bundle_problems)} problems): {listed}")
        )
    reasons += authority(ev.policy, cmd.operator, ev.actor)
    if cmd.cohort not in COHORTS:
        reasons.append(Reason(ReasonCode.UNKNOWN_COHORT, f"cohort {cmd.cohort!r} is not one of {', '.join(COHORTS)}"))
    return reasons


def _release_evidence(cmd: Promote, ev: GateEvidence, now: dt.datetime) -> tuple[list[Reason], EvalEvidence | None]:
    """The release is stored and verified, and its latest eval is a fresh PASS (returned)."""
    release = cmd.release
    if release is None:
        return [
            Reason(ReasonCode.RELEASE_UNKNOWN, "no release to promote: give --release DIGEST or fix the bundle")
        ], None
    reasons: list[Reason] = []
    if release not in ev.releases:
        reasons.append(
            Reason(ReasonCode.RELEASE_UNVERIFIED, f"release {release[:12]} was not checked against the store")
        )
    elif ev.releases[release] is not None:
        reasons.append(Reason(ReasonCode.RELEASE_UNVERIFIED, str(ev.releases[release]).rstrip(".")))
    max_age = ev.policy.eval.max_result_age if ev.policy is not None else None
    found, passing = eval_problems(release, ev.evals.get(release), now, max_age)
    return reasons + found, passing


def _cohort_step(
    state: RolloutState, release: str, cohort: str, policy: Workflow | None, now: dt.datetime
) -> tuple[list[Reason], tuple[tuple[str, str], ...]]:
    """Cohort order (no skipping, one candidate at a time) and bake time; the cohorts reached."""
    cand = state.candidate
    reasons: list[Reason] = []
    if cand is not None and cand.release == release:
        expected = COHORTS[len(cand.cohorts)]
        if cohort != expected:
            reasons.append(
                Reason(
                    ReasonCode.COHORT_ORDER,
                    f"candidate {release[:12]} holds {', '.join(cand.cohorts)}; the next cohort is {expected}, "
                    f"not {cohort} (no skipping)",
                )
            )
        held = cand.cohorts[-1]
        if policy is not None:
            bake = policy.rollout.cohort(held).bake_time
            since = cand.reached_at(held)
            if now - since < bake:
                reasons.append(
                    Reason(
                        ReasonCode.BAKE_TIME,
                        f"cohort {held} has baked {span(now - since)} of {span(bake)}; ready at {iso(since + bake)}",
                    )
                )
        return reasons, (*cand.reached, (cohort, iso(now)))
    if cand is not None:
        reasons.append(
            Reason(
                ReasonCode.CANDIDATE_IN_PROGRESS,
                f"candidate {cand.release[:12]} already serves {', '.join(cand.cohorts)}; roll it back "
                f"(`rollout rollback --reason ...`) before promoting release {release[:12]}",
            )
        )
    if COHORTS.index(cohort) != 0:
        reasons.append(
            Reason(
                ReasonCode.COHORT_ORDER,
                f"release {release[:12]} is not the candidate: a release starts at {COHORTS[0]}, "
                f"not {cohort} (no skipping)",
            )
        )
    return reasons, ((cohort, iso(now)),)


def _promoted(state: RolloutState, release: str, cohort: str, reached: tuple[tuple[str, str], ...]) -> RolloutState:
    """The state once ``release`` reached ``cohort``: reaching the last cohort makes it stable."""
    if cohort == COHORTS[-1]:
        previous = (state.stable,) if state.stable else ()
        return dataclasses.replace(
            state,
            stable=release,
            previous_stables=(*previous, *state.previous_stables)[:MAX_PREVIOUS_STABLES],
            generation=state.generation + 1,
            candidate=None,
            off_reason=None,
        )
    return dataclasses.replace(state, candidate=Candidate(release, reached), off_reason=None)


def _approvals(
    policy: Workflow, cohort: str, operator: str, approvers: Sequence[str]
) -> tuple[list[Reason], list[str]]:
    """The approvals of ``cohort`` that count (people other than the operator and each other),
    and why the rest do not; refuses when fewer than the cohort needs count."""
    problems: list[Reason] = []
    valid: list[str] = []
    seen: set[str] = set()
    for name in approvers:
        key = name.strip().casefold()
        if not key:
            problems.append(Reason(ReasonCode.APPROVER_INVALID, "an empty --approved-by name does not count"))
        elif key == operator.strip().casefold():
            problems.append(
                Reason(
                    ReasonCode.APPROVER_INVALID,
                    f"approver {name!r} is the operator; an approval must come from someone else",
                )
            )
        elif key in seen:
            problems.append(
                Reason(ReasonCode.APPROVER_INVALID, f"approver {name!r} is listed more than once; it counts once")
            )
        elif key in {s.casefold() for s in SYSTEM_OPERATORS}:
            problems.append(Reason(ReasonCode.APPROVER_INVALID, f"approver {name!r} is a system actor, not a person"))
        else:
            seen.add(key)
            valid.append(name.strip())
    needed = policy.rollout.cohort(cohort).approvals
    if len(valid) >= needed:
        return [], valid  # names that do not count are harmless once enough others do
    problems.append(
        Reason(
            ReasonCode.APPROVALS,
            f"cohort {cohort} needs {needed} approval{'s' if needed != 1 else ''} from people other than the "
            f"operator (--approved-by NAME); {len(valid)} given",
        )
    )
    return problems, valid
