"""`rollout redact`: the bundle's boundaries applied to text from a file or stdin."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from controller.cli import app

runner = CliRunner()
FAKE_KEY_ID = "AKIA" + "FAKE2TESTKEY7DOC"
EMAIL = "jordan.example@customer.example"


def test_redacts_customer_data_from_stdin(project: Path) -> None:
    result = runner.invoke(app, ["redact", "--json"], input=f"Customer {EMAIL} reports INC-free trouble.\n")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert EMAIL not in result.stdout
    assert payload["blocked"] is False
    assert "[REDACTED:" in payload["text"]
    finding = payload["findings"][0]
    assert set(finding) >= {"type", "category", "start", "end"}
    assert finding["category"] == "customer-data"
    assert "value" not in finding


def test_blocked_categories_exit_3_and_never_echo_the_value(project: Path, tmp_path: Path) -> None:
    source = tmp_path / "prompt.txt"
    source.write_text(f"deploy with {FAKE_KEY_ID} please\n")
    result = runner.invoke(app, ["redact", str(source)])
    assert result.exit_code == 3
    assert FAKE_KEY_ID not in result.output
    assert "BLOCKED" in result.stderr


def test_binary_input_is_handled(project: Path) -> None:
    result = runner.invoke(app, ["redact", "--json"], input=b"\xff\xfe\x00bad utf8 \xc3(" + EMAIL.encode())
    assert result.exit_code == 0, result.output
    assert EMAIL not in result.stdout


def test_unreadable_file_is_a_clear_error(project: Path) -> None:
    result = runner.invoke(app, ["redact", "does-not-exist.txt"])
    assert result.exit_code == 2
    assert "does-not-exist.txt" in result.stderr
    assert "Traceback" not in result.output
