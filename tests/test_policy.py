"""`rollout policy`: the published one-pager is rendered from the bundle, not written by hand."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from controller.cli import app
from tests.conftest import edit_yaml

runner = CliRunner()


def test_policy_markdown_names_every_checklist_item(project: Path) -> None:
    result = runner.invoke(app, ["policy"])
    assert result.exit_code == 0, result.output
    text = result.stdout
    for heading in (
        "# AI use policy: Internal documentation Q&A",
        "## Approved tools",
        "## Never paste these (forbidden inputs)",
        "## What you may ask (allowed inputs)",
        "## Check before you act (human verification)",
        "## What is logged, and for how long",
        "## When it is unavailable",
    ):
        assert heading in text
    assert "Personal accounts are not allowed" in text
    assert "Credentials and private keys** (blocked)" in text
    assert "Customer data** (redacted)" in text
    assert "400 days, posture `sec-log-audit`" in text
    assert "ISS-07" in text


def test_policy_follows_the_bundle(project: Path) -> None:
    def change(data: dict) -> None:
        data["data_boundaries"]["forbidden"][1]["action"] = "block"
        data["logging"]["retention"]["postures"]["sec-log-audit"]["days"] = 730

    edit_yaml(project / "workflow.yaml", change)
    result = runner.invoke(app, ["policy", "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    enforcement = {f["category"]: f["enforcement"] for f in doc["forbidden_inputs"]}
    assert enforcement["customer-data"] == "block"
    assert doc["logging"]["retention"]["audit_log"]["days"] == 730


def test_policy_rejects_unknown_format(project: Path) -> None:
    result = runner.invoke(app, ["policy", "--format", "pdf"])
    assert result.exit_code == 2
    assert "--format" in result.stderr
