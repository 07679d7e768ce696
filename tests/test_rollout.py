"""The rollout service: load -> decide -> save over a real store, evals stored the way
``controller.evals.scoring`` stores them, and the live flag document.

Releases here are stand-ins (a manifest dict hashes to a digest; ``release_check`` is told they
exist) except where the real release path matters (the eval hook, the default release check).
The helpers at the top are shared with the crash and concurrency tests.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from controller.adapters import LocalStore, MemoryStore
from controller.bundle.models import Workflow
from controller.bundle.yamlio import load_yaml
from controller.core import audit
from controller.core.gates import OFF, ReasonCode, RolloutState
from controller.core.release import release_digest
from controller.errors import BackendUnavailable, Conflict, InvalidInput
from controller.evals.results import EvalResult, build_result, store_result
from controller.evals.scoring import CaseResult
from controller.ports import Versioned
from controller.service.rollout import (
    CallerIdentity,
    ReconcileOnFailedEval,
    RolloutService,
    canonical_state,
    kill_marker_path,
    operator_from_arn,
    render,
    resolve_operator,
    state_key,
    sts_operator,
)

REPO = Path(__file__).resolve().parent.parent
# The shipped policy without its `access` section: these tests drive the gate with named
# operators and approvers; authenticated ones and recorded approvals: tests/test_approvals.py.
WF = Workflow.model_validate(
    {k: v for k, v in load_yaml(REPO / "workflows/internal-docs-qa/workflow.yaml").data.items() if k != "access"}
)
OP, OP2, OP3 = "priya.natarajan", "sam.okafor", "ci-release-bot"
T0 = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)


# --- shared helpers ---------------------------------------------------------------------------------


def workflow_with(**cohort_changes: dict[str, Any]) -> Workflow:
    """The shipped policy with some cohort fields changed, e.g. ``internal={"bake_time": "0h"}``."""
    data = load_yaml(REPO / "workflows/internal-docs-qa/workflow.yaml").data
    data.pop("access", None)  # named approvers, as WF
    for cohort in data["rollout"]["cohorts"]:
        cohort.update(cohort_changes.get(cohort["name"], {}))
    return Workflow.model_validate(data)


class Clock:
    def __init__(self, now: dt.datetime = T0) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += dt.timedelta(**kw)


def manifest(n: int, workflow: Workflow = WF) -> dict[str, Any]:
    return {"workflow": workflow.id, "model": {"adapter": "local", "id": "stand-in"}, "release": n}


def digest(n: int) -> str:
    return release_digest(manifest(n))


def store_eval(store: Any, n: int, verdict: str, at: dt.datetime, workflow: Workflow = WF) -> EvalResult:
    """Store a PASS or FAIL result of stand-in release ``n`` exactly as ``run_eval`` would."""
    cases = [
        CaseResult(f"case-{cat}", cat, not (verdict == "FAIL" and cat == "correctness"), (), "answered", 5.0)
        for cat in ("correctness", "policy-compliance", "refusal")
    ]
    result = build_result(
        manifest=manifest(n, workflow),
        cases=cases,
        thresholds={str(k): v for k, v in workflow.eval.thresholds.items()},
        started_at=at - dt.timedelta(minutes=1),
        finished_at=at,
        operator="eval-bot",
    )
    assert result.verdict.value == verdict
    store_result(store, result)
    return result


@dataclasses.dataclass
class Env:
    root: Path
    store: Any
    clock: Clock
    workflow: Workflow = WF

    @property
    def flags(self) -> Path:
        return self.root / "flags" / f"{self.workflow.id}.flagd.json"

    def service(self, **kw: Any) -> RolloutService:
        kw.setdefault("release_check", lambda d: None)
        kw.setdefault("clock", self.clock)
        kw.setdefault("sleep", lambda s: None)
        store = kw.pop("store", self.store)
        return RolloutService(self.workflow, store, self.flags, **kw)

    def flag_bytes(self) -> bytes:
        return self.flags.read_bytes()

    def state(self) -> RolloutState:
        return self.service().load(repair=False).state

    def passing(self, *ns: int, hours_ago: float = 1) -> None:
        for n in ns:
            store_eval(self.store, n, "PASS", self.clock() - dt.timedelta(hours=hours_ago))

    def failing(self, n: int, hours_ago: float = 0.5) -> EvalResult:
        return store_eval(self.store, n, "FAIL", self.clock() - dt.timedelta(hours=hours_ago))

    def to_stable(self, n: int) -> None:
        """Walk stand-in release ``n`` through every cohort (evals, bake times, approvals)."""
        svc = self.service()
        self.passing(n)
        assert svc.promote(digest(n), "internal", operator=OP).changed
        self.clock.advance(hours=25)
        self.passing(n)
        assert svc.promote(digest(n), "limited", operator=OP, approvers=[OP2]).changed
        self.clock.advance(hours=73)
        self.passing(n)
        out = svc.promote(digest(n), "general", operator=OP, approvers=[OP2, OP3])
        assert out.changed and out.state.stable == digest(n)


def make_env(root: Path, store: Any = None, workflow: Workflow = WF) -> Env:
    return Env(root, store if store is not None else LocalStore(root / "store"), Clock(), workflow)


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return make_env(tmp_path)


def assert_consistent(env: Env) -> None:
    """The chain verifies against the state's head, the state is the head's ``to``, and the flag
    file is exactly the render of the state."""
    svc = env.service()
    result, problems = svc.verify()
    assert result.ok and result.ahead == 0 and not problems, (result, problems)
    state = svc.load(repair=False).state
    expected = render(env.workflow, state, killed=svc.kill_pending() is not None)
    assert json.loads(env.flag_bytes()) == expected
    assert svc.flags_in_sync(state)


def served_in_flags(env: Env) -> dict[str, Any]:
    doc = json.loads(env.flag_bytes())
    release = doc["flags"][env.workflow.rollout.release_flag]
    kill = doc["flags"][env.workflow.rollout.kill_switch_flag]
    return {"variants": sorted(set(release["variants"].values())), "killed": kill["defaultVariant"] == "engaged"}


# --- promote ------------------------------------------------------------------------------------------


def test_promote_through_every_cohort(env: Env) -> None:
    svc = env.service()
    env.to_stable(1)
    state = env.state()
    assert state.stable == digest(1) and state.candidate is None and state.generation == 1
    assert state.revision == 3 and state.head is not None and state.head.seq == 3
    records = svc.history()
    assert [r.action for r in records] == ["promote"] * 3  # type: ignore[union-attr]
    assert [r.evidence["cohort"] for r in records] == ["internal", "limited", "general"]  # type: ignore[union-attr]
    assert records[1].evidence["approved_by"] == [OP2]  # type: ignore[union-attr]
    assert records[2].evidence["eval"]["verdict"] == "PASS"  # type: ignore[union-attr]
    assert served_in_flags(env) == {"variants": sorted([OFF, digest(1)]), "killed": False}
    assert_consistent(env)


def test_refused_promote_lists_reasons_and_writes_nothing(env: Env) -> None:
    svc = env.service()
    out = svc.promote(digest(1), "limited", operator="mallory")
    assert out.refused and out.exit_code == 3 and out.record is None
    codes = {r.code for r in out.reasons}
    assert codes == {ReasonCode.NOT_AUTHORISED, ReasonCode.EVAL_MISSING, ReasonCode.COHORT_ORDER, ReasonCode.APPROVALS}
    assert env.store.get(state_key(WF.id)) is None
    assert svc.history() == []


def test_release_must_be_stored_and_verified(env: Env) -> None:
    env.passing(1)
    out = env.service(release_check=None).promote(digest(1), "internal", operator=OP)  # the real check
    assert out.refused and [r.code for r in out.reasons] == [ReasonCode.RELEASE_UNVERIFIED]
    assert "not in the store" in out.reasons[0].message


def test_a_tampered_eval_refuses(env: Env) -> None:
    result = env.failing(1)
    key = result.key
    raw = env.store.get(key).data
    env.store.replace(key, raw.replace(b'"FAIL"', b'"PASS"'), expected=env.store.get(key).version)
    out = env.service().promote(digest(1), "internal", operator=OP)
    assert out.refused and ReasonCode.EVAL_UNREADABLE in {r.code for r in out.reasons}


def test_promote_noop_is_idempotent(env: Env) -> None:
    env.passing(1)
    svc = env.service()
    first = svc.promote(digest(1), "internal", operator=OP)
    again = svc.promote(digest(1), "internal", operator=OP)
    assert first.changed and not again.changed and not again.refused
    assert len(svc.history()) == 1


# --- rollback -------------------------------------------------------------------------------------------


def test_rollback_restores_the_flag_document_byte_for_byte(env: Env) -> None:
    env.to_stable(1)
    before = env.flag_bytes()
    svc = env.service()
    env.passing(2)
    assert svc.promote(digest(2), "internal", operator=OP).changed
    env.clock.advance(hours=30)
    env.passing(2)
    assert svc.promote(digest(2), "limited", operator=OP, approvers=[OP3]).changed
    assert env.flag_bytes() != before
    out = svc.rollback(operator=OP2, reason="wrong answers in #eng")
    assert out.changed and out.state.candidate is None and out.state.stable == digest(1)
    assert env.flag_bytes() == before
    record = svc.history()[-1]
    assert record.action == "rollback" and record.reason == "wrong answers in #eng"  # type: ignore[union-attr]
    assert_consistent(env)


def test_rollback_without_stable_goes_off_byte_for_byte(env: Env) -> None:
    svc = env.service()
    svc.reconcile()  # the controller takes over the flag file: everything off
    before = env.flag_bytes()
    env.passing(1)
    svc.promote(digest(1), "internal", operator=OP)
    assert env.flag_bytes() != before
    svc.rollback(operator=OP, reason="not ready")
    assert env.flag_bytes() == before
    assert set(env.state().body()["candidate"] or {}) == set()


def test_rollback_with_nothing_to_undo_is_a_noop(env: Env) -> None:
    env.to_stable(1)
    svc = env.service()
    n = len(svc.history())
    out = svc.rollback(operator=OP, reason="just in case")
    assert not out.changed and not out.refused and out.exit_code == 0
    assert "nothing to roll back" in out.reasons[0].message
    assert len(svc.history()) == n


# --- automatic rollback -------------------------------------------------------------------------------


def test_failing_eval_of_the_candidate_rolls_back_on_reconcile(env: Env) -> None:
    env.to_stable(1)
    before = env.flag_bytes()
    svc = env.service()
    env.passing(2)
    svc.promote(digest(2), "internal", operator=OP)
    env.clock.advance(minutes=10)
    env.failing(2, hours_ago=0.01)
    report = svc.reconcile()
    assert [o.record.action for o in report.outcomes] == ["auto-rollback"]  # type: ignore[union-attr]
    record = report.outcomes[0].record
    assert record.operator == "reconcile" and record.evidence["eval"]["verdict"] == "FAIL"  # type: ignore[union-attr]
    assert report.state.candidate is None and report.state.stable == digest(1)
    assert env.flag_bytes() == before
    again = svc.reconcile()  # idempotent: nothing more to do, nothing logged
    assert again.outcomes == () and len(svc.history()) == record.seq  # type: ignore[union-attr]
    assert_consistent(env)


def test_failing_stable_reverts_to_earlier_passing_then_turns_off(env: Env) -> None:
    env.to_stable(1)
    env.to_stable(2)
    svc = env.service()
    assert env.state().previous_stables == (digest(1),)
    env.failing(2, hours_ago=0.01)
    report = svc.reconcile()
    assert report.state.stable == digest(1) and report.state.off_reason is None
    env.failing(1, hours_ago=0.005)
    report = svc.reconcile()
    assert report.state.stable is None and "no earlier stable release passes" in (report.state.off_reason or "")
    assert served_in_flags(env) == {"variants": [OFF], "killed": False}
    assert_consistent(env)


def test_eval_hook_rolls_back_a_live_release_at_once(env: Env) -> None:
    env.to_stable(1)
    svc = env.service()
    env.passing(2)
    svc.promote(digest(2), "internal", operator=OP)
    hook = ReconcileOnFailedEval(svc)
    hook.on_failed_eval(digest(3), env.failing(3))  # not live: nothing happens
    assert hook.reports == [] and env.state().candidate is not None
    hook.on_failed_eval(digest(2), env.failing(2, hours_ago=0.001))
    assert env.state().candidate is None
    last = svc.history()[-1]
    assert (last.action, last.operator) == ("auto-rollback", "eval-run")  # type: ignore[union-attr]


def test_run_eval_calls_the_hook_on_fail(project: Path, tmp_path: Path) -> None:
    """The real ``run_eval`` with a gateway whose every answer is the fallback (a FAIL)."""
    from controller.bundle.models import load_bundle
    from controller.core.release import create_release, load_release, model_choice
    from controller.evals.runner import run_eval

    bundle = load_bundle(project)
    e = make_env(tmp_path / "env", workflow=bundle.workflow)
    digest_, _ = create_release(e.store, bundle, model_choice(bundle.workflow, "local"))
    manifest_ = load_release(e.store, digest_).manifest
    thresholds = {str(k): v for k, v in bundle.workflow.eval.thresholds.items()}
    cases = [CaseResult(f"c-{c}", c, True, (), "answered", 1.0) for c in thresholds]
    at = e.clock() - dt.timedelta(hours=1)
    store_result(e.store, build_result(manifest=manifest_, cases=cases, thresholds=thresholds, started_at=at, finished_at=at, operator="x"))
    svc = e.service(release_check=None)
    assert svc.promote(digest_, "internal", operator=OP).changed

    @dataclasses.dataclass
    class Response:
        decision: str = "fallback"
        answer: str = "The assistant is unavailable."
        citations: tuple[str, ...] = ()
        blocked_categories: tuple[str, ...] = ()
        request_id: str = "r"
        reason: str = "model down"
        release: str | None = None

    class Gateway:
        store = e.store
        workflow = bundle.workflow

        def ask(self, question: str, token: str, eval_of: str | None = None) -> Response:
            return Response()

    class Minter:
        def mint(self, email: str, groups: Any, *, issuer: str, audience: str) -> str:
            return "token"

    result = run_eval(Gateway(), digest_, minter=Minter(), rollback_hook=ReconcileOnFailedEval(svc), clock=lambda: e.clock() - dt.timedelta(minutes=1))
    assert result.verdict.value == "FAIL"
    state = e.state()
    assert state.candidate is None
    assert svc.history()[-1].action == "auto-rollback"  # type: ignore[union-attr]


# --- kill -----------------------------------------------------------------------------------------------


class Unreachable:
    """A store whose keys under ``prefixes`` (all keys: ``("",)``) cannot be reached."""

    def __init__(self, inner: Any, prefixes: tuple[str, ...] = ("",)) -> None:
        self.inner, self.prefixes, self.down = inner, prefixes, True

    def _check(self, key: str) -> None:
        if self.down and key.startswith(self.prefixes):
            raise BackendUnavailable(f"store unreachable for {key}")

    def get(self, key: str) -> Versioned | None:
        self._check(key)
        return self.inner.get(key)

    def create(self, key: str, data: bytes) -> None:
        self._check(key)
        self.inner.create(key, data)

    def replace(self, key: str, data: bytes, *, expected: str | None) -> str:
        self._check(key)
        return self.inner.replace(key, data, expected=expected)

    def list(self, prefix: str) -> list[str]:
        self._check(prefix)
        return self.inner.list(prefix)

    def describe(self) -> str:
        return "unreachable:" + self.inner.describe()


def test_kill_needs_no_eval_store(env: Env) -> None:
    env.passing(1)
    env.service().promote(digest(1), "internal", operator=OP)
    down = Unreachable(env.store, ("evals/", "releases/"))
    svc = env.service(store=down, release_check=None)
    out = svc.kill(operator="oncall-anyone", reason="leaking answers")
    assert out.changed and out.state.kill.engaged and out.state.kill.by == "oncall-anyone"
    assert served_in_flags(env)["killed"] is True
    assert_consistent(env)


def test_kill_with_the_state_store_down_still_engages_the_flag(env: Env) -> None:
    env.to_stable(1)
    down = Unreachable(env.store)
    svc = env.service(store=down)
    with pytest.raises(BackendUnavailable, match="ENGAGED") as caught:
        svc.kill(operator="oncall", reason="incident 7")
    assert caught.value.exit_code == 5
    assert served_in_flags(env)["killed"] is True
    assert kill_marker_path(env.flags).exists()
    assert not env.state().kill.engaged  # the state store never saw it
    # A command that reaches the store but re-renders from state keeps the switch engaged...
    env.service().sync_flags()
    assert served_in_flags(env)["killed"] is True
    # ...and the next mutating command records the kill (audited) and drops the marker.
    down.down = False
    out = env.service().rollback(operator=OP, reason="tidy up")
    assert any("while the state store was unavailable" in n for n in out.notes)
    state = env.state()
    assert state.kill.engaged and state.kill.by == "oncall" and "incident 7" in (state.kill.reason or "")
    assert not kill_marker_path(env.flags).exists()
    assert svc.history()[-1].action == "kill"  # type: ignore[union-attr]
    assert served_in_flags(env)["killed"] is True
    assert_consistent(env)


def test_release_kill_needs_an_operator(env: Env) -> None:
    svc = env.service()
    svc.kill(operator="anyone", reason="x")
    refused = svc.release_kill(operator="anyone", reason="done")
    assert refused.refused and [r.code for r in refused.reasons] == [ReasonCode.NOT_AUTHORISED]
    released = svc.release_kill(operator=OP, reason="done")
    assert released.changed and not released.state.kill.engaged
    assert served_in_flags(env)["killed"] is False


def test_a_kill_during_a_promotion_wins(env: Env) -> None:
    env.to_stable(1)
    env.passing(2)
    killer = env.service()
    fired: list[bool] = []
    inner = killer.evals

    def evals_then_kill(d: str) -> Any:
        if not fired:  # the kill lands between the promotion's read and its write
            fired.append(True)
            killer.kill(operator="oncall", reason="incident")
        return inner(d)

    out = env.service(evals=evals_then_kill).promote(digest(2), "internal", operator=OP)
    assert fired and out.refused and [r.code for r in out.reasons] == [ReasonCode.KILL_SWITCH]
    state = env.state()
    assert state.kill.engaged and state.candidate is None
    assert_consistent(env)


# --- repair and concurrency edges ---------------------------------------------------------------------


def test_a_record_that_does_not_extend_the_state_is_refused(env: Env) -> None:
    svc = env.service()
    svc.kill(operator="x", reason="y")
    state = env.state()
    forged = audit.next_record(
        state.head, time=env.clock(), operator="mallory", action="promote", workflow=WF.id,
        from_={"not": "the state"}, to=state.body(), release=None, evidence={}, reason=None,
    )  # fmt: skip
    audit.append(env.store, forged)
    with pytest.raises(InvalidInput, match="does not extend"):
        svc.rollback(operator=OP, reason="x")
    assert svc.status(operator=OP).problem  # read-only commands report it instead


def test_verify_notices_a_state_edited_outside_the_controller(env: Env) -> None:
    svc = env.service()
    svc.kill(operator="x", reason="y")
    got = env.store.get(state_key(WF.id))
    edited = dataclasses.replace(RolloutState.from_dict(json.loads(got.data)), stable=digest(9))
    env.store.replace(state_key(WF.id), canonical_state(edited), expected=got.version)
    result, problems = svc.verify()
    assert result.ok and problems and "changed outside the controller" in problems[0]


def test_conflicts_are_retried_a_bounded_number_of_times(env: Env) -> None:
    class AlwaysMoved(MemoryStore):
        def replace(self, key: str, data: bytes, *, expected: str | None) -> str:
            if key.startswith("state/"):
                raise Conflict("moved")
            return super().replace(key, data, expected=expected)

    svc = env.service(store=AlwaysMoved(), max_attempts=3)
    assert not svc.rollback(operator=OP, reason="x").changed  # a no-op never writes: fine
    with pytest.raises(Conflict) as caught:
        svc.kill(operator=OP, reason="x")
    assert caught.value.exit_code == 4


def test_flags_are_rewritten_only_when_they_differ(env: Env) -> None:
    svc = env.service()
    first = svc.sync_flags()
    second = svc.sync_flags()
    assert first.changed and not second.changed


# --- operator identity ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arn", "name"),
    [
        ("arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Operators_abc/priya.natarajan", "priya.natarajan"),
        ("arn:aws:iam::123456789012:user/ops/sam.okafor", "sam.okafor"),
        ("arn:aws:sts::123456789012:federated-user/ci-release-bot", "ci-release-bot"),
        ("arn:aws:iam::123456789012:root", "root"),
    ],
)
def test_operator_from_arn(arn: str, name: str) -> None:
    assert operator_from_arn(arn) == name


def test_operator_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("getpass.getuser", lambda: "os-user")
    assert resolve_operator() == CallerIdentity("os-user", None, "os")
    assert resolve_operator("priya.natarajan").name == "priya.natarajan"
    for bad in ("reconcile", "eval-run", " "):
        with pytest.raises(InvalidInput):
            resolve_operator(bad)
    with pytest.raises(InvalidInput):
        resolve_operator("x", from_sts=True)
    with pytest.raises(InvalidInput):
        operator_from_arn("not-an-arn")


def test_sts_operator_against_a_moto_server(monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        from tests.fakes.s3 import FAKE_AWS_ENV, shared_s3_server
    except ModuleNotFoundError:
        from fakes.s3 import FAKE_AWS_ENV, shared_s3_server
    endpoint = shared_s3_server()  # moto serves every AWS API on one port, STS included
    for k, v in FAKE_AWS_ENV.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", endpoint)
    identity = sts_operator()
    assert identity.arn and identity.arn.startswith("arn:aws:") and identity.source == "sts"
    assert identity.name == operator_from_arn(identity.arn)
    via = resolve_operator(from_sts=True)
    assert via.arn == identity.arn
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:9")  # nothing listens there
    with pytest.raises(BackendUnavailable):
        sts_operator()


# --- S3 ----------------------------------------------------------------------------------------------------


def test_the_same_flow_on_s3(tmp_path: Path) -> None:
    try:
        from tests.fakes.s3 import make_bucket, make_client, shared_s3_server
    except ModuleNotFoundError:
        from fakes.s3 import make_bucket, make_client, shared_s3_server
    from controller.adapters.s3 import S3Store

    endpoint = shared_s3_server()
    store = S3Store(make_bucket(endpoint), "rollout", make_client(endpoint))
    e = make_env(tmp_path, store)
    e.to_stable(1)
    before = e.flag_bytes()
    svc = e.service()
    e.passing(2)
    svc.promote(digest(2), "internal", operator=OP)
    svc.kill(operator="oncall", reason="x")
    svc.rollback(operator=OP, reason="y")
    svc.release_kill(operator=OP, reason="z")
    assert e.flag_bytes() == before
    assert_consistent(e)


def test_kill_engages_the_flag_even_when_the_state_is_corrupt(env: Env) -> None:
    env.to_stable(1)
    got = env.store.get(state_key(WF.id))
    env.store.replace(state_key(WF.id), b"{not json", expected=got.version)
    with pytest.raises(InvalidInput, match="ENGAGED"):
        env.service().kill(operator="oncall", reason="state is garbage too")
    assert served_in_flags(env)["killed"] is True


# --- Kubernetes flag sync against a minimal fake API server ------------------------------------------------


def _publish(sink: Any, data: bytes) -> bool:
    from controller.service.publish import publish_to

    return publish_to(sink, data, "kill-switch").written


@pytest.fixture
def kube() -> Any:
    from fakes.kube import FakeKubeApi

    api = FakeKubeApi()
    yield api
    api.server.shutdown()
    api.server.server_close()


def test_configmap_sink_is_idempotent_and_keeps_other_keys(kube: Any) -> None:
    from controller.adapters.k8s_flags import DEFAULT_KEY, configmap_sink

    sink = configmap_sink("flags/docs-qa", api=kube.core_v1())
    assert _publish(sink, b'{"v": 1}\n') is True  # created
    kube.objects[("flags", "docs-qa")]["data"]["other"] = "kept"
    assert _publish(sink, b'{"v": 1}\n') is False  # same bytes: no write
    kube.interfere = 1  # someone else writes between our read and our replace: 409, re-read, retry
    assert _publish(sink, b'{"v": 2}\n') is True
    assert kube.data() == {DEFAULT_KEY: '{"v": 2}\n', "other": "kept"}
    assert [m for m, _ in kube.requests].count("PUT") == 2
    kube.interfere = 99
    with pytest.raises(Conflict):
        _publish(sink, b'{"v": 3}\n')
    with pytest.raises(InvalidInput):
        configmap_sink("no-slash", api=kube.core_v1())


def test_configmap_sink_unreachable_is_backend_unavailable() -> None:
    from kubernetes import client

    from controller.adapters.k8s_flags import ConfigMapFlagSink

    config = client.Configuration()
    config.host = "http://127.0.0.1:9"  # nothing listens there
    config.retries = 0
    sink = ConfigMapFlagSink("flags", "docs-qa", client.CoreV1Api(client.ApiClient(config)))
    with pytest.raises(BackendUnavailable):
        _publish(sink, b"{}")


def test_service_publishes_the_flag_document_to_kubernetes(env: Env, kube: Any) -> None:
    from controller.adapters.k8s_flags import DEFAULT_KEY, configmap_sink

    sink = configmap_sink("flags/docs-qa", api=kube.core_v1())
    env.passing(1)
    out = env.service(flag_sinks=[sink]).promote(digest(1), "internal", operator=OP)
    assert out.flags is not None and out.flags.published == (sink.describe(),)
    assert kube.data()[DEFAULT_KEY].encode() == env.flag_bytes()
    # with the state store down, a kill still reaches the ConfigMap
    with pytest.raises(BackendUnavailable):
        env.service(store=Unreachable(env.store), flag_sinks=[sink]).kill(operator="oncall", reason="x")
    assert json.loads(kube.data()[DEFAULT_KEY])["flags"][WF.rollout.kill_switch_flag]["defaultVariant"] == "engaged"


def test_a_stuck_flag_writer_makes_commands_fail_with_a_conflict_not_hang(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    import fcntl
    import os

    import controller.adapters.flag_file as flag_file_module

    monkeypatch.setattr(flag_file_module, "FLAG_LOCK_TIMEOUT_S", 0.2)
    svc = env.service()
    env.passing(1)
    lock = env.flags.with_name(f".{env.flags.name}.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)  # a live process stuck while holding the flag lock
    try:
        with pytest.raises(Conflict, match="locked by another command"):
            svc.promote(digest(1), "internal", operator=OP)
    finally:
        os.close(fd)
    # The state and audit record were written before the flag step timed out; the next command
    # (here the same promote, now a no-op) brings the flag document in line with the state.
    again = svc.promote(digest(1), "internal", operator=OP)
    assert not again.changed
    assert served_in_flags(env) == {"variants": sorted([OFF, digest(1)]), "killed": False}
    assert_consistent(env)
