"""The rollout gate: pure decisions over the rollout state of one workflow.

``decide(state, command, evidence, now)`` is the one place that computes a next state. It reads
nothing and writes nothing: the service (``controller.service.rollout``) gathers the evidence, calls it,
and persists what it returns. It returns ``Allowed(new_state, reasons, evidence)`` or
``Refused(reasons)``; a refusal is a value, never an exception, and lists *every* reason.

The state (``RolloutState``) holds, per workflow: the stable release (served to every cohort the
candidate has not reached; none at first), the candidate and the cohorts it has reached in order
(internal -> limited -> general; reaching general makes it stable), the kill switch, the last
actions, the audit chain head and a revision. What each cohort is served follows from the state
alone (``served``): the candidate for the cohorts it reached, else the stable release, else off.

Commands (the CLI records an intent; only this module turns it into a state):

    Promote(release, cohort, operator, approvers)   widen: move a release to the next cohort
    Rollback(operator, reason)                      the candidate's cohorts go back to stable
    AutoRollback(release, operator, reason)         reconcile / failed eval: a live release whose
                                                    latest eval FAILED is taken out of service
    Kill(operator, reason)                          engage the kill switch (never gated)
    ReleaseKill(operator, reason)                   release it (operator authority only)
    Approve(approval, operator, reason)             record an authenticated approval (core.approvals)

Promotion needs, all at once (each missing one is a reason): no kill switch; no rollback due;
a valid bundle (the deployed policy); an authorised operator (``rollout.operators``); the release
stored and verified; a stored, verified PASS of exactly that digest, younger than
``eval.max_result_age``, with nothing but passes after it; the next cohort in order (no skipping);
the bake time of the cohort it already holds elapsed; the approvals of the target cohort, from
people other than the operator and each other (with the bundle's ``access``: only approvals
recorded in the chain, ``controller.core.approvals.count_approvals``).

The policy (operators, cohorts, bake times, approvals, ``eval.max_result_age``) is the deployed
bundle's ``workflow.yaml`` (``Evidence.policy``), not the snapshot inside the release being
promoted: a release cannot loosen the rules that admit it.

Decisions documented here, once:

- **Replacing a candidate.** A candidate exists only once it reached a cohort, so promoting a
  *different* release while a candidate is live is refused: roll the candidate back first
  (explicit, audited, and it restores the flag document byte for byte). A new release always
  starts at ``internal``.
- **Idempotence.** Promoting a release to a cohort it already holds (or promoting the stable
  release) is an ``Allowed`` no-op, as are a rollback with nothing to undo, a kill of an engaged
  switch and a release of a released one. Retries after a lost response are therefore safe.
- **Unknown evidence fails closed.** Eval history that was not gathered, could not be read or
  verified, judges another digest, carries an unknown verdict or finished in the future refuses.
- **Automatic rollback of the stable release** (its latest eval FAILED) reverts to the most recent
  earlier stable release whose latest verified eval is a PASS (age is not required: it served
  everyone before, and the alternative is off), else turns the workflow off: every cohort off.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Any

from controller.bundle.models import COHORT_ORDER, Workflow
from controller.core import approvals as approval_rules
from controller.core.audit import ChainHead
from controller.core.timefmt import is_aware, iso, parse_time
from controller.errors import InvalidInput

__all__ = [
    "CLOCK_SKEW",
    "COHORTS",
    "MAX_LAST_ACTIONS",
    "MAX_PREVIOUS_STABLES",
    "OFF",
    "STATE_SCHEMA",
    "SYSTEM_OPERATORS",
    "ActionNote",
    "Allowed",
    "Approve",
    "AutoRollback",
    "Candidate",
    "Command",
    "Decision",
    "EvalEvidence",
    "EvalHistory",
    "Evidence",
    "Kill",
    "KillSwitch",
    "Precedence",
    "Promote",
    "Reason",
    "ReasonCode",
    "Refused",
    "ReleaseKill",
    "Rollback",
    "RolloutState",
    "decide",
    "due_rollbacks",
    "eval_problems",
    "latest",
    "next_cohort",
    "served",
]

COHORTS: tuple[str, ...] = COHORT_ORDER
OFF = "off"
STATE_SCHEMA = "ai-rollout.rollout-state/v1"
# Actors that are not people: they may only do what evidence forces (AutoRollback).
SYSTEM_OPERATORS = frozenset({"reconcile", "eval-run"})
MAX_LAST_ACTIONS = 10
MAX_PREVIOUS_STABLES = 10
# An eval that finished later than this after "now" is from a wrong clock, not evidence.
CLOCK_SKEW = dt.timedelta(minutes=5)
PASS, FAIL = "PASS", "FAIL"


# --- evidence ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class EvalEvidence:
    """What the gate needs of one stored eval result (``controller.evals.scoring.EvalResult``)."""

    digest: str
    verdict: str  # "PASS" | "FAIL"; anything else never passes
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
class Evidence:
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


# --- state ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KillSwitch:
    # Set by Kill (anyone; never gated), cleared by ReleaseKill (an authorised operator).
    engaged: bool = False
    reason: str | None = None
    by: str | None = None
    at: str | None = None
    # Set by ReleaseKill and kept: a flag document killed before it may be replaced (publish_hold).
    released_at: str | None = None


@dataclass(frozen=True)
class Candidate:
    # Set by the first Promote of a release (to internal); extended by each later Promote;
    # cleared by Rollback / AutoRollback, or by reaching general (it then becomes stable).
    release: str
    reached: tuple[tuple[str, str], ...]  # (cohort, ISO time reached), in cohort order

    @property
    def cohorts(self) -> tuple[str, ...]:
        return tuple(c for c, _ in self.reached)

    def reached_at(self, cohort: str) -> dt.datetime:
        return _parse_time(dict(self.reached)[cohort], f"candidate.reached.{cohort}")


@dataclass(frozen=True)
class ActionNote:
    """One applied action, as the state remembers it (the audit chain has the full record)."""

    revision: int
    action: str
    operator: str
    at: str
    release: str | None
    reason: str | None


@dataclass(frozen=True)
class RolloutState:
    workflow: str
    # Incremented by every applied decision; equals the seq of the audit record that made it.
    revision: int = 0
    # Set when a candidate reaches general; replaced by AutoRollback of a failed stable release.
    stable: str | None = None
    # Earlier stable releases, newest first: where an AutoRollback of the stable release goes.
    previous_stables: tuple[str, ...] = ()
    # Incremented whenever the stable baseline changes. It is the flag document's
    # metadata.version: candidate promotions and rollbacks leave it alone, so a rollback
    # restores the flag document byte for byte.
    generation: int = 0
    candidate: Candidate | None = None
    kill: KillSwitch = KillSwitch()
    # Set by AutoRollback when no stable release passes (every cohort off); cleared by Promote.
    off_reason: str | None = None
    last_actions: tuple[ActionNote, ...] = ()
    # The audit chain head; set by the service after the record is stored, never by the gate.
    head: ChainHead | None = None

    # -- encoding (pure) ---------------------------------------------------------------------

    def body(self) -> dict[str, Any]:
        """The state as JSON data without the chain head: the audit record's ``from``/``to``."""
        return {
            "schema": STATE_SCHEMA,
            "workflow": self.workflow,
            "revision": self.revision,
            "stable": self.stable,
            "previous_stables": list(self.previous_stables),
            "generation": self.generation,
            "candidate": None
            if self.candidate is None
            else {
                "release": self.candidate.release,
                "reached": [{"cohort": c, "at": t} for c, t in self.candidate.reached],
            },
            "kill": dataclasses.asdict(self.kill),
            "off_reason": self.off_reason,
            "last_actions": [dataclasses.asdict(a) for a in self.last_actions],
        }

    def to_dict(self) -> dict[str, Any]:
        return {**self.body(), "head": None if self.head is None else self.head.to_dict()}

    @classmethod
    def from_body(cls, body: Any, head: ChainHead | None = None) -> RolloutState:
        """Parse strictly; ``InvalidInput`` naming the field when the state is malformed."""
        try:
            return _parse_body(body, head)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            if isinstance(exc, InvalidInput):
                raise
            raise InvalidInput(f"rollout state is malformed ({type(exc).__name__}: {exc}).") from None

    @classmethod
    def from_dict(cls, data: Any) -> RolloutState:
        if not isinstance(data, dict):
            raise InvalidInput("rollout state is not a JSON object.")
        head = data.get("head")
        body = {k: v for k, v in data.items() if k != "head"}
        if head is not None and (not isinstance(head, dict) or set(head) != {"seq", "hash"}):
            raise InvalidInput(f"rollout state: head must be {{seq, hash}}, not {head!r}.")
        parsed_head = None if head is None else ChainHead(head["seq"], head["hash"])
        return cls.from_body(body, parsed_head)


