"""``rollout init``: a scaffold for every checklist kind that ``validate`` refuses until its
placeholders are filled, and accepts (beside the other bundles) once they are."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from controller.bundle.models import load_bundle
from controller.bundle.scaffold import UseCase
from controller.cli import app

runner = CliRunner()


def fill_in(bundle: Path) -> None:
    """What a person does: replace every placeholder with a real (here: invented) value."""
    for path in bundle.rglob("*"):
        if path.is_file():
            path.write_text(re.sub("fill-me", "filled", path.read_text(), flags=re.IGNORECASE))


@pytest.mark.parametrize("use_case", list(UseCase))
def test_init_output_validates_once_its_placeholders_are_filled(project: Path, use_case: UseCase) -> None:
    result = runner.invoke(app, ["init", "new-flow", "--use-case", use_case.value, "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["ok"] and doc["placeholders"] > 0 and "flags.flagd.json" in doc["files"]
    bundle = project.parent / "new-flow"
    refused = runner.invoke(app, ["validate", "-w", "new-flow", "--json"])
    assert refused.exit_code == 2
    problems = json.loads(refused.stdout)["error"]["problems"]
    assert problems and all("placeholder not filled in" in p["message"] and p["line"] for p in problems)
    assert {Path(p["file"]).name for p in problems} >= {"workflow.yaml", "golden.yaml", "answer.v1.md"}
    fill_in(bundle)
    ok = runner.invoke(app, ["validate", "--json"])  # both bundles, and the rules between them
    assert ok.exit_code == 0, ok.stdout
    loaded = load_bundle(bundle)
    assert loaded.workflow.use_case == use_case.value
    assert loaded.flags_path == (bundle / "flags.flagd.json").resolve()
    categories = {str(c) for case in loaded.golden.cases for c in case.expect.must_block}
    blocked = {str(f.category) for f in loaded.workflow.data_boundaries.forbidden if f.action == "block"}
    assert categories == blocked  # a golden case per blocked category
    redacted = [f for f in loaded.workflow.data_boundaries.forbidden if f.action == "redact"]
    assert all(any(c.id == f"redact-{f.category}" for c in loaded.golden.cases) for f in redacted)


def test_init_takes_answers_from_options(project: Path) -> None:
    args = ["init", "drafts", "--use-case", "support-reply-drafting", "--name", "Drafts",
            "--executive-name", "Ada Exec", "--executive-email", "ada@corp.example",
            "--owner-name", "Bo Ops", "--owner-email", "bo@corp.example",
            "--operators", "bo.ops,ci-release-bot", "--groups", "support-pilot,support"]
    assert runner.invoke(app, args).exit_code == 0
    text = (project.parent / "drafts" / "workflow.yaml").read_text()
    assert 'name: "Drafts"' in text and "ada@corp.example" in text and "operators: [bo.ops, ci-release-bot]" in text
    assert "requires_human_verification: true" in text


def test_init_refuses_bad_input_and_changes_nothing(project: Path) -> None:
    before = sorted(p.name for p in project.parent.iterdir())
    for args, words in (
        (["init", "Bad_Id", "--use-case", "pr-review"], "lowercase"),
        (["init", "internal-docs-qa", "--use-case", "pr-review"], "already exists"),
        (["init", "x"], "--use-case is required"),
    ):
        result = runner.invoke(app, [*args, "--json"])
        assert result.exit_code == 2, result.output
        assert words in json.loads(result.stdout)["error"]["message"]
    bad_kind = runner.invoke(app, ["init", "y", "--use-case", "chatbot", "--json"])
    assert bad_kind.exit_code == 2
    assert sorted(p.name for p in project.parent.iterdir()) == before
