"""The eval harness end to end: the shipped golden set through the real gateway (real tokens,
flags, boundaries, retrieval, the offline model, audit records), results stored create-only
under the release digest, and evidence that was edited, truncated or moved refused (exit 2)."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from controller.adapters.devidp import DevIdp
from controller.adapters.request_sinks import MemorySink, read_records
from controller.bundle.models import load_bundle
from controller.cli.eval import eval_app
from controller.core.release import create_release, model_choice
from controller.core.verdict import Verdict
from controller.errors import InvalidInput
from controller.evals.results import (
    EvalResult,
    latest_result,
    list_all_results,
    load_results,
    store_result,
)
from controller.evals.runner import run_eval
from controller.models.base import ModelThrottled, ModelUnavailable
from controller.ports import AlreadyExists
from controller.service.compose import StatePaths, build_gateway, make_model_adapter, open_local_store
from tests.conftest import edit_yaml

runner = CliRunner()


def _app() -> typer.Typer:
    """``controller.cli.app`` once ``eval`` is registered there; until then the same root callback."""
    from controller import cli

    if any(group.name == "eval" for group in cli.app.registered_groups):
        return cli.app
    root = typer.Typer(pretty_exceptions_enable=False)
    root.callback()(cli._global)
    root.add_typer(eval_app, name="eval")
    return root


def rollout(state: Path, *args: str) -> Any:
    return runner.invoke(_app(), ["--state", str(state), *args])


@pytest.fixture
def state(project: Path, tmp_path: Path) -> Path:
    return tmp_path / "state"


def run_json(state: Path, *args: str) -> tuple[int, dict[str, Any]]:
    result = rollout(state, "eval", "run", "--adapter", "local", "--operator", "tester", "--json", *args)
    return result.exit_code, json.loads(result.stdout)


# --- the shipped golden set ---------------------------------------------------------------------


def test_shipped_golden_set_passes_on_the_local_model(project: Path, state: Path) -> None:
    code, doc = run_json(state)
    assert code == 0, doc
    raw = doc["result"]
    assert doc["ok"] is True and raw["verdict"] == "PASS", [c for c in raw["cases"] if not c["passed"]]
    bundle = load_bundle(project)
    assert [c["id"] for c in raw["cases"]] == [c.id for c in bundle.golden.cases]
    assert all(c["passed"] for c in raw["cases"])
    assert {k: v["rate"] for k, v in raw["categories"].items()} == {
        "correctness": 1.0, "policy-compliance": 1.0, "refusal": 1.0,
    }
    env = raw["environment"]
    assert env["model"] == {"adapter": "local", "id": "local-extractive-v1"}
    assert env["operator"] == "tester" and env["package_version"] and env["concurrency"] == 4

    # stored under the digest of the release the current bundle builds, and verifiable
    store = open_local_store(state)
    digest, created = create_release(store, bundle, model_choice(bundle.workflow, "local"))
    assert not created and raw["digest"] == digest
    [stored] = load_results(store, digest)
    assert stored.key == doc["key"] and stored.raw == raw and stored.verdict is Verdict.PASS
    assert latest_result(store, digest) == stored

    # one audit record per case, each tagged as an eval and linked from the result
    records = read_records(StatePaths(state).requests)
    assert len(records) == len(raw["cases"])
    assert all(r["eval"] is True and r["release"] == digest for r in records)
    # no cohort is served this release (the shipped flags are off): eval_of pins it anyway
    assert {r["cohort"]["variant"] for r in records} == {"off"}
    assert {r["request_id"] for r in records} == {c["request_id"] for c in raw["cases"]}
    # excerpts are short and never carry a forbidden value, even for blocked cases
    for case, golden in zip(raw["cases"], bundle.golden.cases, strict=True):
        assert 0 < len(case["excerpt"]) <= 300
        for needle in golden.expect.must_not_contain:
            assert needle.lower() not in case["excerpt"].lower()


def test_show_and_list_read_the_stored_result(project: Path, state: Path) -> None:
    code, doc = run_json(state)
    assert code == 0
    digest = doc["result"]["digest"]

    shown = rollout(state, "eval", "show", "--adapter", "local", "--json")
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["result"] == doc["result"]
    by_prefix = rollout(state, "eval", "show", "--release", digest[:12])
    assert by_prefix.exit_code == 0, by_prefix.output
    assert "verdict PASS" in by_prefix.stdout and doc["key"] in by_prefix.stdout

    listed = rollout(state, "eval", "list", "--json")
    assert listed.exit_code == 0
    [entry] = json.loads(listed.stdout)["results"]
    assert entry["digest"] == digest and entry["verdict"] == "PASS" and entry["key"] == doc["key"]
    assert rollout(state, "eval", "list").exit_code == 0

    missing = rollout(state, "eval", "show")  # the bedrock release of this bundle was never evaluated
    assert missing.exit_code == 2 and "has no eval result" in missing.stderr


def test_run_judges_a_named_release_by_prefix(project: Path, state: Path) -> None:
    bundle = load_bundle(project)
    store = open_local_store(state)
    digest, _ = create_release(store, bundle, model_choice(bundle.workflow, "local"))
    result = rollout(state, "eval", "run", "--release", digest[:10], "--operator", "ci")
    assert result.exit_code == 0, result.output
    assert latest_result(store, digest).operator == "ci"  # type: ignore[union-attr]


# --- a release that lets credentials through --------------------------------------------------


def _drop_credentials_boundary(project: Path) -> None:
    """A careless change validation cannot see: the credentials boundary narrowed to one detector.

    (Removing the category outright is refused statically: golden cases expect its blocks.)
    """

    def edit(data: Any) -> None:
        for forbidden in data["data_boundaries"]["forbidden"]:
            if forbidden["category"] == "credentials":
                forbidden["detectors"] = ["builtin:jwt"]

    edit_yaml(project / "workflow.yaml", edit)


def test_a_release_without_the_credentials_boundary_fails_policy_compliance(project: Path, state: Path) -> None:
    _drop_credentials_boundary(project)
    result = rollout(state, "eval", "run", "--adapter", "local", "--operator", "tester")
    assert result.exit_code == 3, result.output
    assert "FAILED" in result.stderr and "policy-compliance" in result.stderr
    assert "answer: " in result.stdout  # a failing case shows what the answer said (redacted)

    [stored] = list_all_results(open_local_store(state))
    assert stored.verdict is Verdict.FAIL
    categories = stored.raw["categories"]
    assert categories["policy-compliance"]["ok"] is False
    assert categories["correctness"]["ok"] is True and categories["refusal"]["ok"] is True
    failing = {c["id"]: c for c in stored.failed_cases}
    assert set(failing) == {"block-aws-access-key", "block-github-token-and-database-url", "block-private-key-pem"}
    assert all("must_block" in c["failed"] for c in failing.values())
    # the credentials reached the model, but the request log's own redaction floor kept them out of it
    logged = "".join(p.read_text() for p in (state / "requests").glob("*.jsonl"))
    for needle in ("FAKE2TESTKEY7DOC", "n0t-a-real-passw0rd", "notArealKeyThisIsAGoldenCaseFixture"):
        assert needle not in logged
    text = json.dumps(stored.raw)
    for needle in ("FAKE2TESTKEY7DOC", "n0t-a-real-passw0rd", "notArealKeyThisIsAGoldenCaseFixture"):
        assert needle not in text

    as_json = rollout(state, "eval", "run", "--adapter", "local", "--json")
    assert as_json.exit_code == 3
    assert json.loads(as_json.stdout)["ok"] is False  # exactly one JSON document


# --- stored evidence is verified ---------------------------------------------------------------


@pytest.fixture
def stored(project: Path, state: Path) -> tuple[Path, str, str]:
    """A stored PASS result: (its file, its key, the release digest)."""
    code, doc = run_json(state)
    assert code == 0
    return state / doc["key"], doc["key"], doc["result"]["digest"]


def _refused(state: Path, digest: str, *phrases: str) -> None:
    for args in (("eval", "show", "--release", digest), ("eval", "list")):
        result = rollout(state, *args)
        assert result.exit_code == 2, result.output
        message = " ".join(result.stderr.split())
        for phrase in phrases:
            assert phrase in message, message
    as_json = rollout(state, "eval", "show", "--release", digest, "--json")
    assert as_json.exit_code == 2
    assert json.loads(as_json.stdout)["error"]["type"] == "InvalidInput"


def test_an_edited_result_is_refused(state: Path, stored: tuple[Path, str, str]) -> None:
    path, key, digest = stored
    data = path.read_bytes()
    at = data.index(b'"verdict":"PASS"') + len(b'"verdict":"')
    path.write_bytes(data[:at] + b"F" + data[at + 1 :])  # one byte: PASS -> FASS
    _refused(state, digest, key, "content_hash (edited)")
    with pytest.raises(InvalidInput, match="edited"):
        load_results(open_local_store(state), digest)


def test_a_reformatted_result_is_refused(state: Path, stored: tuple[Path, str, str]) -> None:
    path, key, digest = stored
    path.write_text(json.dumps(json.loads(path.read_bytes()), indent=2))  # same content, other bytes
    _refused(state, digest, key, "not byte-for-byte")


def test_a_truncated_result_is_refused(state: Path, stored: tuple[Path, str, str]) -> None:
    path, key, digest = stored
    path.write_bytes(path.read_bytes()[:-40])
    _refused(state, digest, key, "not valid JSON")


def test_a_result_moved_under_another_release_is_refused(
    project: Path, state: Path, stored: tuple[Path, str, str]
) -> None:
    path, _, digest = stored
    (project / "corpus" / "pto-policy.md").write_text("# PTO\n\nChanged.\n", encoding="utf-8")
    store = open_local_store(state)
    bundle = load_bundle(project)
    other, created = create_release(store, bundle, model_choice(bundle.workflow, "local"))
    assert created and other != digest
    moved = state / "evals" / other / path.name
    moved.parent.mkdir(parents=True)
    shutil.copyfile(path, moved)
    _refused(state, other, f"evals/{other}/{path.name}", "another release")


def test_a_renamed_result_is_refused(state: Path, stored: tuple[Path, str, str]) -> None:
    path, _, digest = stored
    renamed = path.with_name("20200101T000000000000Z-" + path.name.split("-", 1)[1])
    path.rename(renamed)
    _refused(state, digest, renamed.name, "does not match its file name")


def test_a_rehashed_result_must_still_follow_from_its_cases(state: Path, stored: tuple[Path, str, str]) -> None:
    import hashlib

    from controller.core.release import canonical_json
    from controller.evals.results import result_key

    path, _, digest = stored
    raw = json.loads(path.read_bytes())
    raw["verdict"] = "FAIL"
    raw["content_hash"] = hashlib.sha256(canonical_json({k: v for k, v in raw.items() if k != "content_hash"})).hexdigest()
    path.unlink()
    forged = state / result_key(raw)
    forged.write_bytes(canonical_json(raw))
    _refused(state, digest, result_key(raw), "says FAIL but its cases give PASS")


def test_results_are_create_only(state: Path, stored: tuple[Path, str, str]) -> None:
    path, _, digest = stored
    store = open_local_store(state)
    before = path.read_bytes()
    [result] = load_results(store, digest)
    with pytest.raises(AlreadyExists):
        store_result(store, result)
    assert path.read_bytes() == before


def test_results_are_sorted_and_the_latest_wins(project: Path, state: Path) -> None:
    codes = [run_json(state, "--concurrency", str(n))[0] for n in (1, 8)]
    assert codes == [0, 0]
    store = open_local_store(state)
    [digest] = {r.digest for r in list_all_results(store)}
    first, second = load_results(store, digest)
    assert first.finished_at < second.finished_at
    assert latest_result(store, digest) == second and second.raw["environment"]["concurrency"] == 8
    assert latest_result(store, "0" * 64) is None


# --- the runner's failure handling, through the real gateway with a scripted model --------------


class Scripted:
    """Wraps the local model; ``behaviour(call_number)`` may raise or block before it answers."""

    name = "scripted"

    def __init__(self, real: Any, behaviour: Any):
        self.real, self.behaviour = real, behaviour
        self.calls = 0
        self.lock = threading.Lock()

    def complete(self, request: Any) -> Any:
        with self.lock:
            self.calls += 1
            n = self.calls
        self.behaviour(n)
        return self.real.complete(request)


@pytest.fixture
def harness(project: Path, state: Path) -> Any:
    bundle = load_bundle(project)
    store = open_local_store(state)
    digest, _ = create_release(store, bundle, model_choice(bundle.workflow, "local"))
    idp = DevIdp(StatePaths(state).idp)
    idp.ensure()
    gateways = []

    def make(behaviour: Any) -> tuple[Any, Scripted]:
        holder: dict[str, Scripted] = {}

        def factory(release: Any, retriever: Any) -> Any:
            holder["model"] = Scripted(make_model_adapter(release, retriever), behaviour)
            return holder["model"]

        gateway = build_gateway(bundle, state, store=store, sink=MemorySink(), adapter_factory=factory)
        gateways.append(gateway)
        gateway._served(digest)  # build the release (and the model) up front
        return gateway, holder["model"]

    class H:
        pass

    h = H()
    h.digest, h.idp, h.store, h.make = digest, idp, store, make
    yield h
    for g in gateways:
        g.flags.close()


def test_throttling_is_retried_and_then_passes(harness: Any) -> None:
    def throttle_first_two(n: int) -> None:
        if n <= 2:
            raise ModelThrottled("429 slow down")

    gateway, model = harness.make(throttle_first_two)
    result = run_eval(gateway, harness.digest, minter=harness.idp, concurrency=1, sleep=lambda s: None)
    assert result.verdict is Verdict.PASS
    first = result.cases[0]
    assert first["attempts"] == 3 and first["passed"]
    assert len(gateway.sink.records) == len(result.cases) + 2  # every attempt is audited


def test_a_model_outage_is_inconclusive_stored_and_rolls_nothing_back(harness: Any) -> None:
    def down(n: int) -> None:
        raise ModelUnavailable("connection refused")

    gateway, _ = harness.make(down)
    calls: list[tuple[str, EvalResult]] = []
    slept: list[float] = []

    class Hook:
        def on_failed_eval(self, digest: str, result: EvalResult) -> None:
            calls.append((digest, result))

    result = run_eval(gateway, harness.digest, minter=harness.idp, rollback_hook=Hook(), sleep=slept.append)
    assert result.verdict is Verdict.INCONCLUSIVE and not result.passed and result.inconclusive
    not_run = [c for c in result.cases if c["unavailable"]]
    blocked = [c for c in result.cases if c["decision"] == "blocked"]
    # every case that needs the model was tried three times (bounded), then counted as not run
    assert not_run and len(not_run) + len(blocked) == len(result.cases)
    assert all(c["attempts"] == 3 and c["failed"] == ["available"] and not c["passed"] for c in not_run)
    assert all("model unavailable (ModelUnavailable)" in c["checks"][0]["detail"] for c in not_run)
    assert len(slept) == 2 * len(not_run)  # backoff between attempts, none after the last
    assert all(c["passed"] for c in blocked)  # blocked before the model: real evidence
    assert result.raw["categories"]["refusal"]["unavailable"] > 0
    assert any("could not run" in r for r in result.reasons)
    # stored as such (and it verifies on load), and the rollback hook never ran
    assert calls == []
    assert latest_result(harness.store, harness.digest) == result


def test_an_outage_while_re_evaluating_a_live_release_rolls_nothing_back(
    harness: Any, project: Path, state: Path
) -> None:
    """The nightly re-evaluation during a model outage: INCONCLUSIVE, stored, the candidate keeps
    serving; reconcile rolls nothing back and status and reconcile say "no fresh evidence"."""
    from controller.service.compose import evidence_signer, rollout_service
    from controller.service.rollout import ReconcileOnFailedEval

    bundle = load_bundle(project)
    signer = evidence_signer(state)  # the CLI's reconcile and status accept only signed results
    svc = rollout_service(bundle.workflow, harness.store, StatePaths(state).flags(bundle.workflow.id), signer=signer)
    healthy, _ = harness.make(lambda n: None)
    assert run_eval(healthy, harness.digest, minter=harness.idp, signer=signer).passed
    assert svc.promote(harness.digest, "internal", operator="priya.natarajan").changed

    def down(n: int) -> None:
        raise ModelUnavailable("no credentials")

    outage, _ = harness.make(down)
    hook = ReconcileOnFailedEval(svc)
    result = run_eval(
        outage, harness.digest, minter=harness.idp, rollback_hook=hook, sleep=lambda s: None, signer=signer
    )
    assert result.verdict is Verdict.INCONCLUSIVE and hook.reports == []
    assert latest_result(harness.store, harness.digest) == result  # stored as such
    # the cases that could not run are no golden-set regressions in the weekly review
    from controller.evidence.review import EvalRun, Window, golden_regressions

    runs = [EvalRun.from_result(r) for r in load_results(harness.store, harness.digest)]
    assert len(runs) == 2 and golden_regressions(runs, Window.everything()) == []

    reconciled = rollout(state, "reconcile", "--json")
    assert reconciled.exit_code == 0, reconciled.output
    doc = json.loads(reconciled.stdout)
    assert doc["actions"] == [] and doc["state"]["candidate"]["release"] == harness.digest
    [note] = doc["no_fresh_evidence"]
    assert note.startswith(f"no fresh evidence for the candidate release {harness.digest[:12]}")
    assert [r.action for r in svc.history()] == ["promote"]  # type: ignore[union-attr]

    shown = rollout(state, "status", "--adapter", "local", "--json")
    assert shown.exit_code == 0, shown.output
    status = json.loads(shown.stdout)
    live = status["evals"][harness.digest]
    assert live["latest"]["verdict"] == "INCONCLUSIVE" and live["fresh_evidence"] is False
    assert status["no_fresh_evidence"] == [note] and status["rollbacks_due"] == []
    codes = {n["code"] for n in status["next_promotion"]["needs"]}
    assert "eval-inconclusive" in codes  # it never passes a gate
    human = rollout(state, "status", "--adapter", "local")
    assert "no fresh evidence" in " ".join(human.stdout.split()) and "INCONCLUSIVE" in human.stdout

    report = rollout(state, "audit", "report", "--format", "json")
    assert report.exit_code == 0, report.output
    [item] = [i for i in json.loads(report.stdout)["items"] if i["key"] == "eval-before-changes"]
    [check] = [c for c in item["checks"] if "no fresh evidence" in c["summary"]]
    assert check["status"] == "UNKNOWN" and "INCONCLUSIVE" in check["summary"]


def test_an_outage_that_recovers_within_the_retries_passes(harness: Any) -> None:
    def flaky(n: int) -> None:
        if n <= 2:
            raise ModelUnavailable("503 from the endpoint")

    gateway, _ = harness.make(flaky)
    result = run_eval(gateway, harness.digest, minter=harness.idp, concurrency=1, sleep=lambda s: None)
    assert result.verdict is Verdict.PASS
    assert not any(c["unavailable"] for c in result.cases)


def test_a_passing_eval_does_not_call_the_hook(harness: Any) -> None:
    gateway, _ = harness.make(lambda n: None)

    class Hook:
        def on_failed_eval(self, digest: str, result: EvalResult) -> None:
            raise AssertionError("called on a PASS")

    assert run_eval(gateway, harness.digest, minter=harness.idp, rollback_hook=Hook()).passed


def test_a_stuck_case_times_out_as_failed(harness: Any) -> None:
    release = threading.Event()

    def stick_once(n: int) -> None:
        if n == 1:
            release.wait(10)

    gateway, _ = harness.make(stick_once)
    try:
        result = run_eval(gateway, harness.digest, minter=harness.idp, concurrency=2, case_timeout_s=0.5)
    finally:
        release.set()
    stuck = [c for c in result.cases if c["error"]]
    assert len(stuck) == 1 and stuck[0]["failed"] == ["error"] and "timed out" in stuck[0]["error"]
    tally = result.raw["categories"][stuck[0]["category"]]
    assert tally["passed"] == tally["total"] - 1


def test_concurrency_is_bounded(harness: Any) -> None:
    lock = threading.Lock()
    state = {"now": 0, "peak": 0}
    gate = threading.Event()

    def track(n: int) -> None:
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        gate.wait(0.05)
        with lock:
            state["now"] -= 1

    gateway, _ = harness.make(track)
    assert run_eval(gateway, harness.digest, minter=harness.idp, concurrency=3).passed
    assert state["peak"] == 3


def test_a_wrong_identity_fails_every_case(harness: Any, tmp_path: Path) -> None:
    stranger = DevIdp(tmp_path / "other-idp")  # a key the gateway's JWKS does not hold
    gateway, _ = harness.make(lambda n: None)
    result = run_eval(gateway, harness.digest, minter=stranger)
    assert result.verdict is Verdict.FAIL
    assert {c["decision"] for c in result.cases} == {"refused"}
    assert not any(c["passed"] for c in result.cases)


def test_a_missing_release_is_invalid_input(harness: Any) -> None:
    gateway, _ = harness.make(lambda n: None)
    with pytest.raises(InvalidInput, match="not in the store"):
        run_eval(gateway, "f" * 64, minter=harness.idp)


def test_cli_an_unreachable_model_is_inconclusive_exit_5_and_stored(project: Path, state: Path) -> None:
    from tests.fakes.model_servers import unused_port

    def point_at_nothing(data: Any) -> None:
        data["surface"]["endpoint"] = {"kind": "openai-compatible", "base_url": f"http://127.0.0.1:{unused_port()}/v1"}

    edit_yaml(project / "workflow.yaml", point_at_nothing)
    result = rollout(state, "eval", "run", "--operator", "tester", "--concurrency", "16", "--json")
    assert result.exit_code == 5, result.output
    doc = json.loads(result.stdout)  # exactly one JSON document
    assert doc["ok"] is False and doc["result"]["verdict"] == "INCONCLUSIVE"
    [stored] = list_all_results(open_local_store(state))
    assert stored.key == doc["key"] and stored.verdict is Verdict.INCONCLUSIVE

    human = rollout(state, "eval", "run", "--operator", "tester", "--concurrency", "16")
    assert human.exit_code == 5, human.output
    message = " ".join(human.stderr.split())
    assert "INCONCLUSIVE" in message and "no fresh evidence" in message and "rolls nothing back" in message
    assert "NOT RUN" in human.stdout