def _parse_body(body: Any, head: ChainHead | None) -> RolloutState:
    expected = set(RolloutState(workflow="x").body())
    if not isinstance(body, dict) or set(body) != expected:
        got = sorted(body) if isinstance(body, dict) else type(body).__name__
        raise InvalidInput(f"rollout state has the wrong fields: {got}.")
    if body["schema"] != STATE_SCHEMA:
        raise InvalidInput(f"rollout state schema {body['schema']!r}, expected {STATE_SCHEMA!r}.")
    cand = body["candidate"]
    candidate = None
    if cand is not None:
        reached = tuple((str(r["cohort"]), str(r["at"])) for r in cand["reached"])
        cohorts = tuple(c for c, _ in reached)
        if not reached or cohorts != COHORTS[: len(cohorts)] or len(cohorts) >= len(COHORTS):
            raise InvalidInput(
                f"rollout state: candidate cohorts {list(cohorts)} are not a proper prefix of {list(COHORTS)}."
            )
        candidate = Candidate(str(cand["release"]), reached)
    kill = body["kill"]
    state = RolloutState(
        workflow=str(body["workflow"]),
        revision=_int(body["revision"], "revision"),
        stable=body["stable"],
        previous_stables=tuple(str(d) for d in body["previous_stables"]),
        generation=_int(body["generation"], "generation"),
        candidate=candidate,
        kill=KillSwitch(bool(kill["engaged"]), kill["reason"], kill["by"], kill["at"], kill.get("released_at")),
        off_reason=body["off_reason"],
        last_actions=tuple(
            ActionNote(
                _int(a["revision"], "last_actions.revision"),
                str(a["action"]),
                str(a["operator"]),
                str(a["at"]),
                a["release"],
                a["reason"],
            )
            for a in body["last_actions"]
        ),
        head=head,
    )
    for name in ("stable", "off_reason"):
        if body[name] is not None and not isinstance(body[name], str):
            raise InvalidInput(f"rollout state: {name} must be a string or null.")
    if state.body() != body:
        raise InvalidInput("rollout state does not round-trip (a field has the wrong type).")
    return state


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInput(f"rollout state: {name} must be a non-negative integer, not {value!r}.")
    return value


