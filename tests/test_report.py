"""``rollout audit report``: the Definition of Done judged on real evidence.

Missing evidence is UNKNOWN; a state built by the real pipeline (release, eval, promote, asks
through the gateway) plus a stack export consistent with the bundle passes every item; a
tampered chain, a wrong retention or a wrong issuer fails, naming what it found and what the
bundle says; the HTML is one self-contained file."""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from controller.bundle.models import load_bundle
from controller.evidence.facts import Evidence
from controller.evidence.model import Check, Item, Report, Status
from controller.evidence.render import render_html
from controller.evidence.report import build_report, report_exit_code
from controller.evidence.stack_export import read_stack_export

try:
    from tests.conftest import copy_project, edit_yaml
    from tests.test_review import generate_records, write_log
except ModuleNotFoundError:
    from conftest import copy_project, edit_yaml
    from test_review import generate_records, write_log

runner = CliRunner()
FIXTURES = Path(__file__).parent / "fixtures"
EXPORT = FIXTURES / "stack-export.json"
WRONG_RETENTION = FIXTURES / "stack-export-wrong-retention.json"
OPERATOR = "priya.natarajan"
QUESTION = "How quickly must the primary on-call acknowledge a page?"
PILOT = ["--as", "alice.moreau@corp.example", "--groups", "eng,ai-pilot"]
FAKE_KEY = "AKIA" + "FAKE2TESTKEY7DOC"  # split so secret scanners do not flag the test itself


def _app() -> typer.Typer:
    from controller import cli

    return cli.app


def rollout(state: Path, *args: str) -> Any:
    return runner.invoke(_app(), ["--state", str(state), *args])


def report_json(state: Path, bundle: Path, *extra: str) -> dict[str, Any]:
    result = rollout(state, "audit", "report", "--workflow", str(bundle), "--format", "json", *extra)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def statuses(doc: dict[str, Any]) -> dict[int, str]:
    return {i["number"]: i["status"] for i in doc["items"]}


def item(doc: dict[str, Any], number: int) -> dict[str, Any]:
    return next(i for i in doc["items"] if i["number"] == number)


