"""Many workflows, one tool: two bundles side by side, addressed by id (``-w ID``), listed by
``rollout workflows``, reported by ``status --all``, killed together by ``kill --all``; ``promote``
promotes exactly the release that was evaluated and previews with ``--dry-run``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from controller.cli import app
from controller.service.compose import StatePaths
from tests.conftest import edit_yaml
from tests.test_cli_rollout import store_eval

runner = CliRunner()
OP = "priya.natarajan"
SECOND = "ops-handbook-qa"


def make_second_bundle(project: Path) -> Path:
    """A second bundle derived from the first, with everything it must not share made its own."""
    dest = project.parent / SECOND
    shutil.copytree(project, dest)
    doc = json.loads((project.parent.parent / "flags/internal-docs-qa.flagd.json").read_text())
    doc["metadata"]["flagSetId"] = SECOND
    doc["flags"] = {k.replace("internal-docs-qa", SECOND): v for k, v in doc["flags"].items()}
    (dest / "flags.flagd.json").write_text(json.dumps(doc, indent=2))

    def own(data: Any) -> None:
        data["id"] = SECOND
        data["sso"]["idp"]["audience"] = f"api://{SECOND}"
        data["rollout"]["flags_file"] = "flags.flagd.json"
        data["rollout"]["release_flag"] = f"{SECOND}-release"
        data["rollout"]["kill_switch_flag"] = f"{SECOND}-kill-switch"
        for cohort in data["rollout"]["cohorts"]:
            cohort["bake_time"] = "0h"

    edit_yaml(dest / "workflow.yaml", own)
    return dest


@pytest.fixture
def two(project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    def no_bake(data: Any) -> None:
        for cohort in data["rollout"]["cohorts"]:
            cohort["bake_time"] = "0h"

    edit_yaml(project / "workflow.yaml", no_bake)
    make_second_bundle(project)
    monkeypatch.setattr("getpass.getuser", lambda: "os-user")
    monkeypatch.delenv("ROLLOUT_STORE", raising=False)
    return tmp_path / "state"


def approve(state: Path, digest: str, cohort: str, email: str) -> None:
    """An approver of the second bundle, signed in with a dev IdP token, approves ``digest``."""
    from controller.adapters.devidp import DevIdp

    minted = DevIdp(StatePaths(state).idp).mint(
        email, ["ai-rollout-approvers"], issuer="https://login.corp.example/oauth2/default", audience=f"api://{SECOND}"
    )
    result = run(state, "approve", "-w", SECOND, "--release", digest, "--cohort", cohort, "--token", minted)
    assert result.exit_code == 0, result.output


def run(state: Path, *args: str) -> Any:
    return runner.invoke(app, ["--state", str(state), *args])


def run_json(state: Path, *args: str) -> tuple[int, Any]:
    result = run(state, *args, "--json")
    return result.exit_code, json.loads(result.stdout)


def kill_engaged(state: Path, workflow: str) -> bool:
    doc = json.loads(StatePaths(state).flags(workflow).read_bytes())
    return doc["flags"][f"{workflow}-kill-switch"]["defaultVariant"] == "engaged"


def test_both_bundles_validate_together(two: Path) -> None:
    code, doc = run_json(two, "validate")
    assert code == 0, doc
    assert [w["workflow"] for w in doc["workflows"]] == ["internal-docs-qa", SECOND]


def test_mutating_commands_need_w_and_status_needs_w_or_all(two: Path) -> None:
    for args in (["promote", "--operator", OP], ["kill", "--reason", "x", "--operator", OP], ["status"]):
        result = run(two, *args)
        assert result.exit_code == 2, (args, result.output)
        assert "choose one with --workflow/-w ID" in " ".join(result.stderr.split())
    code, doc = run_json(two, "status", "--all", "--operator", OP)
    assert code == 0
    assert [w["workflow"] for w in doc["workflows"]] == ["internal-docs-qa", SECOND]
    text = run(two, "status", "--all")
    assert "internal-docs-qa: rollout" in text.stdout and f"{SECOND}: rollout" in text.stdout
    assert run(two, "status", "--all", "-w", SECOND).exit_code == 2


def test_workflows_lists_every_bundle(two: Path) -> None:
    code, created = run_json(two, "release", "create", "-w", SECOND, "--adapter", "local")
    assert code == 0
    store_eval(two, created["digest"], "PASS")
    assert run(two, "promote", "-w", SECOND, "--operator", OP).exit_code == 0
    code, doc = run_json(two, "workflows")
    assert code == 0
    rows = {r["workflow"]: r for r in doc["workflows"]}
    assert set(rows) == {"internal-docs-qa", SECOND}
    assert rows[SECOND]["candidate"] == {"release": created["digest"], "cohorts": ["internal"]}
    assert rows[SECOND]["last_eval"]["verdict"] == "PASS" and rows[SECOND]["last_eval"]["adapter"] == "local"
    assert rows["internal-docs-qa"]["candidate"] is None and rows["internal-docs-qa"]["last_eval"] is None
    assert rows[SECOND]["cohorts"] == ["internal", "limited", "general"]
    assert rows[SECOND]["kill_switch"]["engaged"] is False
    text = runner.invoke(app, ["--state", str(two), "workflows"], env={"COLUMNS": "200"})
    assert text.exit_code == 0 and SECOND in text.stdout and "PASS" in text.stdout


def test_kill_all_engages_every_kill_switch_and_unkill_releases_one(two: Path) -> None:
    code, doc = run_json(two, "kill", "--all", "--reason", "vendor incident", "--operator", OP)
    assert code == 0, doc
    assert set(doc["workflows"]) == {"internal-docs-qa", SECOND}
    assert kill_engaged(two, "internal-docs-qa") and kill_engaged(two, SECOND)
    assert run(two, "kill", "--all", "--off", "--reason", "x", "--operator", OP).exit_code == 2
    result = run(two, "unkill", "-w", SECOND, "--reason", "vendor fixed", "--operator", OP)
    assert result.exit_code == 0, result.output
    assert kill_engaged(two, "internal-docs-qa") and not kill_engaged(two, SECOND)
    code, doc = run_json(two, "kill", "--off", "-w", "internal-docs-qa", "--reason", "fixed", "--operator", OP)
    assert code == 0 and not kill_engaged(two, "internal-docs-qa")


def test_promote_takes_the_evaluated_release_not_a_recomputed_one(two: Path) -> None:
    # Evaluated with the offline adapter; the bundle's own endpoint (bedrock) builds another digest.
    code, created = run_json(two, "release", "create", "-w", SECOND, "--adapter", "local")
    store_eval(two, created["digest"], "PASS")
    result = run(two, "promote", "-w", SECOND, "--operator", OP)
    assert result.exit_code == 0, result.output
    shown = " ".join(result.stderr.split())
    assert f"promote release {created['digest'][:12]} (latest eval, adapter local, PASS at" in shown
    assert "-> internal" in shown  # the next cohort by default
    approve(two, created["digest"], "limited", "sam.okafor@corp.example")
    code, doc = run_json(two, "promote", "-w", SECOND, "--operator", OP)
    assert code == 0, doc
    assert doc["target"]["cohort"] == "limited" and doc["target"]["release"] == created["digest"]
    assert doc["served"]["limited"] == created["digest"]


def test_promote_dry_run_prints_the_verdict_and_the_flag_diff_and_writes_nothing(two: Path) -> None:
    code, created = run_json(two, "release", "create", "-w", SECOND, "--adapter", "local")
    store_eval(two, created["digest"], "PASS")
    code, doc = run_json(two, "promote", "-w", SECOND, "--operator", OP, "--dry-run")
    assert code == 0, doc
    assert doc["dry_run"] is True and doc["decision"] == "allowed"
    assert doc["would_serve"]["internal"] == created["digest"] and doc["served"]["internal"] == "off"
    assert f"+        \"internal\": \"{created['digest']}\"" in doc["flag_diff"], doc["flag_diff"]
    assert not StatePaths(two).flags(SECOND).exists(), "a dry run writes nothing"
    code, history = run_json(two, "history", "-w", SECOND)
    assert history["records"] == []
    refused = run(two, "promote", "-w", SECOND, "--operator", "mallory", "--dry-run")
    assert refused.exit_code == 3 and "would be refused" in refused.stdout and "not-authorised" in refused.stdout


def test_promote_with_nothing_left_to_promote_says_so(two: Path) -> None:
    code, created = run_json(two, "release", "create", "-w", SECOND, "--adapter", "local")
    store_eval(two, created["digest"], "PASS")
    approvals = {"internal": [], "limited": ["sam.okafor"], "general": ["sam.okafor", "dana.whitfield"]}
    for cohort, approvers in approvals.items():
        for name in approvers:
            approve(two, created["digest"], cohort, f"{name}@corp.example")
        result = run(two, "promote", "-w", SECOND, "--operator", OP)
        assert result.exit_code == 0, (cohort, result.output)
    result = run(two, "promote", "-w", SECOND, "--operator", OP)
    assert result.exit_code == 2 and "nothing to promote" in result.stderr


# --- the second shipped workflow ---------------------------------------------------------------


@pytest.fixture
def shipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Both shipped bundles, as they are in the repository (bake times zeroed)."""
    from tests.conftest import BUNDLE, copy_project

    copy_project(tmp_path, (BUNDLE, "workflows/support-reply-drafting"))
    monkeypatch.chdir(tmp_path)
    for bundle in ("internal-docs-qa", "support-reply-drafting"):
        edit_yaml(
            tmp_path / "workflows" / bundle / "workflow.yaml",
            lambda d: [c.__setitem__("bake_time", "0h") for c in d["rollout"]["cohorts"]],
        )
    monkeypatch.setattr("getpass.getuser", lambda: "os-user")
    monkeypatch.delenv("ROLLOUT_STORE", raising=False)
    return tmp_path / "state"