def served(state: RolloutState) -> dict[str, str]:
    """Cohort -> release digest or ``off``: the candidate where it reached, else stable, else off."""
    base = state.stable or OFF
    reached = set(state.candidate.cohorts) if state.candidate else set()
    return {c: (state.candidate.release if c in reached else base) for c in COHORTS}  # type: ignore[union-attr]


def next_cohort(state: RolloutState, release: str | None) -> str | None:
    """The cohort a promotion of ``release`` would target next (None: it is already stable)."""
    if release is not None and state.candidate is not None and state.candidate.release == release:
        return COHORTS[len(state.candidate.cohorts)]
    if release is not None and release == state.stable and state.candidate is None:
        return None
    return COHORTS[0]


# --- commands and decisions -------------------------------------------------------------------


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


def _outranked(state: RolloutState, command: Command, evidence: Evidence) -> list[Reason]:
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


def decide(state: RolloutState, command: Command, evidence: Evidence, now: dt.datetime) -> Decision:
    """The next state for ``command``, or every reason it may not happen. Pure."""
    if not is_aware(now):
        raise InvalidInput("the gate's clock must be timezone-aware.")
    if isinstance(command, Promote):
        return _promote(state, command, evidence, now)
    if isinstance(command, Rollback):
        return _rollback(state, command, evidence, now)
    if isinstance(command, AutoRollback):
        return _auto_rollback(state, command, evidence, now)
    if isinstance(command, Kill):
        return _kill(state, command, now)
    if isinstance(command, ReleaseKill):
        return _release_kill(state, command, evidence, now)
    if isinstance(command, Approve):
        return _approve(state, command, evidence, now)
    raise InvalidInput(f"unknown rollout command {command!r}.")


