"""``rollout status|promote|rollback|kill|reconcile|history|audit verify`` in-process: exit codes,
readable output, ``--json``, the store choice and the operator's identity."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from controller.adapters.signing import LocalSigner
from controller.core.release import load_release
from controller.evals.results import build_result, store_result
from controller.evals.scoring import CaseResult
from controller.service.compose import StatePaths, open_local_store
from tests.conftest import copy_project

try:
    from tests.conftest import edit_yaml
    from tests.fakes.s3 import FAKE_AWS_ENV, make_bucket, shared_s3_server
except ModuleNotFoundError:
    from conftest import edit_yaml
    from fakes.s3 import FAKE_AWS_ENV, make_bucket, shared_s3_server

runner = CliRunner()
OP, OP2 = "priya.natarajan", "sam.okafor"
ISSUER, AUDIENCE = "https://login.corp.example/oauth2/default", "api://internal-docs-qa"


def _app() -> typer.Typer:
    from controller import cli

    return cli.app


def rollout(state: Path, *args: str) -> Any:
    return runner.invoke(_app(), ["--state", str(state), *args])


def rollout_json(state: Path, *args: str) -> tuple[int, Any]:
    result = rollout(state, *args, "--json")
    return result.exit_code, json.loads(result.stdout)


@pytest.fixture
def state(project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No bake time (the CLI runs on the real clock); the OS user is nobody in particular."""

    def no_bake(data: Any) -> None:
        for cohort in data["rollout"]["cohorts"]:
            cohort["bake_time"] = "0h"

    edit_yaml(project / "workflow.yaml", no_bake)
    monkeypatch.setattr("getpass.getuser", lambda: "os-user")
    monkeypatch.delenv("ROLLOUT_STORE", raising=False)
    return tmp_path / "state"


def approver_token(state: Path, email: str = "dana.whitfield@corp.example") -> str:
    """A token of the local dev IdP (the bundle's issuer) for an approver the bundle lists."""
    from controller.adapters.devidp import DevIdp

    idp = DevIdp(StatePaths(state).idp)
    return idp.mint(email, ["ai-rollout-approvers"], issuer=ISSUER, audience=AUDIENCE)


def flags(state: Path) -> Path:
    return StatePaths(state).flags("internal-docs-qa")


def create_release(state: Path) -> str:
    code, doc = rollout_json(state, "release", "create", "--adapter", "local")
    assert code == 0, doc
    return doc["digest"]


def store_eval(state: Path, digest: str, verdict: str, minutes_ago: float = 1) -> None:
    store = open_local_store(state)
    release = load_release(store, digest)
    thresholds = {str(k): v for k, v in release.workflow.eval.thresholds.items()}
    cases = [CaseResult(f"c-{c}", c, not (verdict == "FAIL" and c == "correctness"), (), "answered", 1.0) for c in thresholds]
    at = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes_ago)
    result = build_result(manifest=release.manifest, cases=cases, thresholds=thresholds, started_at=at, finished_at=at, operator="t")
    store_result(store, result, signer=LocalSigner(state))  # as `rollout eval run` does


def killed(state: Path) -> bool:
    doc = json.loads(flags(state).read_bytes())
    return doc["flags"]["internal-docs-qa-kill-switch"]["defaultVariant"] == "engaged"


# --- status and refusals -------------------------------------------------------------------------------


def test_status_lists_what_the_next_promotion_needs(state: Path) -> None:
    code, doc = rollout_json(state, "status", "--adapter", "local", "--operator", "mallory")
    assert code == 0
    assert doc["served"] == {"internal": "off", "limited": "off", "general": "off"}
    assert doc["next_promotion"]["cohort"] == "internal"
    needs = {n["code"] for n in doc["next_promotion"]["needs"]}
    assert needs == {"not-authorised", "release-unverified", "eval-missing"}
    text = rollout(state, "status", "--adapter", "local")
    assert text.exit_code == 0
    assert "still needs" in text.stdout and "kill switch" in text.stdout and "os-user" in text.stdout


def test_a_refused_promotion_exits_3_with_every_reason(state: Path) -> None:
    create_release(state)
    result = rollout(state, "promote", "--cohort", "limited", "--adapter", "local", "--operator", "mallory")
    assert result.exit_code == 3
    assert "refused" in result.stderr
    for fragment in ("not in rollout.operators", "no stored eval", "no skipping", "needs 1 approval"):
        assert fragment in result.stderr, result.stderr
    code, doc = rollout_json(state, "promote", "--cohort", "limited", "--adapter", "local", "--operator", "mallory")
    assert code == 3 and doc["ok"] is False and doc["decision"] == "refused"
    assert {r["code"] for r in doc["reasons"]} == {"not-authorised", "eval-missing", "cohort-order", "approvals"}
    assert doc["audit_seq"] is None


