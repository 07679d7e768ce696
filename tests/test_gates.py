"""The rollout gate, table-driven: state x command x evidence -> decision, on a fixed clock.

The policy is the shipped bundle's workflow.yaml: operators priya.natarajan, sam.okafor,
ci-release-bot; internal (bake 24h, 0 approvals) -> limited (bake 72h, 1) -> general (0h, 2);
eval.max_result_age 7d.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from controller.bundle.models import Workflow
from controller.bundle.yamlio import load_yaml
from controller.core.audit import ChainHead
from controller.core.gates import (
    CLOCK_SKEW,
    MAX_LAST_ACTIONS,
    OFF,
    Allowed,
    AutoRollback,
    Candidate,
    EvalEvidence,
    EvalHistory,
    GateEvidence,
    Kill,
    KillSwitchState,
    Precedence,
    Promote,
    ReasonCode,
    Refused,
    ReleaseKill,
    Rollback,
    RolloutState,
    decide,
    due_rollbacks,
    next_cohort,
    served,
)
from controller.errors import InvalidInput

REPO = Path(__file__).resolve().parent.parent
# The shipped policy without its `access` section: these tests drive the gate with named
# operators and approvers; authenticated ones and recorded approvals: tests/test_approvals.py.
WF = Workflow.model_validate(
    {k: v for k, v in load_yaml(REPO / "workflows/internal-docs-qa/workflow.yaml").data.items() if k != "access"}
)
NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
A, B, C = "a" * 64, "b" * 64, "c" * 64
OP, OP2, OP3 = "priya.natarajan", "sam.okafor", "ci-release-bot"
C_ = ReasonCode


def ago(**kw: float) -> dt.datetime:
    return NOW - dt.timedelta(**kw)


def iso(t: dt.datetime) -> str:
    return t.isoformat(timespec="microseconds").replace("+00:00", "Z")


def res(digest: str, verdict: str, at: dt.datetime, n: int = 0) -> EvalEvidence:
    return EvalEvidence(digest, verdict, at, f"{n:02d}" + "e" * 62)


def hist(*results: EvalEvidence) -> EvalHistory:
    return EvalHistory(tuple(results))


PASS_A = hist(res(A, "PASS", ago(hours=1)))
PASS_B = hist(res(B, "PASS", ago(hours=2)))
FAIL_A = hist(res(A, "PASS", ago(hours=3)), res(A, "FAIL", ago(hours=1), 1))
FAIL_B = hist(res(B, "FAIL", ago(hours=1)))
INCONCLUSIVE_A = hist(res(A, "PASS", ago(hours=3)), res(A, "INCONCLUSIVE", ago(hours=1), 1))
INCONCLUSIVE_B = hist(res(B, "INCONCLUSIVE", ago(hours=1)))


def ev(evals: dict[str, EvalHistory] | None = None, **kw: Any) -> GateEvidence:
    base: dict[str, Any] = {"policy": WF, "evals": {A: PASS_A} if evals is None else evals, "releases": {A: None}}
    base.update(kw)
    return GateEvidence(**base)


def cand(release: str, *reached: tuple[str, dt.datetime]) -> Candidate:
    return Candidate(release, tuple((c, iso(t)) for c, t in reached))


EMPTY = RolloutState("internal-docs-qa")
STABLE_B = dataclasses.replace(EMPTY, stable=B, generation=1, revision=3)
A_INTERNAL = dataclasses.replace(STABLE_B, candidate=cand(A, ("internal", ago(hours=25))))
A_INTERNAL_FRESH = dataclasses.replace(STABLE_B, candidate=cand(A, ("internal", ago(hours=1))))
A_LIMITED = dataclasses.replace(STABLE_B, candidate=cand(A, ("internal", ago(hours=200)), ("limited", ago(hours=73))))
KILLED = dataclasses.replace(EMPTY, kill=KillSwitchState(True, "incident 42", OP3, iso(ago(minutes=5))))


def promote(release: str | None = A, cohort: str = "internal", operator: str = OP, *approvers: str) -> Promote:
    return Promote(release, cohort, operator, tuple(approvers))


REFUSALS = [
    # (id, state, command, evidence, exactly these reason codes)
    ("kill-switch", KILLED, promote(), ev(), {C_.KILL_SWITCH}),
    ("bundle-invalid", EMPTY, promote(), ev(bundle_problems=("golden.yaml: x",)), {C_.BUNDLE_INVALID}),
    ("not-an-operator", EMPTY, promote(A, "internal", "mallory"), ev(), {C_.NOT_AUTHORISED}),
    ("system-actor-is-not-an-operator", EMPTY, promote(A, "internal", "reconcile"), ev(), {C_.NOT_AUTHORISED}),
    ("policy-unreadable", EMPTY, promote(), ev(policy=None), {C_.POLICY_UNREADABLE}),
    ("unknown-cohort", EMPTY, promote(A, "everyone"), ev(), {C_.UNKNOWN_COHORT}),
    ("no-release", EMPTY, promote(None), ev(), {C_.RELEASE_UNKNOWN}),
    ("release-not-checked", EMPTY, promote(), ev(releases={}), {C_.RELEASE_UNVERIFIED}),
    ("release-tampered", EMPTY, promote(), ev(releases={A: "release aaaa: file x is modified"}), {C_.RELEASE_UNVERIFIED}),
    ("eval-not-gathered", EMPTY, promote(), ev({}), {C_.EVAL_MISSING}),
    ("eval-none-stored", EMPTY, promote(), ev({A: hist()}), {C_.EVAL_MISSING}),
    ("eval-unreadable", EMPTY, promote(), ev({A: EvalHistory(error="edited")}), {C_.EVAL_UNREADABLE}),
    ("eval-later-fail", EMPTY, promote(), ev({A: FAIL_A}), {C_.EVAL_FAILED}),
    ("eval-only-fail", EMPTY, promote(), ev({A: hist(res(A, "FAIL", ago(hours=1)))}), {C_.EVAL_FAILED}),
    ("eval-tie-fail-wins", EMPTY, promote(), ev({A: hist(res(A, "PASS", ago(hours=1)), res(A, "FAIL", ago(hours=1), 1))}), {C_.EVAL_FAILED}),
    ("eval-stale", EMPTY, promote(), ev({A: hist(res(A, "PASS", ago(days=7, seconds=1)))}), {C_.EVAL_STALE}),
    ("eval-of-other-release", EMPTY, promote(), ev({A: hist(res(B, "PASS", ago(hours=1)))}), {C_.EVAL_OTHER_RELEASE}),
    ("eval-from-future", EMPTY, promote(), ev({A: hist(res(A, "PASS", NOW + CLOCK_SKEW + dt.timedelta(seconds=1)))}), {C_.EVAL_FROM_FUTURE}),
    ("eval-naive-time", EMPTY, promote(), ev({A: hist(res(A, "PASS", ago(hours=1).replace(tzinfo=None)))}), {C_.EVAL_UNREADABLE}),
    ("eval-unknown-verdict", EMPTY, promote(), ev({A: hist(res(A, "PASS", ago(hours=2)), res(A, "ERROR", ago(hours=1), 1))}), {C_.EVAL_INCONCLUSIVE}),
    ("eval-inconclusive-after-pass", EMPTY, promote(), ev({A: INCONCLUSIVE_A}), {C_.EVAL_INCONCLUSIVE}),
    ("eval-only-inconclusive", EMPTY, promote(), ev({A: hist(res(A, "INCONCLUSIVE", ago(hours=1)))}), {C_.EVAL_INCONCLUSIVE}),
    ("eval-tie-inconclusive-wins", EMPTY, promote(), ev({A: hist(res(A, "PASS", ago(hours=1)), res(A, "INCONCLUSIVE", ago(hours=1), 1))}), {C_.EVAL_INCONCLUSIVE}),
    ("skip-to-limited", EMPTY, promote(A, "limited", OP, OP2), ev(), {C_.COHORT_ORDER}),
    ("skip-to-general", A_INTERNAL, promote(A, "general", OP, OP2, OP3), ev(), {C_.COHORT_ORDER}),
    ("bake-time", A_INTERNAL_FRESH, promote(A, "limited", OP, OP2), ev(), {C_.BAKE_TIME}),
    ("limited-needs-one-approval", A_INTERNAL, promote(A, "limited"), ev(), {C_.APPROVALS}),
    ("operator-cannot-approve", A_INTERNAL, promote(A, "limited", OP, OP), ev(), {C_.APPROVER_INVALID, C_.APPROVALS}),
    ("operator-cannot-approve-any-case", A_INTERNAL, promote(A, "limited", OP, "Priya.Natarajan "), ev(), {C_.APPROVER_INVALID, C_.APPROVALS}),
    ("approvers-distinct", A_LIMITED, promote(A, "general", OP, OP2, OP2), ev(), {C_.APPROVER_INVALID, C_.APPROVALS}),
    ("empty-approver", A_LIMITED, promote(A, "general", OP, OP2, " "), ev(), {C_.APPROVER_INVALID, C_.APPROVALS}),
    ("another-candidate-in-progress", A_INTERNAL, promote(C, "internal"), ev({C: hist(res(C, "PASS", ago(hours=1)))}, releases={C: None}), {C_.CANDIDATE_IN_PROGRESS}),
    ("other-release-cannot-skip-either", A_INTERNAL, promote(C, "limited", OP, OP2), ev({C: hist(res(C, "PASS", ago(hours=1)))}, releases={C: None}), {C_.CANDIDATE_IN_PROGRESS, C_.COHORT_ORDER}),
    ("candidate-failing-rollback-due", A_INTERNAL, promote(A, "limited", OP, OP2), ev({A: FAIL_A}), {C_.EVAL_FAILED, C_.ROLLBACK_DUE}),
    ("stable-failing-rollback-due", STABLE_B, promote(), ev({A: PASS_A, B: FAIL_B}), {C_.ROLLBACK_DUE}),
]


@pytest.mark.parametrize(("state", "command", "evidence", "codes"), [pytest.param(*r[1:], id=r[0]) for r in REFUSALS])
def test_promote_refusals(state: RolloutState, command: Promote, evidence: GateEvidence, codes: set[ReasonCode]) -> None:
    decision = decide(state, command, evidence, NOW)
    assert isinstance(decision, Refused), decision
    assert set(decision.codes) == codes, [r.message for r in decision.reasons]
    assert all(r.message for r in decision.reasons)


def test_a_refusal_lists_every_reason_at_once() -> None:
    state = dataclasses.replace(A_INTERNAL_FRESH, kill=KILLED.kill)
    evidence = GateEvidence(
        policy=WF,
        bundle_problems=("workflow.yaml: bad",),
        evals={C: hist(res(C, "PASS", ago(days=30))), A: FAIL_A},
        releases={C: "release cccc is not in the store"},
    )
    decision = decide(state, Promote(C, "general", "mallory", ("mallory", "x", "x")), evidence, NOW)
    assert isinstance(decision, Refused)
    assert set(decision.codes) == {
        C_.KILL_SWITCH,
        C_.ROLLBACK_DUE,
        C_.BUNDLE_INVALID,
        C_.NOT_AUTHORISED,
        C_.RELEASE_UNVERIFIED,
        C_.EVAL_STALE,
        C_.CANDIDATE_IN_PROGRESS,
        C_.COHORT_ORDER,
        C_.APPROVER_INVALID,
        C_.APPROVALS,
    }
    # precedence is visible in the order: kill first, then the rollback that is due
    assert decision.codes[:2] == (C_.KILL_SWITCH, C_.ROLLBACK_DUE)


ALLOWED = [
    # (id, state, command, evidence, check(new_state))
    ("first-release-to-internal", EMPTY, promote(), ev(), lambda s: s.candidate == cand(A, ("internal", NOW)) and s.stable is None),
    ("pass-after-fail-counts", EMPTY, promote(), ev({A: hist(res(A, "FAIL", ago(hours=3)), res(A, "PASS", ago(hours=1), 1))}), lambda s: s.candidate is not None),
    ("exactly-max-age", EMPTY, promote(), ev({A: hist(res(A, "PASS", ago(days=7)))}), lambda s: s.candidate is not None),
    ("small-clock-skew-tolerated", EMPTY, promote(), ev({A: hist(res(A, "PASS", NOW + dt.timedelta(minutes=2)))}), lambda s: s.candidate is not None),
    ("internal-to-limited", A_INTERNAL, promote(A, "limited", OP, OP2), ev(), lambda s: s.candidate.cohorts == ("internal", "limited")),
    ("bake-exactly-elapsed", dataclasses.replace(STABLE_B, candidate=cand(A, ("internal", ago(hours=24)))), promote(A, "limited", OP, OP2), ev(), lambda s: s.candidate.cohorts == ("internal", "limited")),
    ("extra-invalid-approver-harmless", A_INTERNAL, promote(A, "limited", OP, OP, OP2), ev(), lambda s: s.candidate.cohorts[-1] == "limited"),
    (
        "general-makes-stable",
        A_LIMITED,
        promote(A, "general", OP, OP2, OP3),
        ev(),
        lambda s: s.stable == A and s.candidate is None and s.generation == 2 and s.previous_stables == (B,),
    ),
    ("clears-off-reason", dataclasses.replace(EMPTY, off_reason="was off"), promote(), ev(), lambda s: s.off_reason is None),
]


@pytest.mark.parametrize(("state", "command", "evidence", "check"), [pytest.param(*r[1:], id=r[0]) for r in ALLOWED])
def test_promote_allowed(state: RolloutState, command: Promote, evidence: GateEvidence, check: Any) -> None:
    decision = decide(state, command, evidence, NOW)
    assert isinstance(decision, Allowed), [r.message for r in decision.reasons]
    assert decision.changed
    assert check(decision.new_state)
    assert decision.new_state.revision == state.revision + 1
    note = decision.new_state.last_actions[0]
    assert (note.action, note.operator, note.release, note.revision) == ("promote", command.operator, A, state.revision + 1)
    assert decision.evidence["eval"]["verdict"] == "PASS"
    assert decision.evidence["eval"]["digest"] == A


@pytest.mark.parametrize(
    ("state", "command"),
    [
        pytest.param(A_INTERNAL, promote(A, "internal"), id="already-holds-cohort"),
        pytest.param(STABLE_B, promote(B, "general"), id="already-stable"),
        pytest.param(STABLE_B, promote(B, "internal", "mallory"), id="already-stable-anyone"),
    ],
)
def test_promote_noop_is_idempotent(state: RolloutState, command: Promote) -> None:
    decision = decide(state, command, GateEvidence(), NOW)  # no evidence needed: nothing changes
    assert isinstance(decision, Allowed) and not decision.changed
    assert decision.new_state == state
    assert decision.reasons[0].code is C_.NOTHING_TO_DO


# --- rollback, auto-rollback, kill, release ---------------------------------------------------------

OTHERS = [
    # (id, state, command, evidence, outcome: "refused"/{codes} | "noop" | check)
    ("rollback-candidate", A_LIMITED, Rollback(OP, "bad answers"), ev({}), lambda s: s.candidate is None and s.stable == B),
    ("rollback-nothing", STABLE_B, Rollback(OP, "why"), ev({}), "noop"),
    ("rollback-unauthorised", A_LIMITED, Rollback("mallory", "why"), ev({}), {C_.NOT_AUTHORISED}),
    ("rollback-needs-reason", A_LIMITED, Rollback(OP, " "), ev({}), {C_.REASON_REQUIRED}),
    ("rollback-under-kill", dataclasses.replace(A_LIMITED, kill=KILLED.kill), Rollback(OP, "why"), ev({}), lambda s: s.candidate is None and s.kill.engaged),
    ("auto-candidate-failed", A_LIMITED, AutoRollback(A), ev({A: FAIL_A}), lambda s: s.candidate is None and s.stable == B),
    ("auto-needs-a-fail", A_LIMITED, AutoRollback(A), ev({A: PASS_A}), {C_.NO_FAILED_EVAL}),
    ("auto-unknown-evidence-refuses", A_LIMITED, AutoRollback(A), ev({}), {C_.NO_FAILED_EVAL}),
    ("auto-unreadable-evidence-refuses", A_LIMITED, AutoRollback(A), ev({A: EvalHistory(error="x")}), {C_.NO_FAILED_EVAL}),
    ("auto-not-live", STABLE_B, AutoRollback(A), ev({A: FAIL_A}), "noop"),
    (
        "auto-stable-reverts-to-earlier-passing",
        dataclasses.replace(STABLE_B, previous_stables=(C, A)),
        AutoRollback(B),
        ev({B: FAIL_B, C: hist(res(C, "PASS", ago(days=60)))}),
        lambda s: s.stable == C and s.previous_stables == (A,) and s.generation == 2 and s.off_reason is None,
    ),
    (
        "auto-stable-skips-failing-earlier",
        dataclasses.replace(STABLE_B, previous_stables=(C, A)),
        AutoRollback(B),
        ev({B: FAIL_B, C: hist(res(C, "FAIL", ago(days=1))), A: PASS_A}),
        lambda s: s.stable == A and s.previous_stables == (),
    ),
    (
        "auto-stable-nothing-passes-turns-off",
        dataclasses.replace(STABLE_B, previous_stables=(C,)),
        AutoRollback(B),
        ev({B: FAIL_B}),  # C's evidence unknown: it does not count as passing
        lambda s: s.stable is None and s.off_reason and served(s) == dict.fromkeys(served(s), OFF),
    ),
    ("kill-by-anyone", A_LIMITED, Kill("night-shift", "incident"), GateEvidence(), lambda s: s.kill.engaged and s.kill.by == "night-shift" and s.candidate == A_LIMITED.candidate),
    ("kill-without-policy", EMPTY, Kill("x", "y"), GateEvidence(policy=None), lambda s: s.kill.engaged),
    ("kill-twice", KILLED, Kill(OP, "again"), GateEvidence(), "noop"),
    ("release-kill", KILLED, ReleaseKill(OP, "resolved"), ev({}), lambda s: not s.kill.engaged),
    ("release-kill-unauthorised", KILLED, ReleaseKill("mallory", "resolved"), ev({}), {C_.NOT_AUTHORISED}),
    ("release-kill-needs-reason", KILLED, ReleaseKill(OP, ""), ev({}), {C_.REASON_REQUIRED}),
    ("release-kill-not-engaged", EMPTY, ReleaseKill(OP, "x"), ev({}), "noop"),
]


@pytest.mark.parametrize(("state", "command", "evidence", "expected"), [pytest.param(*r[1:], id=r[0]) for r in OTHERS])
def test_other_commands(state: RolloutState, command: Any, evidence: GateEvidence, expected: Any) -> None:
    decision = decide(state, command, evidence, NOW)
    if isinstance(expected, set):
        assert isinstance(decision, Refused)
        assert set(decision.codes) == expected
    elif expected == "noop":
        assert isinstance(decision, Allowed) and not decision.changed and decision.new_state == state
    else:
        assert isinstance(decision, Allowed) and decision.changed, decision
        assert expected(decision.new_state)
        assert decision.new_state.last_actions[0].action == command.action


def test_release_kill_warns_about_a_due_rollback() -> None:
    state = dataclasses.replace(A_LIMITED, kill=KILLED.kill)
    decision = decide(state, ReleaseKill(OP, "resolved"), ev({A: FAIL_A}), NOW)
    assert isinstance(decision, Allowed) and decision.changed
    assert [r.code for r in decision.reasons] == [C_.APPLIED, C_.WARNING]


# --- precedence ---------------------------------------------------------------------------------------


def test_precedence_is_kill_then_rollback_then_promote() -> None:
    assert Precedence.KILL > Precedence.ROLLBACK > Precedence.PROMOTE


def test_kill_wins_over_a_promotion_and_a_rollback_under_it_is_kept() -> None:
    state = A_INTERNAL
    killed = decide(state, Kill("oncall", "incident"), GateEvidence(), NOW)
    assert isinstance(killed, Allowed)
    refused = decide(killed.new_state, promote(A, "limited", OP, OP2), ev(), NOW)
    assert isinstance(refused, Refused) and refused.codes == (C_.KILL_SWITCH,)
    rolled = decide(killed.new_state, Rollback(OP, "while killed"), ev({}), NOW)
    assert isinstance(rolled, Allowed) and rolled.new_state.kill.engaged and rolled.new_state.candidate is None


def test_an_inconclusive_eval_never_rolls_anything_back() -> None:
    """INCONCLUSIVE is no evidence either way: it forces no rollback, and an AutoRollback on it
    is refused; an earlier FAIL still stands behind it."""
    assert due_rollbacks(A_LIMITED, ev({A: INCONCLUSIVE_A, B: INCONCLUSIVE_B})) == ()
    only = hist(res(A, "INCONCLUSIVE", ago(hours=1)))
    assert due_rollbacks(A_LIMITED, ev({A: only, B: PASS_B})) == ()
    refused = decide(A_LIMITED, AutoRollback(A), ev({A: INCONCLUSIVE_A, B: PASS_B}), NOW)
    assert isinstance(refused, Refused) and refused.codes == (C_.NO_FAILED_EVAL,)
    refused = decide(STABLE_B, AutoRollback(B), ev({B: INCONCLUSIVE_B}), NOW)
    assert isinstance(refused, Refused) and refused.codes == (C_.NO_FAILED_EVAL,)
    # a FAIL followed by an INCONCLUSIVE re-run (an outage during the nightly eval) still rolls back
    fail_then_outage = hist(res(A, "FAIL", ago(hours=2)), res(A, "INCONCLUSIVE", ago(hours=1), 1))
    [due] = due_rollbacks(A_LIMITED, ev({A: fail_then_outage, B: PASS_B}))
    assert due.release == A and "FAILED" in (due.reason or "")


def test_no_fresh_evidence_is_named_for_live_releases() -> None:
    from controller.core.gates import no_fresh_evidence_notes

    notes = no_fresh_evidence_notes(A_LIMITED, ev({A: INCONCLUSIVE_A, B: PASS_B}))
    assert len(notes) == 1 and notes[0].startswith("no fresh evidence for the candidate release aaaaaaaaaaaa")
    assert no_fresh_evidence_notes(A_LIMITED, ev({A: PASS_A, B: PASS_B})) == ()
    refused = decide(A_INTERNAL, promote(A, "limited", OP, OP2), ev({A: INCONCLUSIVE_A}), NOW)
    assert isinstance(refused, Refused)
    assert refused.codes == (C_.EVAL_INCONCLUSIVE,) and "no fresh evidence" in refused.reasons[0].message


def test_a_failed_stable_reverts_to_an_earlier_pass_behind_an_inconclusive() -> None:
    state = dataclasses.replace(STABLE_B, previous_stables=(C,))
    c_history = hist(res(C, "PASS", ago(days=30)), res(C, "INCONCLUSIVE", ago(hours=2), 1))
    decision = decide(state, AutoRollback(B), ev({B: FAIL_B, C: c_history}), NOW)
    assert isinstance(decision, Allowed) and decision.new_state.stable == C
    only = hist(res(C, "INCONCLUSIVE", ago(hours=2)))
    decision = decide(state, AutoRollback(B), ev({B: FAIL_B, C: only}), NOW)
    assert isinstance(decision, Allowed) and decision.new_state.stable is None  # nothing passes: off


def test_due_rollbacks_candidate_first_then_stable() -> None:
    due = due_rollbacks(A_LIMITED, ev({A: FAIL_A, B: FAIL_B}))
    assert [d.release for d in due] == [A, B]
    assert due_rollbacks(A_LIMITED, ev({A: PASS_A, B: PASS_B})) == ()
    assert due_rollbacks(A_LIMITED, ev({A: EvalHistory(error="unreadable")})) == ()  # only a verified FAIL forces


# --- state --------------------------------------------------------------------------------------------


def test_served_by_cohort() -> None:
    assert served(EMPTY) == {"internal": OFF, "limited": OFF, "general": OFF}
    assert served(STABLE_B) == {"internal": B, "limited": B, "general": B}
    assert served(A_LIMITED) == {"internal": A, "limited": A, "general": B}
    assert served(dataclasses.replace(A_INTERNAL, stable=None)) == {"internal": A, "limited": OFF, "general": OFF}


def test_next_cohort() -> None:
    assert next_cohort(EMPTY, A) == "internal"
    assert next_cohort(A_INTERNAL, A) == "limited"
    assert next_cohort(A_LIMITED, A) == "general"
    assert next_cohort(STABLE_B, B) is None
    assert next_cohort(A_INTERNAL, C) == "internal"


def test_state_round_trips_and_malformed_state_is_invalid() -> None:
    state = dataclasses.replace(A_LIMITED, kill=KILLED.kill, head=ChainHead(3, "f" * 64), previous_stables=(C,))
    decided = decide(state, Rollback(OP, "x"), ev({}), NOW)
    assert isinstance(decided, Allowed)
    for s in (state, decided.new_state, EMPTY):
        assert RolloutState.from_dict(s.to_dict()) == s
    bad = state.to_dict()
    for mutate in (
        lambda d: d.pop("kill"),
        lambda d: d.update(revision=True),
        lambda d: d.update(stable=5),
        lambda d: d.update(schema="other"),
        lambda d: d["candidate"].update(reached=[{"cohort": "limited", "at": iso(NOW)}]),
        lambda d: d.update(head={"seq": 0, "hash": "x"}),
    ):
        data = RolloutState.from_dict(bad).to_dict()
        mutate(data)
        with pytest.raises(InvalidInput):
            RolloutState.from_dict(data)


def test_last_actions_are_capped() -> None:
    state = EMPTY
    for i in range(MAX_LAST_ACTIONS + 3):
        cmd = Kill(OP, f"k{i}") if i % 2 == 0 else ReleaseKill(OP, f"r{i}")
        decision = decide(state, cmd, ev({}), NOW)
        assert isinstance(decision, Allowed) and decision.changed
        state = decision.new_state
    assert len(state.last_actions) == MAX_LAST_ACTIONS
    assert state.revision == MAX_LAST_ACTIONS + 3
    assert state.last_actions[0].revision == state.revision


def test_the_clock_must_be_aware() -> None:
    with pytest.raises(InvalidInput):
        decide(EMPTY, promote(), ev(), NOW.replace(tzinfo=None))


def test_decide_is_pure() -> None:
    evidence = ev()
    before = (A_INTERNAL.to_dict(), dict(evidence.evals))
    first = decide(A_INTERNAL, promote(A, "limited", OP, OP2), evidence, NOW)
    second = decide(A_INTERNAL, promote(A, "limited", OP, OP2), evidence, NOW)
    assert first == second
    assert (A_INTERNAL.to_dict(), dict(evidence.evals)) == before