# --- eval evidence (pure) ---------------------------------------------------------------------


def latest(history: EvalHistory | None) -> EvalEvidence | None:
    """The most recent result; on a tie a non-PASS wins (fail closed)."""
    if history is None or history.error is not None or not history.results:
        return None
    return max(
        history.results,
        key=lambda r: (
            (r.finished_at, r.verdict != PASS)
            if is_aware(r.finished_at)
            else (dt.datetime.max.replace(tzinfo=dt.UTC), True)
        ),
    )


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
    problems: list[Reason] = []
    for r in history.results:
        if r.digest != digest:
            problems.append(
                Reason(
                    ReasonCode.EVAL_OTHER_RELEASE,
                    f"eval {r.content_hash[:12]} judges release {r.digest[:12]}, not {short}",
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
    if problems:
        return problems, None
    last = latest(history)
    assert last is not None
    if last.verdict == FAIL:
        return [
            Reason(
                ReasonCode.EVAL_FAILED,
                f"the latest eval of release {short} FAILED ({last.content_hash[:12]} at {iso(last.finished_at)})",
            )
        ], None
    if last.verdict != PASS:
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
                f"the latest PASS of release {short} is {_span(age)} old (eval.max_result_age is {_span(max_age)}); "
                "run the eval again",
            )
        ], None
    return [], last


def _failed(history: EvalHistory | None) -> EvalEvidence | None:
    """The latest result when it is a verified FAIL (the only thing that forces a rollback)."""
    last = latest(history)
    return last if last is not None and last.verdict == FAIL else None


def due_rollbacks(state: RolloutState, evidence: Evidence) -> tuple[AutoRollback, ...]:
    """The automatic rollbacks the evidence forces: a live release whose latest verified eval
    FAILED. Candidate first (it is the newest), then the stable release. Pure."""
    due = []
    for release, role in (
        (state.candidate.release if state.candidate else None, "candidate"),
        (state.stable, "stable"),
    ):
        if release is None:
            continue
        failed = _failed(evidence.evals.get(release))
        if failed is not None:
            due.append(
                AutoRollback(
                    release,
                    reason=f"the latest eval of the {role} release {release[:12]} FAILED "
                    f"({failed.content_hash[:12]} at {iso(failed.finished_at)})",
                )
            )
    return tuple(due)


# --- per-command decisions --------------------------------------------------------------------


def _authority(policy: Workflow | None, operator: str, actor: approval_rules.Principal | None = None) -> list[Reason]:
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


def _needs_reason(reason: str | None) -> list[Reason]:
    if reason is None or not reason.strip():
        return [Reason(ReasonCode.REASON_REQUIRED, "a reason is required (--reason TEXT)")]
    return []


def _approvals(
    policy: Workflow, cohort: str, operator: str, approvers: Sequence[str]
) -> tuple[list[Reason], list[str]]:
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


def _noop(state: RolloutState, message: str) -> Allowed:
    return Allowed(state, (Reason(ReasonCode.NOTHING_TO_DO, message),), changed=False)