def test_invalid_arguments_exit_2(state: Path) -> None:
    assert rollout(state, "promote", "--cohort", "everyone", "--operator", OP).exit_code == 2
    assert rollout(state, "promote", "--cohort", "internal", "--release", "deadbeef00", "--operator", OP).exit_code == 2
    assert rollout(state, "kill", "--reason", "x", "--operator", "reconcile").exit_code == 2
    assert rollout(state, "rollback").exit_code == 2  # --reason is required


# --- the flow -------------------------------------------------------------------------------------------


def test_promote_rollback_history_verify(state: Path) -> None:
    digest = create_release(state)
    store_eval(state, digest, "PASS")
    assert rollout(state, "reconcile").exit_code == 0  # the controller takes over the flag file
    before = flags(state).read_bytes()

    result = rollout(state, "promote", "--cohort", "internal", "--adapter", "local", "--operator", OP, "--reason", "pilot")
    assert result.exit_code == 0, result.output
    assert "promoted to internal" in result.stdout and "audit seq 1" in result.stdout
    result = rollout(state, "approve", "--release", digest[:12], "--cohort", "limited", "--token", approver_token(state))
    assert result.exit_code == 0, result.output
    code, doc = rollout_json(state, "promote", "--cohort", "limited", "--release", digest[:12], "--operator", OP)
    assert code == 0, doc
    assert doc["served"] == {"internal": digest, "limited": digest, "general": "off"}
    assert doc["flags"]["rewritten"] is True

    code, status = rollout_json(state, "status", "--adapter", "local", "--operator", OP)
    assert status["state"]["candidate"]["release"] == digest
    assert [r["cohort"] for r in status["state"]["candidate"]["reached"]] == ["internal", "limited"]
    assert status["evals"][digest]["latest"]["verdict"] == "PASS"
    assert status["next_promotion"]["cohort"] == "general"
    assert {n["code"] for n in status["next_promotion"]["needs"]} == {"approvals"}

    result = rollout(state, "rollback", "--reason", "wrong answers", "--operator", OP2)
    assert result.exit_code == 0 and "rolled back" in result.stdout
    assert flags(state).read_bytes() == before
    again = rollout(state, "rollback", "--reason", "again", "--operator", OP2)
    assert again.exit_code == 0 and "nothing to do" in again.stdout

    code, history = rollout_json(state, "history")
    assert [r["action"] for r in history["records"]] == ["promote", "approve", "promote", "rollback"]
    assert history["records"][0]["reason"] == "pilot"
    approval = history["records"][1]
    assert approval["operator"] == "dana.whitfield@corp.example"
    assert approval["evidence"]["approval"]["release"] == digest
    assert approval["evidence"]["operator_identity"]["source"] == "oidc"
    assert history["records"][2]["evidence"]["approvals"][0]["seq"] == 2
    assert history["records"][0]["evidence"]["operator_identity"]["source"] == "asserted"
    assert "rollback" in rollout(state, "history").stdout
    result = rollout(state, "audit", "verify")
    assert result.exit_code == 0 and "4 records verified" in result.stdout


def test_kill_and_release(state: Path) -> None:
    result = rollout(state, "kill", "--reason", "incident 12", "--operator", "night-shift")
    assert result.exit_code == 0 and "kill switch engaged" in result.stdout
    assert killed(state)
    code, doc = rollout_json(state, "kill", "--release", "--reason", "fixed", "--operator", "night-shift")
    assert code == 3 and doc["reasons"][0]["code"] == "not-authorised"
    assert killed(state)
    code, doc = rollout_json(state, "kill", "--release", "--reason", "fixed", "--operator", OP)
    assert code == 0 and doc["changed"] and not killed(state)


def test_reconcile_rolls_back_a_failing_candidate(state: Path) -> None:
    digest = create_release(state)
    store_eval(state, digest, "PASS", minutes_ago=5)
    assert rollout(state, "promote", "--cohort", "internal", "--adapter", "local", "--operator", OP).exit_code == 0
    store_eval(state, digest, "FAIL", minutes_ago=1)
    code, doc = rollout_json(state, "reconcile")
    assert code == 0, doc
    assert doc["served"] == {"internal": "off", "limited": "off", "general": "off"}
    assert doc["actions"][0]["reasons"][0]["code"] == "applied"
    code, history = rollout_json(state, "history")
    assert history["records"][-1]["action"] == "auto-rollback" and history["records"][-1]["operator"] == "reconcile"
    code, doc = rollout_json(state, "reconcile")
    assert code == 0 and doc["actions"] == []


