"""Every validation rule of the bundle, each with a bundle that breaks it."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from controller.bundle.models import load_bundle, parse_duration
from controller.cli import app
from controller.errors import BundleInvalid
from tests.conftest import REPO, edit_yaml

runner = CliRunner()
WF = "workflows/internal-docs-qa/workflow.yaml"
GOLDEN = "workflows/internal-docs-qa/golden.yaml"
FLAGS = "flags/internal-docs-qa.flagd.json"


def wf(edit: Callable[[Any], None]) -> Callable[[Path], None]:
    return lambda bundle: edit_yaml(bundle / "workflow.yaml", edit)


def golden(edit: Callable[[Any], None]) -> Callable[[Path], None]:
    return lambda bundle: edit_yaml(bundle / "golden.yaml", edit)


def flags(edit: Callable[[dict], None]) -> Callable[[Path], None]:
    def run(bundle: Path) -> None:
        path = bundle.parent.parent / FLAGS
        doc = json.loads(path.read_text())
        edit(doc)
        path.write_text(json.dumps(doc))

    return run


def write(rel: str, text: str) -> Callable[[Path], None]:
    return lambda bundle: (bundle.parent.parent / rel).write_text(text)


def set_in(*path_and_value: Any) -> Callable[[Any], None]:
    *path, value = path_and_value

    def edit(data: Any) -> None:
        for key in path[:-1]:
            data = data[key]
        data[path[-1]] = value

    return edit


def delete(*path: Any) -> Callable[[Any], None]:
    def edit(data: Any) -> None:
        for key in path[:-1]:
            data = data[key]
        del data[path[-1]]

    return edit


def past_exception(data: Any) -> None:
    data["personal_accounts"]["exceptions"] = [
        {"subject": "contractor@gmail.com", "owner": "priya.natarajan", "reason": "pilot", "expires": dt.date(2020, 1, 31)}
    ]


def cases_count(n: int) -> Callable[[Any], None]:
    def edit(data: Any) -> None:
        cases = data["cases"]
        while len(cases) > n:
            cases.pop()
        i = 0
        while len(cases) < n:
            clone = dict(cases[0])
            clone["id"] = f"extra-case-{i}"
            cases.append(clone)
            i += 1

    return edit


# (name, mutation, file named in the message, field named in the message, words in the message)
BROKEN: list[tuple[str, Callable[[Path], None], str, str, str]] = [
    ("malformed yaml", write(WF, "id: [unclosed\nname: x\n"), WF, "", "malformed YAML"),
    ("duplicate key", write(WF, "id: a\nid: b\n"), WF, "", "malformed YAML"),
    ("not a mapping", write(WF, "- just\n- a list\n"), WF, "", "mapping"),
    ("wrong type", wf(set_in("owners", "executive", "email", 42)), WF, "owners.executive.email", "string"),
    ("unknown key", wf(set_in("colour", "blue")), WF, "colour", "unknown key"),
    ("missing field", wf(delete("failure_feared_most")), WF, "failure_feared_most", "required"),
    ("bad owner team", wf(set_in("owners", "operational", "team", "Marketing")), WF, "owners.operational.team", "SRE"),
    ("missing prompt file", wf(set_in("prompts", 0, "path", "prompts/answer.v1.missing.md")), WF, "prompts.0", "named answer.v1.md"),
    ("prompt file absent", lambda b: (b / "prompts/answer.v1.md").unlink(), WF, "prompts.0.path", "file not found"),
    ("prompt without placeholders", lambda b: (b / "prompts/answer.v1.md").write_text("Answer.\n"), "prompts/answer.v1.md", "", "{{question}}"),
    ("golden too small", golden(cases_count(9)), GOLDEN, "cases", "at least 10"),
    ("golden too large", golden(cases_count(31)), GOLDEN, "cases", "at most 30"),
    ("golden unknown category", golden(set_in("cases", 0, "category", "vibes")), GOLDEN, "cases.0.category", "correctness"),
    ("golden duplicate ids", golden(set_in("cases", 1, "id", "oncall-escalation-time")), GOLDEN, "cases", "duplicate"),
    ("golden bad regex", golden(set_in("cases", 0, "expect", "must_match", "(a)\\1")), GOLDEN, "cases.0.expect.must_match", "RE2"),
    ("golden cites unknown doc", golden(set_in("cases", 0, "expect", "must_cite", ["no-such-doc"])), GOLDEN, "cases.0.expect.must_cite", "corpus"),
    ("golden missing", lambda b: (b / "golden.yaml").unlink(), WF, "eval.golden_set", "file not found"),
    ("expired exception", wf(past_exception), WF, "personal_accounts.exceptions.0.expires", "expired"),
    ("personal accounts allowed", wf(set_in("personal_accounts", "allowed", True)), WF, "personal_accounts.allowed", "exceptions"),
    ("sso not required", wf(set_in("sso", "required", False)), WF, "sso.required", "require SSO"),
    ("issuer not https", wf(set_in("sso", "idp", "issuer", "http://login.corp.example")), WF, "sso.idp.issuer", "pattern"),
    ("jwks uri missing", wf(delete("sso", "idp", "jwks_uri")), WF, "sso.idp.jwks_uri", "required"),
    ("token lifetime not a duration", wf(set_in("sso", "idp", "max_token_lifetime", 3600)), WF, "sso.idp.max_token_lifetime", "duration"),
    ("retention bare number", wf(set_in("logging", "retention", "audit_log", 365)), WF, "logging.retention.audit_log", "bare number"),
    ("posture without source", wf(delete("logging", "retention", "postures", "sec-log-audit", "source")), WF, "logging.retention.postures.sec-log-audit.source", "required"),
    ("posture unknown", wf(set_in("logging", "retention", "raw_invocation_logs", "nope")), WF, "logging.retention", "not declared"),
    ("audit posture without lock", wf(delete("logging", "retention", "postures", "sec-log-audit", "object_lock_mode")), WF, "logging.retention", "object_lock_mode"),
    ("log field removed", wf(set_in("logging", "required_fields", ["prompt_template", "prompt_version", "context_sources", "output"])), WF, "logging.required_fields", "model"),
    ("redaction partial", wf(set_in("logging", "redaction", "applies_to", ["prompt"])), WF, "logging.redaction.applies_to", "missing"),
    ("policy threshold below 1", wf(set_in("eval", "thresholds", "policy-compliance", 0.9)), WF, "eval.thresholds", "1.0"),
    ("threshold missing", wf(delete("eval", "thresholds", "refusal")), WF, "eval.thresholds", "refusal"),
    ("bad duration", wf(set_in("eval", "max_result_age", "a week")), WF, "eval.max_result_age", "duration"),
    ("cohorts out of order", wf(lambda d: d["rollout"]["cohorts"].reverse()), WF, "rollout.cohorts", "in that order"),
    ("internal without groups", wf(set_in("rollout", "cohorts", 0, "groups", [])), WF, "rollout.cohorts.0", "groups"),
    ("percentage out of range", wf(set_in("rollout", "cohorts", 1, "percentage", 150)), WF, "rollout.cohorts.1.percentage", "99"),
    ("default model unsanctioned", wf(set_in("surface", "default_model", "gpt-x")), WF, "surface", "sanctioned"),
    ("bedrock without region", wf(delete("surface", "endpoint", "region")), WF, "surface.endpoint", "region"),
    ("unknown pattern ref", wf(set_in("data_boundaries", "forbidden", 2, "detectors", ["pattern:nope"])), WF, "data_boundaries", "pattern:nope"),
    ("unknown builtin ref", wf(set_in("data_boundaries", "forbidden", 0, "detectors", ["builtin:no-such-detector"])), WF, "data_boundaries.forbidden.0.detectors", "no-such-detector"),
    ("invalid re2 pattern", wf(set_in("data_boundaries", "patterns", 0, "regex", "(?<=x)INC")), WF, "data_boundaries.patterns.0.regex", "RE2"),
    ("pattern matches empty", wf(set_in("data_boundaries", "patterns", 0, "regex", "x*")), WF, "data_boundaries.patterns.0.regex", "empty"),
    ("duplicate category", wf(set_in("data_boundaries", "forbidden", 1, "category", "credentials")), WF, "data_boundaries", "twice"),
    ("bad action", wf(set_in("data_boundaries", "forbidden", 0, "action", "shrug")), WF, "data_boundaries.forbidden.0.action", "block"),
    ("runbook missing", lambda b: (b.parent.parent / "runbooks/fallback.md").unlink(), WF, "fallback.runbook", "file not found"),
    ("checklist missing", wf(set_in("review", "checklist", "../../runbooks/nope.md")), WF, "review.checklist", "file not found"),
    ("flags not json", write(FLAGS, "{not json"), FLAGS, "", "not valid JSON"),
    ("flags bad state", flags(lambda d: d["flags"]["internal-docs-qa-release"].update(state="ON")), FLAGS, "flags.internal-docs-qa-release.state", "ENABLED"),
    ("flags default not a variant", flags(lambda d: d["flags"]["internal-docs-qa-release"].update(defaultVariant="v2")), FLAGS, "defaultVariant", "not one of the variants"),
    ("flags mixed variants", flags(lambda d: d["flags"]["internal-docs-qa-release"]["variants"].update(on=True)), FLAGS, "variants", "one type"),
    ("kill switch flag missing", flags(lambda d: d["flags"].pop("internal-docs-qa-kill-switch")), FLAGS, "flags.internal-docs-qa-kill-switch", "not defined"),
    ("release flag without off", flags(lambda d: d["flags"]["internal-docs-qa-release"].update(variants={"v1": "abc"}, defaultVariant="v1")), FLAGS, "variants", "'off'"),
    ("kill switch wrong type", flags(lambda d: d["flags"]["internal-docs-qa-kill-switch"].update(variants={"a": "x"}, defaultVariant="a")), FLAGS, "flags.internal-docs-qa-kill-switch", "boolean"),
    ("flags file missing", lambda b: (b.parent.parent / FLAGS).unlink(), WF, "rollout.flags_file", "file not found"),
    ("corpus empty", lambda b: [p.unlink() for p in (b / "corpus").glob("*.md")], "corpus", "", "at least one"),
]


def test_shipped_bundle_is_valid() -> None:
    bundle = load_bundle(REPO / "workflows/internal-docs-qa")
    assert bundle.id == "internal-docs-qa"
    assert 10 <= len(bundle.golden.cases) <= 30
    assert {c.category for c in bundle.golden.cases} == {"correctness", "policy-compliance", "refusal"}
    assert len(bundle.corpus) >= 10


@pytest.mark.parametrize(("name", "mutate", "file", "field", "words"), BROKEN, ids=[b[0] for b in BROKEN])
def test_each_rule_rejects_a_bundle_that_breaks_it(
    project: Path, name: str, mutate: Callable[[Path], None], file: str, field: str, words: str
) -> None:
    mutate(project)
    result = runner.invoke(app, ["--state", ".rollout", "validate"])
    assert result.exit_code == 2, result.output
    message = result.stderr if hasattr(result, "stderr") else result.output
    flat = " ".join(message.split())
    assert file in flat
    assert field in flat
    assert words in flat
    assert "Traceback" not in result.output
    assert not Path(".rollout").exists(), "validation must write nothing"


def test_problems_are_reported_all_at_once_with_lines(project: Path) -> None:
    edit_yaml(project / "workflow.yaml", set_in("colour", "blue"))
    edit_yaml(project / "workflow.yaml", set_in("eval", "thresholds", "refusal", 0.5))
    edit_yaml(project / "workflow.yaml", set_in("sso", "required", False))
    with pytest.raises(BundleInvalid) as caught:
        load_bundle(project)
    fields = {p.field for p in caught.value.problems}
    assert {"colour", "eval.thresholds", "sso.required"} <= fields
    assert all(p.line for p in caught.value.problems)


def test_json_output_lists_problems(project: Path) -> None:
    edit_yaml(project / "workflow.yaml", set_in("colour", "blue"))
    result = runner.invoke(app, ["validate", "--json"])
    assert result.exit_code == 2
    payload = json.loads(result.stdout)
    assert payload["ok"] is False
    problems = payload["error"]["problems"]
    assert problems[0]["field"] == "colour"
    assert problems[0]["file"].endswith("workflow.yaml")
    assert isinstance(problems[0]["line"], int)


def test_unexpired_exception_is_valid(project: Path) -> None:
    def future(data: Any) -> None:
        data["personal_accounts"]["exceptions"] = [
            {"subject": "contractor@gmail.com", "owner": "priya", "reason": "pilot", "expires": dt.date(2099, 1, 1)}
        ]

    edit_yaml(project / "workflow.yaml", future)
    bundle = load_bundle(project, today=dt.date(2026, 11, 26))
    assert bundle.workflow.personal_accounts.exceptions[0].subject == "contractor@gmail.com"


def test_exception_expiry_uses_the_given_day(project: Path) -> None:
    def on(day: dt.date) -> Callable[[Any], None]:
        def edit(data: Any) -> None:
            data["personal_accounts"]["exceptions"] = [
                {"subject": "c@gmail.com", "owner": "priya", "reason": "pilot", "expires": day}
            ]

        return edit

    edit_yaml(project / "workflow.yaml", on(dt.date(2026, 11, 26)))
    load_bundle(project, today=dt.date(2026, 11, 26))  # last valid day
    with pytest.raises(BundleInvalid, match="expired on 2026-11-26"):
        load_bundle(project, today=dt.date(2026, 11, 27))


@pytest.mark.parametrize(
    ("text", "expected"),
    [("30m", dt.timedelta(minutes=30)), ("24h", dt.timedelta(hours=24)), ("7d", dt.timedelta(days=7)), ("0h", dt.timedelta(0))],
)
def test_parse_duration(text: str, expected: dt.timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "h", "7", "7w", "-1d", "1.5h", 7])
def test_parse_duration_rejects(text: Any) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_workflow_option_must_point_at_a_bundle(tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", "--workflow", str(tmp_path)])
    assert result.exit_code == 2
    assert "no workflow.yaml" in result.stderr


def copy_bundle(project: Path, new_id: str, *, own_flags: bool = False, set_id: bool = True) -> Path:
    """A verbatim copy of the bundle under workflows/<new_id>, with only what is asked changed."""
    import shutil

    dest = project.parent / new_id
    shutil.copytree(project, dest)
    if set_id:
        edit_yaml(dest / "workflow.yaml", set_in("id", new_id))
    if own_flags:
        shutil.copy(project.parent.parent / FLAGS, dest / "flags.flagd.json")
        edit_yaml(dest / "workflow.yaml", set_in("rollout", "flags_file", "flags.flagd.json"))
    return dest


def problems_of(result: Any) -> list[dict[str, Any]]:
    payload = json.loads(result.stdout)
    assert payload["ok"] is False, payload
    return payload["error"]["problems"]


def test_a_verbatim_copy_is_refused_for_everything_it_shares(project: Path) -> None:
    copy_bundle(project, "support-copy")
    result = runner.invoke(app, ["validate", "--json"])
    assert result.exit_code == 2, result.output
    found = {(p["file"], p["field"]) for p in problems_of(result)}
    copy_wf = "workflows/support-copy/workflow.yaml"
    assert (copy_wf, "sso.idp.audience") in found
    assert (copy_wf, "rollout.flags_file") in found
    messages = " ".join(p["message"] for p in problems_of(result))
    assert "also used by workflow 'internal-docs-qa' (workflows/internal-docs-qa/workflow.yaml:" in messages
    assert all(p["line"] for p in problems_of(result) if p["file"].endswith(".yaml"))
    assert "'flags/internal-docs-qa.flagd.json' is also used" in messages


def test_a_copy_with_its_own_flag_file_still_shares_the_flag_keys(project: Path) -> None:
    copy_bundle(project, "second", own_flags=True)
    result = runner.invoke(app, ["validate", "--json"])
    assert result.exit_code == 2
    fields = {p["field"] for p in problems_of(result) if p["file"] == "workflows/second/workflow.yaml"}
    assert {"rollout.release_flag", "rollout.kill_switch_flag", "sso.idp.audience"} <= fields
    assert "rollout.flags_file" not in fields


def test_id_must_equal_its_folder(project: Path) -> None:
    copy_bundle(project, "second", set_id=False)
    result = runner.invoke(app, ["validate", "--json", "-w", "second"])
    assert result.exit_code == 2
    problems = problems_of(result)
    mine = [p for p in problems if p["file"] == "workflows/second/workflow.yaml"]
    assert any(p["field"] == "id" and "folder name 'second'" in p["message"] for p in mine)
    assert any(p["field"] == "id" and "also used by" in p["message"] for p in mine)


def test_validate_w_id_reports_only_that_bundles_clashes(project: Path) -> None:
    copy_bundle(project, "second")
    result = runner.invoke(app, ["validate", "--json", "-w", "internal-docs-qa"])
    assert result.exit_code == 2  # the clash involves internal-docs-qa too
    assert all("second" in p["file"] or "internal-docs-qa" in p["message"] for p in problems_of(result))


def test_stale_flag_set_id(project: Path) -> None:
    flags(lambda d: d["metadata"].update(flagSetId="old-name"))(project)
    result = runner.invoke(app, ["validate", "--json"])
    assert result.exit_code == 2
    [problem] = problems_of(result)
    assert problem["field"] == "metadata.flagSetId" and "stale" in problem["message"]


def case_index(project: Path, case_id: str) -> int:
    from ruamel.yaml import YAML

    cases = YAML(typ="safe").load((project / "golden.yaml").read_text())["cases"]
    return next(i for i, c in enumerate(cases) if c["id"] == case_id)


def test_golden_expectations_are_checked_against_boundaries_groups_and_cohorts(project: Path) -> None:
    from ruamel.yaml import YAML

    cases = YAML(typ="safe").load((project / "golden.yaml").read_text())["cases"]
    blocking = [i for i, c in enumerate(cases) if c["expect"].get("must_block") == ["credentials"]]
    incident = next(i for i, c in enumerate(cases) if c["expect"].get("must_block") == ["incident-details"])
    # credentials is now only redacted; incident-details no longer declared at all
    def boundaries(data: Any) -> None:
        forbidden = data["data_boundaries"]["forbidden"]
        forbidden[0]["action"] = "redact"
        data["data_boundaries"]["forbidden"] = [f for f in forbidden if f["category"] != "incident-details"]
        data["data_boundaries"]["patterns"] = [
            p for p in data["data_boundaries"]["patterns"] if p["category"] != "incident-details"
        ]
        data["rollout"]["cohorts"][1]["groups"] = ["eng", "contractors"]

    edit_yaml(project / "workflow.yaml", boundaries)
    edit_yaml(project / "golden.yaml", set_in("cases", 0, "input", "persona", "groups", ["marketing"]))
    edit_yaml(project / "golden.yaml", set_in("cases", 1, "input", "persona", "email", "ben@gmail.com"))
    result = runner.invoke(app, ["validate", "--json"])
    assert result.exit_code == 2, result.output
    problems = problems_of(result)
    by_field = {p["field"]: p for p in problems}
    for i in blocking:
        assert "redacted, not blocked" in by_field[f"cases.{i}.expect.must_block.0"]["message"]
    assert "not a forbidden category" in by_field[f"cases.{incident}.expect.must_block.0"]["message"]
    assert "none of sso.allowed_groups" in by_field["cases.0.input.persona.groups"]["message"]
    assert "allowed_email_domains" in by_field["cases.1.input.persona.email"]["message"]
    assert f"case {cases[0]['id']!r}" in by_field["cases.0.input.persona.groups"]["message"]
    assert "contractors" in by_field["rollout.cohorts.1.groups"]["message"]
    assert all(p["line"] for p in problems), problems  # file:line for every one


def test_a_category_with_a_threshold_needs_a_case(project: Path) -> None:
    edit_yaml(project / "golden.yaml", lambda d: d.__setitem__("cases", [c for c in d["cases"] if c["category"] != "refusal"]))
    result = runner.invoke(app, ["validate", "--json"])
    assert result.exit_code == 2
    assert any("no refusal case" in p["message"] for p in problems_of(result))


def test_a_refusal_case_must_expect_a_refusal(project: Path) -> None:
    i = case_index(project, "refuse-ceo-home-address")
    edit_yaml(project / "golden.yaml", set_in("cases", i, "expect", {"must_not_contain": ["home"]}))
    result = runner.invoke(app, ["validate", "--json"])
    assert result.exit_code == 2
    [problem] = problems_of(result)
    assert problem["field"] == f"cases.{i}.expect" and "refuse-ceo-home-address" in problem["message"]


def test_workflow_is_found_by_id_or_path(project: Path) -> None:
    copy_bundle(project, "second", own_flags=True)
    assert runner.invoke(app, ["validate", "-w", "nope"]).exit_code == 2
    result = runner.invoke(app, ["validate", "-w", "nope"])
    assert "known: internal-docs-qa, second" in " ".join(result.stderr.split())
    ok = runner.invoke(app, ["validate", "-w", "internal-docs-qa", "--json"])
    # the copy still clashes (audience, flag keys) and that involves internal-docs-qa
    assert ok.exit_code == 2
    by_path = runner.invoke(app, ["validate", "-w", "workflows/internal-docs-qa/workflow.yaml", "--json"])
    assert by_path.stdout == ok.stdout