def _applied(
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


def _promote(state: RolloutState, cmd: Promote, ev: Evidence, now: dt.datetime) -> Decision:
    release, cohort = cmd.release, cmd.cohort
    cand = state.candidate
    if release is not None and cohort in COHORTS:
        if cand is not None and cand.release == release and cohort in cand.cohorts:
            return _noop(state, f"release {release[:12]} already serves cohort {cohort}")
        if cand is None and release == state.stable:
            return _noop(state, f"release {release[:12]} is the stable release; it already serves every cohort")

    reasons = _outranked(state, cmd, ev)
    policy = ev.policy
    if ev.bundle_problems:
        listed = "; ".join(ev.bundle_problems[:10]) + (" ..." if len(ev.bundle_problems) > 10 else "")
        reasons.append(
            Reason(ReasonCode.BUNDLE_INVALID, f"the bundle is invalid ({len(ev.bundle_problems)} problems): {listed}")
        )
    reasons += _authority(policy, cmd.operator, ev.actor)
    if cohort not in COHORTS:
        reasons.append(Reason(ReasonCode.UNKNOWN_COHORT, f"cohort {cohort!r} is not one of {', '.join(COHORTS)}"))

    passing: EvalEvidence | None = None
    if release is None:
        reasons.append(
            Reason(ReasonCode.RELEASE_UNKNOWN, "no release to promote: give --release DIGEST or fix the bundle")
        )
    else:
        short = release[:12]
        if release not in ev.releases:
            reasons.append(Reason(ReasonCode.RELEASE_UNVERIFIED, f"release {short} was not checked against the store"))
        elif ev.releases[release] is not None:
            reasons.append(Reason(ReasonCode.RELEASE_UNVERIFIED, str(ev.releases[release]).rstrip(".")))
        max_age = policy.eval.max_result_age if policy is not None else None
        found, passing = eval_problems(release, ev.evals.get(release), now, max_age)
        reasons += found

    valid_approvers: list[str] = []
    approval_records: list[dict[str, Any]] = []
    new = state
    if release is not None and cohort in COHORTS:
        index = COHORTS.index(cohort)
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
                            f"cohort {held} has baked {_span(now - since)} of {_span(bake)}; "
                            f"ready at {iso(since + bake)}",
                        )
                    )
            reached = (*cand.reached, (cohort, iso(now)))
        else:
            if cand is not None:
                reasons.append(
                    Reason(
                        ReasonCode.CANDIDATE_IN_PROGRESS,
                        f"candidate {cand.release[:12]} already serves {', '.join(cand.cohorts)}; roll it back "
                        f"(`rollout rollback --reason ...`) before promoting release {release[:12]}",
                    )
                )
            if index != 0:
                reasons.append(
                    Reason(
                        ReasonCode.COHORT_ORDER,
                        f"release {release[:12]} is not the candidate: a release starts at {COHORTS[0]}, "
                        f"not {cohort} (no skipping)",
                    )
                )
            reached = ((cohort, iso(now)),)
        if policy is not None and policy.access is not None:  # only recorded, authenticated approvals
            found, counted = approval_rules.count_approvals(
                ev.approvals, access=policy.access, release=release, cohort=cohort, operator=ev.actor,
                needed=policy.rollout.cohort(cohort).approvals, now=now,
            )
            reasons += [Reason(ReasonCode(code), message) for code, message in found]
            valid_approvers = [a.approver.name for a in counted]
            approval_records = [a.summary() for a in counted]
        elif policy is not None:  # a bundle without `access`: named approvers (no identity)
            found_approvals, valid_approvers = _approvals(policy, cohort, cmd.operator, cmd.approvers)
            reasons += found_approvals
        if cohort == COHORTS[-1]:
            previous = (state.stable,) if state.stable else ()
            new = dataclasses.replace(
                state,
                stable=release,
                previous_stables=(*previous, *state.previous_stables)[:MAX_PREVIOUS_STABLES],
                generation=state.generation + 1,
                candidate=None,
                off_reason=None,
            )
        else:
            new = dataclasses.replace(state, candidate=Candidate(release, reached), off_reason=None)

    if reasons:
        return Refused(tuple(reasons))
    assert release is not None and passing is not None
    became = " (now the stable release)" if cohort == COHORTS[-1] else ""
    evidence = {
        "cohort": cohort,
        "eval": passing.to_dict(),
        "approved_by": valid_approvers,
        "bundle": "valid",
    }
    if approval_records:
        evidence["approvals"] = approval_records
    return _applied(state, new, cmd, now, f"release {release[:12]} promoted to {cohort}{became}", evidence, release)