@pytest.fixture(scope="module")
def complete(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The real pipeline, once: release, eval, promote to internal, asks through the gateway."""
    root = tmp_path_factory.mktemp("complete")
    bundle = copy_project(root)

    def no_bake(data: Any) -> None:
        for cohort in data["rollout"]["cohorts"]:
            cohort["bake_time"] = "0h"

    edit_yaml(bundle / "workflow.yaml", no_bake)
    state = root / "state"
    w = ("--workflow", str(bundle))
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("ROLLOUT_STORE", raising=False)
        mp.delenv("ROLLOUT_MODEL_ADAPTER", raising=False)
        steps = [
            (0, ["release", "create", *w, "--adapter", "local"]),
            (0, ["eval", "run", *w, "--adapter", "local", "--operator", "ci-release-bot"]),
            (
                0,
                [
                    "promote",
                    *w,
                    "--cohort",
                    "internal",
                    "--adapter",
                    "local",
                    "--operator",
                    OPERATOR,
                    "--reason",
                    "pilot",
                ],
            ),
            (0, ["ask", *w, *PILOT, QUESTION]),
            (0, ["ask", *w, *PILOT, "What is the meal allowance when travelling?"]),
            (0, ["ask", *w, "--as", "ben.okoro@corp.example", "--groups", "eng", QUESTION]),  # not in a cohort yet
            (3, ["ask", *w, *PILOT, f"deploy fails with aws_access_key_id {FAKE_KEY}, which role?"]),
            (3, ["ask", *w, "--as", "alice.moreau@gmail.com", "--groups", "eng,ai-pilot", QUESTION]),
        ]
        for code, args in steps:
            result = rollout(state, *args)
            assert result.exit_code == code, (args, result.output)
    return state, bundle


@pytest.fixture
def copied(complete: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path]:
    """A private copy of the complete state, for a test that tampers with it."""
    state, bundle = complete
    shutil.copytree(state, tmp_path / "state")
    return tmp_path / "state", bundle


# --- the three verdicts -------------------------------------------------------------------------


def test_a_state_without_evidence_reports_unknown_never_pass(project: Path, tmp_path: Path) -> None:
    doc = report_json(tmp_path / "state", project)
    assert statuses(doc) == {1: "UNKNOWN", 2: "UNKNOWN", 3: "UNKNOWN", 4: "UNKNOWN", 5: "UNKNOWN"}
    assert doc["overall"] == "UNKNOWN" and doc["counts"] == {"PASS": 0, "FAIL": 0, "UNKNOWN": 5}
    rationales = " ".join(i["rationale"] for i in doc["items"])
    for missing in (
        "no eval result is stored",
        "no user request is recorded",
        "no `pulumi stack export` was given",
        "no live flag document",
        "no rollout state",
    ):
        assert missing in rationales, missing
    for i in doc["items"]:
        assert i["rationale"].startswith("no evidence:")
        assert any(c["status"] == "UNKNOWN" for c in i["checks"])


def test_the_complete_pipeline_passes_every_item(complete: tuple[Path, Path]) -> None:
    state, bundle = complete
    doc = report_json(state, bundle, "--stack-export", str(EXPORT))
    assert statuses(doc) == {1: "PASS", 2: "PASS", 3: "PASS", 4: "PASS", 5: "PASS"}, [
        (i["number"], i["rationale"]) for i in doc["items"] if i["status"] != "PASS"
    ]
    assert doc["overall"] == "PASS" and doc["schema"] == "ai-rollout.audit-report/v1"
    for i in doc["items"]:
        assert i["rationale"].startswith("every check passed, on evidence from:")
        assert {c["status"] for c in i["checks"]} == {"PASS"}
    # each item is decided by the evidence the brief names
    sources = {i["number"]: {c["source"] for c in i["checks"]} for i in doc["items"]}
    assert {"stack export", "request log", "rollout state"} <= sources[1]
    assert {"eval results", "request log", "stack export"} <= sources[2]
    assert {"audit chain", "request log", "stack export"} <= sources[3]
    assert {"flag document", "audit chain", "bundle"} <= sources[4]
    assert {"eval results", "audit chain"} <= sources[5]
    evidence = doc["evidence"]
    assert evidence["audit_chain"]["ok"] is True and evidence["audit_chain"]["checked"] == 1
    assert evidence["evals"][0]["verdict"] == "PASS" and len(evidence["evals"][0]["content_hash"]) == 64
    assert evidence["evals"][0]["finished_at"].endswith("Z")  # controller.core.timefmt, like every stored time
    assert evidence["flags"]["sha256"] and evidence["provisioned"]["stack"] == "prod"


def test_without_a_stack_export_the_provisioned_checks_are_unknown(complete: tuple[Path, Path]) -> None:
    state, bundle = complete
    doc = report_json(state, bundle)
    assert statuses(doc) == {1: "UNKNOWN", 2: "UNKNOWN", 3: "UNKNOWN", 4: "PASS", 5: "PASS"}
    for n in (1, 2, 3):
        assert [c["source"] for c in item(doc, n)["checks"] if c["status"] != "PASS"] == ["stack export"]


def test_a_tampered_audit_chain_fails(copied: tuple[Path, Path]) -> None:
    state, bundle = copied
    path = state / "audit" / "internal-docs-qa" / "000000000001.json"
    record = json.loads(path.read_bytes())
    record["reason"] = "nothing to see here"
    path.write_bytes(json.dumps(record, sort_keys=True, separators=(",", ":")).encode())
    doc = report_json(state, bundle, "--stack-export", str(EXPORT))
    assert item(doc, 3)["status"] == "FAIL"
    assert "BROKEN at seq 1" in item(doc, 3)["rationale"] and "modified" in item(doc, 3)["rationale"]
    assert doc["overall"] == "FAIL"
    # what the chain would have shown is no longer evidence
    for n in (4, 5):
        assert item(doc, n)["status"] == "UNKNOWN"
        assert "does not verify" in item(doc, n)["rationale"]
    review = rollout(state, "review", "--workflow", str(bundle), "--json")
    assert review.exit_code == 1
    assert any("BROKEN at seq 1" in p for p in json.loads(review.stdout)["problems"])


def test_an_edited_eval_result_fails(copied: tuple[Path, Path]) -> None:
    state, bundle = copied
    (path,) = (state / "evals").glob("*/*.json")
    path.write_bytes(path.read_bytes().replace(b'"verdict":"PASS"', b'"verdict":"FAIL"'))
    doc = report_json(state, bundle, "--stack-export", str(EXPORT))
    assert item(doc, 5)["status"] == "FAIL" and "do not verify" in item(doc, 5)["rationale"]


def test_a_wrong_retention_fails_naming_both_values(complete: tuple[Path, Path]) -> None:
    state, bundle = complete
    doc = report_json(state, bundle, "--stack-export", str(WRONG_RETENTION))
    assert statuses(doc) == {1: "PASS", 2: "PASS", 3: "FAIL", 4: "PASS", 5: "PASS"}
    why = item(doc, 3)["rationale"]
    assert (
        "lifecycle expires current versions after 30 days; the bundle's posture sec-log-audit requires 399 days "
        "(400 in total)" in why
    )
    assert "Object Lock default retention 30 days; the bundle's posture sec-log-audit requires 400 days" in why
    assert "control_plane" not in why  # only the wrong bucket is named


def test_a_wrong_retention_fails_in_the_pure_core_too() -> None:
    workflow = load_bundle(Path(__file__).resolve().parents[1] / "workflows" / "internal-docs-qa").workflow
    prov = read_stack_export(json.loads(WRONG_RETENTION.read_text()), source="wrong.json")
    report = build_report(
        Evidence("internal-docs-qa", "2026-11-26T12:00:00+00:00", workflow=workflow, provisioned=prov)
    )
    trail = report.items[2]
    assert trail.status is Status.FAIL
    assert "30 days" in trail.rationale and "400 days" in trail.rationale
    assert report.status is Status.FAIL


def _mutated(edit: Any) -> dict[str, Any]:
    doc = copy.deepcopy(json.loads(EXPORT.read_text()))
    for r in doc["deployment"]["resources"]:
        edit(r)
    return doc


def test_a_wrong_issuer_or_an_open_route_fails_naming_both_values(copied: tuple[Path, Path], tmp_path: Path) -> None:
    state, bundle = copied

    def edit(r: dict[str, Any]) -> None:
        if r["type"] == "aws:apigatewayv2/authorizer:Authorizer":
            for side in ("inputs", "outputs"):
                r[side]["jwtConfiguration"]["issuer"] = "https://evil.example/oauth2"
        if r["type"] == "aws:apigatewayv2/route:Route":
            for side in ("inputs", "outputs"):
                r[side]["authorizationType"] = "NONE"

    wrong = tmp_path / "stack-export-wrong-issuer.json"
    wrong.write_text(json.dumps(_mutated(edit)))
    doc = report_json(state, bundle, "--stack-export", str(wrong))
    assert item(doc, 1)["status"] == "FAIL"
    why = item(doc, 1)["rationale"]
    assert (
        "issuer https://evil.example/oauth2 differs from the bundle's sso.idp.issuer "
        "https://login.corp.example/oauth2/default"
    ) in why
    assert "routes not behind the JWT authorizer: POST /v1/ask (NONE)" in why


def test_a_permission_set_that_allows_other_models_fails() -> None:
    workflow = load_bundle(Path(__file__).resolve().parents[1] / "workflows" / "internal-docs-qa").workflow
    other = "arn:aws:bedrock:eu-west-1::foundation-model/meta.llama3-70b-instruct-v1:0"

    def edit(r: dict[str, Any]) -> None:
        if r["type"] == "aws:ssoadmin/permissionSetInlinePolicy:PermissionSetInlinePolicy":
            for side in ("inputs", "outputs"):
                policy = json.loads(r[side]["inlinePolicy"])
                policy["Statement"][0]["Resource"].append(other)
                r[side]["inlinePolicy"] = json.dumps(policy)

    prov = read_stack_export(_mutated(edit))
    report = build_report(
        Evidence("internal-docs-qa", "2026-11-26T12:00:00+00:00", workflow=workflow, provisioned=prov)
    )
    assert report.items[0].status is Status.FAIL and other in report.items[0].rationale


def test_secrets_in_the_export_are_unknown_not_compared() -> None:
    workflow = load_bundle(Path(__file__).resolve().parents[1] / "workflows" / "internal-docs-qa").workflow

    def edit(r: dict[str, Any]) -> None:
        if r["type"] == "aws:apigatewayv2/authorizer:Authorizer":
            for side in ("inputs", "outputs"):
                r[side]["jwtConfiguration"]["issuer"] = {
                    "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270",
                    "ciphertext": "v1:abc",
                }

    report = build_report(
        Evidence(
            "internal-docs-qa",
            "2026-11-26T12:00:00+00:00",
            workflow=workflow,
            provisioned=read_stack_export(_mutated(edit)),
        )
    )
    checks = [c for c in report.items[0].checks if c.summary.startswith("JWT authorizer")]
    assert [c.status for c in checks] == [Status.UNKNOWN] and "--show-secrets" in checks[0].summary


def test_a_file_that_is_not_a_stack_export_is_invalid_input(project: Path, tmp_path: Path) -> None:
    bad = tmp_path / "outputs.json"
    bad.write_text(json.dumps({"retention": {}}))
    result = rollout(tmp_path / "state", "audit", "report", "--stack-export", str(bad), "--json")
    assert result.exit_code == 2 and "not a `pulumi stack export` document" in result.stdout
    result = rollout(tmp_path / "state", "audit", "report", "--stack-export", str(tmp_path / "missing.json"))
    assert result.exit_code == 2
    assert rollout(tmp_path / "state", "audit", "report", "--format", "pdf").exit_code == 2


# --- the fixture is what the infra program provisions ------------------------------------------


def test_the_stack_export_fixture_matches_the_programs_expected_values() -> None:
    from controller.core import provisioning as derive  # pure: no Pulumi needed

    workflow = load_bundle(Path(__file__).resolve().parents[1] / "workflows" / "internal-docs-qa").workflow
    prov = read_stack_export(json.loads(EXPORT.read_text()))
    for log_class in (derive.LogClass.AUDIT_LOG, derive.LogClass.RAW_INVOCATION_LOGS, derive.LogClass.CONTROL_PLANE):
        rule = derive.bucket_rules(workflow)[log_class]
        (bucket,) = prov.buckets_of(log_class, workflow.id)
        assert bucket.current_days == (rule.expiry.current_days,)
        assert bucket.noncurrent_days == ((rule.expiry.noncurrent_days,) if rule.versioned else ())
        assert (bucket.lock_mode, bucket.lock_days) == (
            (rule.object_lock_mode, rule.days) if rule.object_lock_mode else (None, None)
        )
        assert bucket.sse_algorithm == rule.sse_algorithm and bucket.posture == rule.posture
    assert [a.issuer for a in prov.authorizers] == [workflow.sso.idp.issuer]
    users = {ps.name: ps for ps in prov.permission_sets}[f"ai-{workflow.id}"]  # (and ai-<id>-ops)
    grants = json.loads(users.inline_policy)["Statement"][0]["Resource"]
    assert grants == list(derive.model_arns(workflow))


def test_the_report_judges_buckets_and_model_grants_by_the_provisioning_rules(project: Path) -> None:
    """The report has no copy of the infra rules: change the bundle and both move together."""
    from controller.core import provisioning as derive

    def longer_audit_retention(data: Any) -> None:
        data["logging"]["retention"]["postures"]["sec-log-audit"]["days"] = 731
        data["surface"]["endpoint"]["region"] = "us-east-1"

    edit_yaml(project / "workflow.yaml", longer_audit_retention)
    workflow = load_bundle(project).workflow
    rule = derive.bucket_rules(workflow)[derive.LogClass.AUDIT_LOG]
    assert rule.days == 731  # what the infra program would now provision
    report = build_report(
        Evidence(
            "internal-docs-qa",
            "2026-11-26T12:00:00+00:00",
            workflow=workflow,
            provisioned=read_stack_export(json.loads(EXPORT.read_text())),
        )
    )
    trail = report.items[2].rationale
    assert f"the bundle's posture {rule.posture} requires {rule.days} days" in trail and "control_plane" not in trail
    # the fixture grants eu-west-1 ARNs; the rules now name the us-east-1 ones, so item 1 fails naming them
    statements = [
        st
        for ps in read_stack_export(json.loads(EXPORT.read_text())).permission_sets
        for st in json.loads(ps.inline_policy)["Statement"]
    ]
    (granted,) = next(st["Resource"] for st in statements if any(a.startswith("bedrock:") for a in st["Action"]))
    assert granted not in derive.model_arns(workflow)
    sso = report.items[0]
    assert sso.status is Status.FAIL and "does not sanction" in sso.rationale and granted in sso.rationale

    # and a bucket is found by the tag the infra program writes
    def untag(r: dict[str, Any]) -> None:
        for side in ("inputs", "outputs"):
            (r.get(side) or {}).get("tags", {}).pop(derive.LOG_CLASS_TAG, None)

    untagged = _mutated(untag)
    report = build_report(
        Evidence(
            "internal-docs-qa", "2026-11-26T12:00:00+00:00", workflow=workflow, provisioned=read_stack_export(untagged)
        )
    )
    assert f"has no bucket tagged {derive.LOG_CLASS_TAG}=audit_log" in report.items[2].rationale


def test_pulumi_aws_6_type_tokens_are_read_too() -> None:
    def v6(r: dict[str, Any]) -> None:
        if r["type"] == "aws:s3/bucket:Bucket":
            r["type"] = "aws:s3/bucketV2:BucketV2"
        elif r["type"] == "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration":
            r["type"] = "aws:s3/bucketObjectLockConfigurationV2:BucketObjectLockConfigurationV2"

    assert read_stack_export(_mutated(v6)).buckets == read_stack_export(json.loads(EXPORT.read_text())).buckets


# --- counts, rendering ----------------------------------------------------------------------------


def test_request_counts_by_decision_equal_plain_python(project: Path, tmp_path: Path) -> None:
    from controller.evidence.request_log import detector_categories

    categories = {d: (c, a) for d, c, a in detector_categories(load_bundle(project).workflow)}
    records = generate_records(4242, categories, n=500)
    state = tmp_path / "state"
    write_log(state / "requests", records)
    doc = report_json(state, project)
    got = {(r["is_eval"], r["decision"]): r["records"] for r in doc["evidence"]["requests"]["decisions"]}
    assert got == dict(Counter((r["eval"], r["decision"]) for r in records))
    refused = {r["reason"]: r["requests"] for r in doc["evidence"]["requests"]["refusals"]}
    assert sum(refused.values()) == sum(1 for r in records if r["decision"] == "refused" and not r["eval"])
    # generated answers came from releases that are not stored: they cannot be shown sanctioned
    assert item(doc, 1)["status"] == "FAIL" and "cannot be verified" in item(doc, 1)["rationale"]


def test_html_is_one_self_contained_file(complete: tuple[Path, Path], tmp_path: Path) -> None:
    state, bundle = complete
    out = tmp_path / "report" / "audit.html"
    result = rollout(
        state,
        "audit",
        "report",
        "--workflow",
        str(bundle),
        "--stack-export",
        str(EXPORT),
        "--format",
        "html",
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.output
    assert f"audit report written to {out}: overall PASS" in result.stdout
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "<style>" in page
    for asset in ("<link", "<script", "<img", "url(", "@import", "<iframe", "<object"):
        assert asset not in page.lower(), asset
    assert not re.search(r"""(?:src|href)\s*=\s*["']?https?://""", page)
    for n in range(1, 6):
        assert f"<h2>{n}. " in page
    assert 'class="badge PASS"' in page


def test_markdown_has_the_definition_of_done_table(complete: tuple[Path, Path]) -> None:
    state, bundle = complete
    result = rollout(state, "audit", "report", "--workflow", str(bundle), "--stack-export", str(EXPORT))
    assert result.exit_code == 0
    md = result.stdout
    assert md.startswith("# Definition of Done: internal-docs-qa")
    assert "| # | Definition of Done | Verdict | Rationale |" in md
    for title in (
        "One workflow on sanctioned tools with SSO",
        "Data boundaries published and enforced",
        "An audit trail for prompts, context and outputs",
        "A documented review step and a kill switch",
        "A minimal eval harness used before changes",
    ):
        assert f"| {title} | **PASS** |" in md
    for section in (
        "### Eval results per release",
        "### Control-plane audit chain",
        "### Current flag document",
        "### Request log: records by decision",
        "### Provisioned buckets",
    ):
        assert section in md


def test_rendering_escapes_what_it_shows() -> None:
    report = build_report(
        Evidence("wf", "2026-11-26T12:00:00+00:00", bundle_problems=("<script>alert(1)</script> | x",))
    )
    html = render_html(report)
    assert "<script>" not in html and "&lt;script&gt;" in html


# --- the verdict rule (pure) ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("checks", "want"),
    [
        ((Status.PASS, Status.PASS), Status.PASS),
        ((Status.PASS, Status.UNKNOWN), Status.UNKNOWN),
        ((Status.UNKNOWN, Status.FAIL, Status.PASS), Status.FAIL),
        ((), Status.UNKNOWN),
    ],
)
def test_fail_beats_unknown_beats_pass(checks: tuple[Status, ...], want: Status) -> None:
    it = Item(1, "sso", "x", tuple(Check(s, f"source {i}", f"summary {i}") for i, s in enumerate(checks)))
    assert it.status is want
    deciding = [c for c in it.checks if c.status is want]
    if want is not Status.PASS and deciding:
        assert all(c.summary in it.rationale for c in deciding)
        assert not any(c.summary in it.rationale for c in it.checks if c.status is not want)


