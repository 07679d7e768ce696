"""The evidence the rollout gate reads, and the pure rules over eval history.

``GateEvidence`` is everything outside the state that a decision may depend on, gathered by the
service: the deployed policy, the bundle's problems, per-release eval history and release
checks. Eval verdicts (``controller.core.verdict``):

- a promotion needs the *latest* result to be a fresh, verified PASS of exactly that digest
  (an INCONCLUSIVE latest result refuses: "no fresh evidence"; run the eval again);
- a rollback is forced only by a FAIL that is the latest *conclusive* result: INCONCLUSIVE is no
  evidence either way, so it never rolls anything back and never hides an earlier FAIL;
- unknown evidence fails closed: history that was not gathered, could not be read or verified,
  judges another digest, carries an unknown verdict or finished in the future refuses.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from controller.bundle.models import Workflow
from controller.core import approvals as approval_rules
from controller.core.gates.commands import AutoRollback
from controller.core.gates.decisions import Reason, ReasonCode
from controller.core.gates.state import RolloutState
from controller.core.timefmt import is_aware, iso
from controller.core.verdict import NO_FRESH_EVIDENCE, Verdict, parse_verdict

__all__ = [
    "CLOCK_SKEW",
    "EvalEvidence",
    "EvalHistory",
    "GateEvidence",
    "due_rollbacks",
    "eval_problems",
    "failed_eval",
    "latest",
    "latest_conclusive",
    "no_fresh_evidence",
    "no_fresh_evidence_notes",
    "span",
]

# An eval that finished later than this after "now" is from a wrong clock, not evidence.
CLOCK_SKEW = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class EvalEvidence:
    """What the gate needs of one stored eval result (``controller.evals.results.EvalResult``)."""

    digest: str
    verdict: str  # a ``Verdict`` value; anything else never passes and never rolls back
    finished_at: dt.datetime  # timezone-aware
    content_hash: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "digest": self.digest,
            "verdict": self.verdict,
            "finished_at": iso(self.finished_at) if is_aware(self.finished_at) else str(self.finished_at),
            "content_hash": self.content_hash,
        }


@dataclass(frozen=True)
class EvalHistory:
    """Every verified result of one release, oldest first; or why it could not be read."""

    results: tuple[EvalEvidence, ...] = ()
    error: str | None = None


@dataclass(frozen=True)
class GateEvidence:
    """Everything outside the state that a decision may depend on, gathered by the service.

    A release missing from ``evals`` or ``releases`` was not looked at: unknown, so it refuses
    wherever it is needed.
    """

    policy: Workflow | None = None  # the deployed bundle's workflow.yaml; None: unreadable
    bundle_problems: tuple[str, ...] = ()  # empty: the bundle validated
    evals: Mapping[str, EvalHistory] = field(default_factory=dict)
    releases: Mapping[str, str | None] = field(default_factory=dict)  # digest -> problem | None
    # With ``access`` in the policy: who is acting (an authenticated ``Principal``; None: a bare
    # name) and the approvals recorded in the chain (``controller.core.approvals``).
    actor: approval_rules.Principal | None = None
    approvals: tuple[approval_rules.Approval, ...] = ()


def latest(history: EvalHistory | None) -> EvalEvidence | None:
    """The most recent result; on a tie a non-PASS wins (fail closed)."""
    if history is None or history.error is not None or not history.results:
        return None
    return _newest(history.results)


def latest_conclusive(history: EvalHistory | None) -> EvalEvidence | None:
    """The most recent PASS or FAIL: an INCONCLUSIVE (or unknown) result is no evidence either
    way, so it neither hides an earlier FAIL nor stands in for an earlier PASS."""
    if history is None or history.error is not None:
        return None
    conclusive = [r for r in history.results if _verdict(r) in (Verdict.PASS, Verdict.FAIL)]
    return _newest(conclusive) if conclusive else None


def no_fresh_evidence(history: EvalHistory | None) -> EvalEvidence | None:
    """The latest result when it is INCONCLUSIVE (status, reconcile and the report say so)."""
    last = latest(history)
    return last if last is not None and _verdict(last) is Verdict.INCONCLUSIVE else None


def _newest(results: Sequence[EvalEvidence]) -> EvalEvidence:
    return max(
        results,
        key=lambda r: (
            (r.finished_at, r.verdict != Verdict.PASS)
            if is_aware(r.finished_at)
            else (dt.datetime.max.replace(tzinfo=dt.UTC), True)
        ),
    )


def _verdict(result: EvalEvidence) -> Verdict | None:
    return parse_verdict(result.verdict)


def eval_problems(
    digest: str, history: EvalHistory | None, now: dt.datetime, max_age: dt.timedelta | None
) -> tuple[list[Reason], EvalEvidence | None]:
    """Why ``history`` does not show a fresh, verified, latest PASS of ``digest`` (and the
    passing result when it does). ``max_age`` None: age is not checked."""
    short = digest[:12]
    if history is None:
        return [Reason(ReasonCode.EVAL_MISSING, f"no eval evidence of release {short} was gathered")], None
    if history.error is not None:
        return [
            Reason(ReasonCode.EVAL_UNREADABLE, f"eval results of release {short} cannot be trusted: {history.error}")
        ], None
    if not history.results:
        return [Reason(ReasonCode.EVAL_MISSING, f"release {short} has no stored eval; run `rollout eval run`")], None
    problems = _untrustworthy(digest, history.results, now)
    if problems:
        return problems, None
    last = latest(history)
    assert last is not None
    if _verdict(last) is Verdict.FAIL:
        return [
            Reason(
                ReasonCode.EVAL_FAILED,
                f"the latest eval of release {short} FAILED ({last.content_hash[:12]} at {iso(last.finished_at)})",
            )
        ], None
    if _verdict(last) is Verdict.INCONCLUSIVE:
        return [
            Reason(
                ReasonCode.EVAL_INCONCLUSIVE,
                f"{NO_FRESH_EVIDENCE}: the latest eval of release {short} is INCONCLUSIVE ({last.content_hash[:12]} "
                f"at {iso(last.finished_at)}: the model or a dependency was unavailable); run the eval again",
            )
        ], None
    if _verdict(last) is not Verdict.PASS:
        return [
            Reason(
                ReasonCode.EVAL_INCONCLUSIVE,
                f"the latest eval of release {short} is {last.verdict!r}, not PASS ({last.content_hash[:12]}); "
                "only a PASS counts",
            )
        ], None
    age = now - last.finished_at
    if max_age is not None and age > max_age:
        return [
            Reason(
                ReasonCode.EVAL_STALE,
                f"the latest PASS of release {short} is {span(age)} old (eval.max_result_age is {span(max_age)}); "
                "run the eval again",
            )
        ], None
    return [], last


def _untrustworthy(digest: str, results: Sequence[EvalEvidence], now: dt.datetime) -> list[Reason]:
    """Results that cannot count at all: of another release, without a time zone, from the future."""
    problems: list[Reason] = []
    for r in results:
        if r.digest != digest:
            problems.append(
                Reason(
                    ReasonCode.EVAL_OTHER_RELEASE,
                    f"eval {r.content_hash[:12]} judges release {r.digest[:12]}, not {digest[:12]}",
                )
            )
        if not is_aware(r.finished_at):
            problems.append(
                Reason(ReasonCode.EVAL_UNREADABLE, f"eval {r.content_hash[:12]} has no time zone on finished_at")
            )
        elif r.finished_at > now + CLOCK_SKEW:
            problems.append(
                Reason(
                    ReasonCode.EVAL_FROM_FUTURE,
                    f"eval {r.content_hash[:12]} finished in the future ({iso(r.finished_at)})",
                )
            )
    return problems


def failed_eval(history: EvalHistory | None) -> EvalEvidence | None:
    """The latest conclusive result when it is a verified FAIL (the only thing that forces a
    rollback; an INCONCLUSIVE after it changes nothing, and never forces one itself)."""
    last = latest_conclusive(history)
    return last if last is not None and _verdict(last) is Verdict.FAIL else None


def due_rollbacks(state: RolloutState, evidence: GateEvidence) -> tuple[AutoRollback, ...]:
    """The automatic rollbacks the evidence forces: a live release whose latest conclusive verified
    eval FAILED. Candidate first (it is the newest), then the stable release. Pure."""
    due = []
    for release, role in (
        (state.candidate.release if state.candidate else None, "candidate"),
        (state.stable, "stable"),
    ):
        if release is None:
            continue
        failed = failed_eval(evidence.evals.get(release))
        if failed is not None:
            due.append(
                AutoRollback(
                    release,
                    reason=f"the latest eval of the {role} release {release[:12]} FAILED "
                    f"({failed.content_hash[:12]} at {iso(failed.finished_at)})",
                )
            )
    return tuple(due)


def no_fresh_evidence_notes(state: RolloutState, evidence: GateEvidence) -> tuple[str, ...]:
    """One note per live release whose latest eval is INCONCLUSIVE: it keeps serving (nothing
    proves it failed) but nothing fresh proves it passes either. Pure."""
    notes = []
    for release, role in (
        (state.candidate.release if state.candidate else None, "candidate"),
        (state.stable, "stable"),
    ):
        last = no_fresh_evidence(evidence.evals.get(release)) if release else None
        if release is not None and last is not None:
            notes.append(
                f"{NO_FRESH_EVIDENCE} for the {role} release {release[:12]}: its latest eval "
                f"{last.content_hash[:12]} ({iso(last.finished_at)}) is INCONCLUSIVE; nothing was rolled back"
            )
    return tuple(notes)


def span(delta: dt.timedelta) -> str:
    """A duration as people read it in a reason: ``2d3h``, ``1h30m``, ``5m``."""
    seconds = int(delta.total_seconds())
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{sign}{days}d{hours}h" if hours else f"{sign}{days}d"
    if hours:
        return f"{sign}{hours}h{minutes}m" if minutes else f"{sign}{hours}h"
    return f"{sign}{minutes}m"