def test_both_shipped_bundles_validate_together(shipped: Path) -> None:
    code, doc = run_json(shipped, "validate")
    assert code == 0, doc
    assert [w["workflow"] for w in doc["workflows"]] == ["internal-docs-qa", "support-reply-drafting"]
    summary = doc["workflows"][1]["summary"]
    assert summary["forbidden_categories"]["customer-data"] == "redact"
    assert summary["flags_file"].endswith("workflows/support-reply-drafting/flags.flagd.json")


def test_support_drafts_redact_customer_data_and_require_human_verification(shipped: Path) -> None:
    w = ["-w", "support-reply-drafting"]
    code, created = run_json(shipped, "release", "create", *w, "--adapter", "local")
    store_eval(shipped, created["digest"], "PASS")
    assert run(shipped, "promote", *w, "--operator", "tomas.reyes").exit_code == 0
    email = "jordan.example@customer.example"
    question = f"Ticket from Jordan ({email}): my robot arrived late. What do we offer on the next order?"
    code, doc = run_json(shipped, "ask", *w, "--as", "ana.silva@corp.example", "--groups", "support-leads", question)
    assert code == 0 and doc["ok"] is True, doc
    assert doc["decision"] == "answered" and doc["requires_human_verification"] is True
    assert "shipping-delays" in doc["citations"] and email not in doc["answer"]
    assert doc["answer"].startswith("Draft reply for the agent to check")  # the baseline's wording for the kind
    text = run(shipped, *["ask", *w, "--as", "ana.silva@corp.example", "--groups", "support-leads", question])
    assert "DRAFT:" in text.stdout
    records = [
        json.loads(line)
        for path in StatePaths(shipped).requests.rglob("*")
        if path.is_file()
        for line in path.read_text().splitlines()
        if line.strip()
    ]
    answered = [r for r in records if r["decision"] == "answered" and r["workflow"] == "support-reply-drafting"]
    assert answered and all(r["requires_human_verification"] is True for r in answered)
    assert all(email not in json.dumps(r) for r in records)
    # the docs Q&A workflow's answers are not drafts
    code, created = run_json(shipped, "release", "create", "-w", "internal-docs-qa", "--adapter", "local")
    store_eval(shipped, created["digest"], "PASS")
    assert run(shipped, "promote", "-w", "internal-docs-qa", "--operator", OP).exit_code == 0
    code, doc = run_json(
        shipped, "ask", "-w", "internal-docs-qa", "--as", "a@corp.example", "--groups", "ai-pilot",
        "How long does the primary on-call have to acknowledge a page?",
    )
    assert doc["decision"] == "answered" and doc["requires_human_verification"] is False