def test_fail_on_decides_the_exit_code_from_the_overall_verdict() -> None:
    def report(*statuses: Status) -> Report:
        items = tuple(Item(n, "k", "t", (Check(s, "bundle", "x"),)) for n, s in enumerate(statuses, 1))
        return Report("wf", "2026-11-26T12:00:00+00:00", items, {}, ())

    assert [report_exit_code(report(Status.PASS), f) for f in (None, "fail", "unknown")] == [0, 0, 0]
    assert [report_exit_code(report(Status.PASS, Status.UNKNOWN), f) for f in (None, "fail", "unknown")] == [0, 0, 1]
    assert [report_exit_code(report(Status.UNKNOWN, Status.FAIL), f) for f in (None, "fail", "unknown")] == [0, 1, 1]


def test_an_expired_exception_fails_item_1(project: Path, tmp_path: Path) -> None:
    def grant(data: Any) -> None:
        data["personal_accounts"]["exceptions"] = [
            {
                "subject": "old@gmail.com",
                "owner": OPERATOR,
                "reason": "migration",
                "expires": dt.date.today() - dt.timedelta(days=3),
            }
        ]

    edit_yaml(project / "workflow.yaml", grant)
    doc = report_json(tmp_path / "state", project)
    assert item(doc, 1)["status"] == "FAIL"
    assert "old@gmail.com (expired" in item(doc, 1)["rationale"]


def test_fail_on_turns_verdicts_into_an_exit_code_for_ci_gates(complete: tuple[Path, Path], tmp_path: Path) -> None:
    state, bundle = complete
    base = ["audit", "report", "--workflow", str(bundle), "--format", "md", "--out", str(tmp_path / "r.md")]
    assert rollout(state, *base).exit_code == 0  # default: a report, not a gate
    assert rollout(state, *base, "--fail-on", "fail").exit_code == 0  # UNKNOWN is not FAIL
    assert rollout(state, *base, "--fail-on", "unknown").exit_code == 1  # but it is not PASS either
    wrong = ["--stack-export", str(WRONG_RETENTION)]
    assert rollout(state, *base, *wrong, "--fail-on", "fail").exit_code == 1
    assert rollout(state, *base, "--fail-on", "maybe").exit_code == 2