def _rollback(state: RolloutState, cmd: Rollback, ev: Evidence, now: dt.datetime) -> Decision:
    reasons = _authority(ev.policy, cmd.operator, ev.actor) + _needs_reason(cmd.reason)
    if reasons:
        return Refused(tuple(reasons))
    cand = state.candidate
    if cand is None:
        return _noop(state, "nothing to roll back: there is no candidate release")
    back = state.stable[:12] if state.stable else OFF
    new = dataclasses.replace(state, candidate=None)
    evidence = {"rolled_back": cand.release, "cohorts": list(cand.cohorts), "now_served": back}
    return _applied(
        state,
        new,
        cmd,
        now,
        f"candidate {cand.release[:12]} rolled back from {', '.join(cand.cohorts)}; they get {back}",
        evidence,
        cand.release,
    )


def _auto_rollback(state: RolloutState, cmd: AutoRollback, ev: Evidence, now: dt.datetime) -> Decision:
    release = cmd.release
    live = {state.candidate.release if state.candidate else None, state.stable} - {None}
    if release not in live:
        return _noop(state, f"release {release[:12]} is not live; nothing to roll back")
    failed = _failed(ev.evals.get(release))
    if failed is None:
        return Refused(
            (
                Reason(
                    ReasonCode.NO_FAILED_EVAL,
                    f"an automatic rollback of {release[:12]} needs its latest verified eval to be a FAIL",
                ),
            )
        )
    evidence: dict[str, Any] = {"eval": failed.to_dict()}
    if state.candidate is not None and state.candidate.release == release:
        back = state.stable[:12] if state.stable else OFF
        new = dataclasses.replace(state, candidate=None)
        evidence.update(rolled_back=release, cohorts=list(state.candidate.cohorts), now_served=back)
        return _applied(
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
        problems, last = eval_problems(earlier, ev.evals.get(earlier), now, None)
        if not problems and last is not None:
            new = dataclasses.replace(
                state, stable=earlier, previous_stables=older[index + 1 :], generation=state.generation + 1
            )
            evidence.update(reverted_to=earlier, reverted_to_eval=last.to_dict())
            return _applied(
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
    return _applied(state, new, cmd, now, f"workflow turned off: {off_reason}; every cohort is off", evidence, release)


def _approve(state: RolloutState, cmd: Approve, ev: Evidence, now: dt.datetime) -> Decision:
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
    return _applied(state, state, cmd, now, message, {"approval": a.to_dict()}, a.release)


def _kill(state: RolloutState, cmd: Kill, now: dt.datetime) -> Decision:
    if state.kill.engaged:
        return _noop(state, f"the kill switch is already engaged (by {state.kill.by} at {state.kill.at})")
    reason = cmd.reason if cmd.reason and cmd.reason.strip() else "(no reason given)"
    new = dataclasses.replace(state, kill=KillSwitch(True, reason, cmd.operator, iso(now), state.kill.released_at))
    return _applied(
        state, new, cmd, now, "kill switch engaged: every cohort falls back", {"served_before": served(state)}, None
    )


def _release_kill(state: RolloutState, cmd: ReleaseKill, ev: Evidence, now: dt.datetime) -> Decision:
    reasons = _authority(ev.policy, cmd.operator, ev.actor) + _needs_reason(cmd.reason)
    if reasons:
        return Refused(tuple(reasons))
    if not state.kill.engaged:
        return _noop(state, "the kill switch is not engaged")
    warnings = tuple(
        Reason(ReasonCode.WARNING, f"{due.reason}; `rollout reconcile` will roll it back")
        for due in due_rollbacks(state, ev)
    )
    new = dataclasses.replace(state, kill=KillSwitch(released_at=iso(now)))
    evidence = {"was": dataclasses.asdict(state.kill), "now_served": served(state)}
    return _applied(state, new, cmd, now, "kill switch released", evidence, None, warnings)


# --- small pure helpers -----------------------------------------------------------------------


def _parse_time(text: str, what: str) -> dt.datetime:
    try:
        return parse_time(text)
    except ValueError as exc:
        raise InvalidInput(f"rollout state: {what}: {exc}.") from None


def _span(delta: dt.timedelta) -> str:
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