def test_ask_while_killed_exits_3_with_ok_false(shipped: Path) -> None:
    w = ["-w", "support-reply-drafting"]
    assert run(shipped, "kill", *w, "--reason", "x", "--operator", "tomas.reyes").exit_code == 0
    code, doc = run_json(shipped, "ask", *w, "--as", "ana.silva@corp.example", "--groups", "support-leads", "hi")
    assert code == 3 and doc["ok"] is False and doc["decision"] == "disabled"


def test_the_support_golden_set_passes_offline_on_its_own_release(shipped: Path) -> None:
    w = ["-w", "support-reply-drafting"]
    assert run(shipped, "release", "create", *w, "--adapter", "local").exit_code == 0
    code, doc = run_json(shipped, "eval", "run", *w, "--adapter", "local", "--operator", "ci")
    assert code == 0, doc
    assert doc["result"]["verdict"] == "PASS"
    assert set(doc["result"]["categories"]) == {"correctness", "policy-compliance", "refusal"}


def test_kill_all_reaches_both_gateways(shipped: Path) -> None:
    personas = {
        "internal-docs-qa": ("a@corp.example", "ai-pilot", "How long does the primary on-call have to acknowledge a page?"),
        "support-reply-drafting": ("ana.silva@corp.example", "support-leads", "What do we offer when a delivery is late?"),
    }
    operators = {"internal-docs-qa": OP, "support-reply-drafting": "tomas.reyes"}
    for wf in personas:
        code, created = run_json(shipped, "release", "create", "-w", wf, "--adapter", "local")
        store_eval(shipped, created["digest"], "PASS")
        assert run(shipped, "promote", "-w", wf, "--operator", operators[wf]).exit_code == 0

    def ask(wf: str) -> tuple[int, Any]:
        email, group, question = personas[wf]
        return run_json(shipped, "ask", "-w", wf, "--as", email, "--groups", group, question)

    assert all(ask(wf)[1]["decision"] == "answered" for wf in personas)
    code, doc = run_json(shipped, "kill", "--all", "--reason", "vendor incident", "--operator", "sam.okafor")
    assert code == 0, doc  # sam.okafor operates both workflows
    for wf in personas:
        code, answer = ask(wf)
        assert code == 3 and answer["decision"] == "disabled", (wf, answer)


def test_an_unreadable_eval_fails_promote_closed_but_status_still_reports(two: Path) -> None:
    code, created = run_json(two, "release", "create", "-w", SECOND, "--adapter", "local")
    store_eval(two, created["digest"], "PASS")
    [result] = [p for p in (two / "evals").rglob("*.json")]
    result.write_text(result.read_text().replace('"PASS"', '"FAIL"', 1))  # edited evidence
    code, doc = run_json(two, "promote", "-w", SECOND, "--operator", OP)
    assert code == 2 and doc["ok"] is False and doc["error"]["type"] == "InvalidInput"
    code, history = run_json(two, "history", "-w", SECOND)
    assert history["records"] == []
    code, status = run_json(two, "status", "-w", SECOND, "--operator", OP)
    assert code == 0 and status["next_promotion"] is not None
