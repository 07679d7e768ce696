"""`rollout serve` as an operator runs it: a real process on 127.0.0.1, stopped by SIGINT."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from typer.testing import CliRunner

from controller.cli import app

runner = CliRunner()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_rollout_serve_answers_over_http(project: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    env = {**os.environ, "ROLLOUT_STATE": str(state), "ROLLOUT_MODEL_ADAPTER": "local"}
    for args in (["release", "create"], ["eval", "run"]):
        result = runner.invoke(app, args, env=env)
        assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["promote", "--cohort", "internal", "--operator", "priya.natarajan", "--reason", "t"], env=env)
    assert result.exit_code == 0, result.output
    token = runner.invoke(app, ["dev-token", "--email", "alice.moreau@corp.example", "--groups", "eng,ai-pilot"], env=env)
    assert token.exit_code == 0, token.output

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "controller.cli", "serve", "--port", str(port)],
        cwd=project.parent.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as resp:
                    assert resp.status == 200
                    break
            except (urllib.error.URLError, ConnectionError):
                assert proc.poll() is None, proc.stderr.read().decode()
                assert time.monotonic() < deadline, "rollout serve did not come up"
                time.sleep(0.1)
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/ask",
            data=json.dumps({"question": "How quickly must the primary on-call acknowledge a page?"}).encode(),
            headers={"Authorization": f"Bearer {token.stdout.strip()}", "Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            body = json.loads(resp.read())
        assert body["decision"] == "answered"
        assert body["citations"] == ["oncall-escalation"]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)
    assert proc.returncode == 0
    records = [json.loads(line) for p in (state / "requests").glob("*.jsonl") for line in p.read_text().splitlines()]
    assert [r["decision"] for r in records if not r["eval"]] == ["answered"]
