"""The gateway's file flag source fails closed on every fault of the document, within one poll:
unreadable (``chmod 000`` with the gateway running as another user), removed, replaced with its
mtime preserved (``cp -p``), unparsable; and it recovers when the document is good again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import controller.adapters.flagd_source as flagd_source
from controller.adapters.flag_file import FileFlagSink, write_flag_document
from controller.adapters.flagd_source import FlagdFileSource
from controller.bundle.models import Workflow
from controller.bundle.yamlio import load_yaml
from controller.core.flags import encode_flag_document, render_flag_document

REPO = Path(__file__).resolve().parent.parent
WF = Workflow.model_validate(load_yaml(REPO / "workflows/internal-docs-qa/workflow.yaml").data)
DIGEST = "a" * 64
RELEASED = render_flag_document(WF, {"internal": DIGEST}, killed=False)
KILLED = render_flag_document(WF, {"internal": DIGEST}, killed=True, engaged_at="2026-12-01T10:00:00Z")
PILOT = ("u-1", "ana@corp.example", ("ai-pilot",))
POLL_MS = 100


def served(source: FlagdFileSource) -> str | None:
    return source.decide(*PILOT).release


def wait_for(predicate, timeout: float = 5.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return False


@pytest.fixture
def doc(tmp_path: Path) -> Path:
    path = tmp_path / "flags" / "wf.flagd.json"
    write_flag_document(path, RELEASED)
    return path


@pytest.fixture
def source(doc: Path) -> Iterator[FlagdFileSource]:
    src = FlagdFileSource(
        doc, release_flag=WF.rollout.release_flag, kill_switch_flag=WF.rollout.kill_switch_flag, poll_ms=POLL_MS
    )
    yield src
    src.close()


def test_a_good_document_is_served(source: FlagdFileSource) -> None:
    assert source.ready()
    assert served(source) == DIGEST


def test_a_removed_document_is_the_fallback_at_the_next_poll(source: FlagdFileSource, doc: Path) -> None:
    doc.unlink()
    source.poll()  # one poll, whenever the watcher's comes
    decision = source.decide(*PILOT)
    assert decision.killed and "missing" in decision.kill_reason and decision.release is None
    write_flag_document(doc, RELEASED)
    source.poll()
    assert wait_for(lambda: served(source) == DIGEST), "a restored document is served again"


def test_a_replacement_with_the_mtime_preserved_takes_effect_at_the_next_poll(
    source: FlagdFileSource, doc: Path
) -> None:
    before = doc.stat()
    # cp -p / rsync -t / a backup restore: new content, the old mtime
    doc.write_bytes(encode_flag_document(KILLED))
    os.utime(doc, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert doc.stat().st_mtime_ns == before.st_mtime_ns
    source.poll()
    assert source.decide(*PILOT).killed, "closed from the poll that saw the new content on"
    assert wait_for(lambda: "engaged" in source.decide(*PILOT).kill_reason), "then killed by the new document"
    assert source.decide(*PILOT).release is None


def test_an_unreadable_document_is_the_fallback_at_the_next_poll(
    source: FlagdFileSource, doc: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The read error a gateway running as another user gets after ``chmod 000`` (root reads
    anything, so here the read itself is made to fail; the next test does it for real)."""

    def denied(path: Path) -> bytes:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(flagd_source, "_read_document", denied)
    source.poll()
    decision = source.decide(*PILOT)
    assert decision.killed and "unreadable (Permission denied)" in decision.kill_reason
    monkeypatch.undo()
    source.poll()
    assert served(source) == DIGEST, "the same content readable again: served again, nothing to reload"


def test_an_unparsable_document_is_the_fallback(source: FlagdFileSource, doc: Path) -> None:
    doc.write_bytes(b'{"flags": ')
    source.poll()
    assert wait_for(lambda: not source.ready())
    assert source.decide(*PILOT).killed
    write_flag_document(doc, RELEASED)
    assert wait_for(lambda: served(source) == DIGEST)


def test_the_watcher_polls_by_itself(source: FlagdFileSource, doc: Path) -> None:
    doc.unlink()
    assert wait_for(lambda: source.decide(*PILOT).killed, timeout=POLL_MS / 1000 * 3)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run the gateway as another user")
def test_chmod_000_as_another_user_turns_answers_into_the_fallback_within_one_poll() -> None:
    """The issue's reproduction: the gateway runs as ``nobody`` in the controller's group; the
    document is 0640 root:nogroup (as the controller writes it with ``ROLLOUT_FLAG_FILE_GROUP``);
    ``chmod 000``."""
    poll_ms = 200
    base = Path(tempfile.mkdtemp(prefix="flag-source-uid-"))
    try:
        os.chmod(base, 0o755)
        doc = base / "flags" / "wf.flagd.json"
        # the controller writes it as it is configured to: 0640, in the gateway's group
        FileFlagSink(doc, group=65534).write(encode_flag_document(RELEASED))
        assert doc.stat().st_gid == 65534 and doc.stat().st_mode & 0o777 == 0o640
        proc = subprocess.Popen(
            [sys.executable, str(REPO / "tests" / "flag_source_as_user.py"), str(doc), "65534", str(poll_ms),
             WF.rollout.release_flag, WF.rollout.kill_switch_flag],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        def next_line() -> dict:  # type: ignore[type-arg]
            assert proc.stdout is not None
            text = proc.stdout.readline()
            assert text, "the gateway process stopped before the change took effect"
            return json.loads(text)

        try:
            assert proc.stdout is not None
            first = json.loads(proc.stdout.readline() or "{}")
            assert first.get("uid") == 65534, proc.stderr.read() if proc.stderr else ""
            line = first
            while line["release"] != DIGEST:  # the gateway serves the release as that user
                line = next_line()
            os.chmod(doc, 0)
            changed = time.monotonic()
            while not line["killed"]:
                line = next_line()
            assert "Permission denied" in line["reason"]
            # within one poll (plus the subprocess's print interval and a loaded machine's slack)
            assert line["t"] - changed < poll_ms / 1000 + 0.3
            os.chmod(doc, 0o640)
            while line["release"] != DIGEST:
                line = next_line()
        finally:
            proc.kill()
            proc.wait()
    finally:
        subprocess.run(["rm", "-rf", str(base)], check=False)


def test_a_gateway_started_before_its_document_exists_serves_once_it_appears(tmp_path: Path) -> None:
    doc = tmp_path / "later.flagd.json"
    src = FlagdFileSource(
        doc, release_flag=WF.rollout.release_flag, kill_switch_flag=WF.rollout.kill_switch_flag, poll_ms=POLL_MS
    )
    try:
        assert src.decide(*PILOT).killed and not src.ready()
        write_flag_document(doc, RELEASED)
        assert wait_for(lambda: served(src) == DIGEST)
        assert src.ready()
    finally:
        src.close()
    assert not src._dir.exists(), "the private snapshot goes with the source"


def test_a_snapshot_that_cannot_be_staged_is_the_fallback_and_is_retried(
    source: FlagdFileSource, doc: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(data: bytes) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(source, "_write_snapshot", full)
    doc.write_bytes(encode_flag_document(KILLED))
    source.poll()
    decision = source.decide(*PILOT)
    assert decision.killed and "No space left on device" in decision.kill_reason
    monkeypatch.undo()
    source.poll()
    assert wait_for(lambda: "engaged" in source.decide(*PILOT).kill_reason), "staged at the next poll"