def test_audit_verify_names_the_first_bad_seq(state: Path) -> None:
    for reason in ("one", "two"):
        assert rollout(state, "kill", "--reason", reason, "--operator", "x").exit_code == 0
        assert rollout(state, "kill", "--release", "--reason", reason, "--operator", OP).exit_code == 0
    record = state / "audit" / "internal-docs-qa" / "000000000002.json"
    record.write_bytes(record.read_bytes().replace(b'"reason":"one"', b'"reason":"eno"'))
    result = rollout(state, "audit", "verify")
    assert result.exit_code == 1 and "seq 2" in result.stderr
    code, doc = rollout_json(state, "audit", "verify")
    assert code == 1 and doc["ok"] is False and doc["first_bad_seq"] == 2


def test_the_os_user_is_the_default_operator(state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("getpass.getuser", lambda: OP)
    digest = create_release(state)
    store_eval(state, digest, "PASS")
    assert rollout(state, "promote", "--cohort", "internal", "--adapter", "local").exit_code == 0
    code, history = rollout_json(state, "history")
    assert history["records"][0]["operator"] == OP


def test_an_invalid_bundle_refuses_promotion_but_not_a_kill(state: Path, project: Path) -> None:
    (project / "golden.yaml").unlink()
    code, doc = rollout_json(state, "promote", "--cohort", "internal", "--operator", OP)
    assert code == 3 and {"bundle-invalid", "release-unknown"} <= {r["code"] for r in doc["reasons"]}
    assert rollout(state, "kill", "--reason", "x", "--operator", OP).exit_code == 0
    assert killed(state)


# --- store choice and identity on AWS (moto) -------------------------------------------------------------


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> str:
    endpoint = shared_s3_server()
    for k, v in FAKE_AWS_ENV.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", endpoint)
    return endpoint


def test_store_url_from_the_environment(state: Path, aws: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROLLOUT_STORE", f"s3://{make_bucket(aws)}/rollout")
    assert rollout(state, "kill", "--reason", "on s3", "--operator", "x").exit_code == 0
    code, history = rollout_json(state, "history")
    assert [r["reason"] for r in history["records"]] == ["on s3"]
    assert not (state / "state").exists()  # nothing went to the local default store
    assert killed(state)  # the flag file stays local: it is what the gateway reads
    assert rollout(state, "audit", "verify").exit_code == 0


def test_kill_with_the_state_store_down_exits_5_after_engaging(state: Path, aws: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROLLOUT_STORE", "s3://no-such-bucket-here/rollout")
    result = rollout(state, "kill", "--reason", "incident", "--operator", "x")
    assert result.exit_code == 5
    assert "ENGAGED" in result.stderr
    assert killed(state)


def test_operator_from_sts(state: Path, project: Path, aws: str) -> None:
    # moto's caller is not listed: a kill still happens (never gated), recorded as asserted
    result = rollout(state, "kill", "--reason", "sts", "--operator-from-sts")
    assert result.exit_code == 0 and "is not listed in access.aws_principals" in result.stderr
    code, doc = rollout_json(state, "kill", "--release", "--reason", "sts", "--operator-from-sts")
    assert code == 3 and "is not listed in access.aws_principals" in doc["error"]["message"]
    code, history = rollout_json(state, "history")
    assert history["records"][0]["evidence"]["operator_identity"]["source"] == "asserted"

    import boto3

    arn = boto3.client("sts").get_caller_identity()["Arn"]

    def listed(data: Any) -> None:
        data["access"]["aws_principals"] = [{"arn": arn, "email": "sam.okafor@corp.example", "groups": []}]

    edit_yaml(project / "workflow.yaml", listed)
    code, doc = rollout_json(state, "kill", "--release", "--reason", "sts", "--operator-from-sts")
    assert code == 0, doc
    code, history = rollout_json(state, "history")
    record = history["records"][-1]
    assert record["operator"] == "sam.okafor@corp.example"
    assert record["evidence"]["operator_arn"] == arn
    assert record["evidence"]["operator_identity"] == {
        "issuer": "aws-sts", "subject": arn, "email": "sam.okafor@corp.example", "groups": [], "source": "sts", "arn": arn
    }


# --- Kubernetes flag sync through a kubeconfig -------------------------------------------------------------


def test_flags_published_to_a_configmap(state: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.fakes.kube import FakeKubeApi

    kube = FakeKubeApi()
    try:
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(
            "apiVersion: v1\nkind: Config\ncurrent-context: fake\n"
            f"clusters: [{{name: fake, cluster: {{server: '{kube.url}'}}}}]\n"
            "users: [{name: tester, user: {token: not-a-secret}}]\n"
            "contexts: [{name: fake, context: {cluster: fake, user: tester}}]\n"
        )
        monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
        monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
        code, doc = rollout_json(state, "kill", "--reason", "x", "--operator", "y", "--k8s-configmap", "flags/docs-qa")
        assert code == 0 and doc["flags"]["published"] == ["configmap:flags/docs-qa#flags.flagd.json"]
        assert kube.data()["flags.flagd.json"].encode() == flags(state).read_bytes()

        # no reachable Kubernetes: the local flag file is still written, then exit 5
        monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
        result = rollout(state, "kill", "--release", "--reason", "x", "--operator", OP, "--k8s-configmap", "flags/docs-qa")
        assert result.exit_code == 5 and "Kubernetes" in result.stderr
        assert not killed(state)
    finally:
        kube.server.shutdown()
        kube.server.server_close()


def test_kill_publishes_the_flag_document_to_s3_for_the_gateways(
    tmp_path: Path, s3_bucket: Any, s3_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`rollout kill --flags-s3` reaches the Lambdas' flag store at once, not at the next reconcile."""
    from controller.cli import app as root

    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_bucket.endpoint_url)
    project = copy_project(tmp_path / "p")
    monkeypatch.chdir(tmp_path / "p")
    url = f"s3://{s3_bucket.name}/flags/internal-docs-qa.flagd.json"
    result = CliRunner().invoke(
        root,
        ["--state", str(tmp_path / "st"), "--flags-s3", url, "kill", "--workflow", str(project),
         "--operator", "sam.okafor", "--reason", "drill"],
    )
    assert result.exit_code == 0, result.output
    body = s3_client.get_object(Bucket=s3_bucket.name, Key="flags/internal-docs-qa.flagd.json")["Body"].read()
    doc = json.loads(body)
    assert doc["flags"]["internal-docs-qa-kill-switch"]["defaultVariant"] == "engaged"


# --- conventions: usage errors, --version, environment ---------------------------------------------


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["promote", "--cohort", "everyone"], "--cohort"),
        (["nosuch"], "No such command"),
        (["status", "--no-such-option"], "--no-such-option"),
        (["rollback", "--operator", OP], "--reason"),
        (["init", "x", "--use-case", "chatbot"], "--use-case"),
    ],
)
def test_usage_errors_are_json_on_stdout_with_json(state: Path, args: list[str], words: str) -> None:
    result = rollout(state, *args, "--json")
    assert result.exit_code == 2, result.output
    doc = json.loads(result.stdout)
    assert doc["ok"] is False and doc["error"]["exit_code"] == 2 and words in doc["error"]["message"]
    plain = rollout(state, *args)
    assert plain.exit_code == 2 and plain.stdout == "" and words in plain.stderr


def test_version_and_environment_for_global_and_common_options(state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from controller import __version__

    result = rollout(state, "--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"rollout {__version__}"
    monkeypatch.setenv("ROLLOUT_OPERATOR", OP)
    monkeypatch.setenv("ROLLOUT_WORKFLOW", "internal-docs-qa")
    code, doc = rollout_json(state, "kill", "--reason", "env test")
    assert code == 0 and doc["state"]["kill"]["by"] == OP


def test_release_list_names_workflow_and_adapter_and_prefix_messages(state: Path) -> None:
    digest = create_release(state)
    code, doc = rollout_json(state, "release", "list")
    assert code == 0 and doc["releases"] == [digest]
    assert doc["items"][0] == {
        "digest": digest, "workflow": "internal-docs-qa", "adapter": "local", "model": "local-extractive-v1", "prompt": "answer v1",
    }
    text = runner.invoke(_app(), ["--state", str(state), "release", "list"], env={"COLUMNS": "200"})
    assert digest[:12] in text.stdout and "internal-docs-qa" in text.stdout and "local" in text.stdout
    other = "0" * 8 if not digest.startswith("0" * 8) else "f" * 8
    missing = rollout(state, "release", "show", other)
    assert missing.exit_code == 2 and "no release stored starts with it" in missing.stderr
    short = rollout(state, "release", "show", digest[:6])
    assert short.exit_code == 2 and "at least 8 hex characters" in short.stderr
    assert rollout(state, "release", "show", digest[:8]).exit_code == 0


def test_redact_names_blocked_and_redacted_findings_apart(state: Path) -> None:
    import random

    try:
        from tests.fakes.secrets import UPPER27, chars
    except ModuleNotFoundError:
        from fakes.secrets import UPPER27, chars
    key = "AKIA" + chars(random.Random(7), UPPER27, 16)
    redact_only = runner.invoke(_app(), ["redact"], input="mail jo@customer.example please\n")
    assert redact_only.exit_code == 0 and "redacted: email x1" in redact_only.stderr and "BLOCKED" not in redact_only.stderr
    both = runner.invoke(_app(), ["redact"], input=f"key {key} and jo@customer.example\n")
    assert both.exit_code == 3
    assert "BLOCKED: aws-access-key x1" in both.stderr and "redacted: email x1" in both.stderr
    assert key not in both.stdout
