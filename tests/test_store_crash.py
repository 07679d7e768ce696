"""LocalStore stays consistent when a write is interrupted at any step.

The steps are not guessed: a clean run records every filesystem call a write makes (open,
write, fsync, mkdir, link, replace, unlink, flock), then each test interrupts the write at
step k, for every k:

- softly, in-process: the k-th call raises (OSError EIO, or an arbitrary exception standing in
  for a bug or KeyboardInterrupt), and the store's own cleanup runs;
- hard, in a child process: the k-th call SIGKILLs the process, so no cleanup runs at all.

Afterwards the key holds exactly the old or exactly the new bytes, ``list`` shows exactly the
keys that should exist, no temp file is visible, the lock is free, and (after a hard crash)
the next LocalStore opened on the directory removes the dead writer's temp files.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from controller.adapters import LocalStore
from controller.errors import BackendUnavailable

REPO = Path(__file__).resolve().parent.parent
TRACED = [(os, "open"), (os, "write"), (os, "fsync"), (os, "mkdir"), (os, "link"),
          (os, "replace"), (os, "unlink"), (fcntl, "flock")]  # fmt: skip

OLD, NEW = b'{"v":"old"}' * 50, b'{"v":"new"}' * 60


class InjectedCrash(Exception):
    """Stands in for any non-OSError escaping mid-write (a bug, a KeyboardInterrupt)."""


@contextlib.contextmanager
def traced(on_call: Callable[[int, str], None]) -> Iterator[None]:
    """Patch the traced calls so ``on_call(step, name)`` runs before each (step from 1)."""
    originals = [(mod, name, getattr(mod, name)) for mod, name in TRACED]
    step = 0

    def wrap(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            nonlocal step
            step += 1
            on_call(step, name)
            return fn(*args, **kwargs)

        return wrapper

    for mod, name, fn in originals:
        setattr(mod, name, wrap(name, fn))
    try:
        yield
    finally:
        for mod, name, fn in originals:
            setattr(mod, name, fn)


# Each scenario: prepare the store; the write to interrupt (given the key's version read
# beforehand, "create"/"none" when there is none); the key and its content before the write.
SCENARIOS: dict[str, dict[str, Any]] = {
    "create-new-nested": {
        "setup": lambda s: s.create("keep", b"k"),
        "op": lambda s, _: s.create("a/b/c.json", NEW),
        "key": "a/b/c.json",
        "old": None,
        "child_expected": "create",
    },
    "replace-cas": {
        "setup": lambda s: s.create("a/state.json", OLD),
        "op": lambda s, version: s.replace("a/state.json", NEW, expected=version),
        "key": "a/state.json",
        "old": OLD,
        "child_expected": None,  # the version read before the write
    },
    "replace-expected-none": {
        "setup": lambda s: s.create("keep", b"k"),
        "op": lambda s, _: s.replace("x/new.json", NEW, expected=None),
        "key": "x/new.json",
        "old": None,
        "child_expected": "none",
    },
}


def _prepared(root: Path, scenario: dict[str, Any]) -> tuple[LocalStore, str | None]:
    store = LocalStore(root)
    scenario["setup"](store)
    got = store.get(scenario["key"])
    return store, None if got is None else got.version


def _record_steps(root: Path, scenario: dict[str, Any]) -> list[str]:
    store, version = _prepared(root, scenario)
    calls: list[str] = []
    with traced(lambda step, name: calls.append(name)):
        scenario["op"](store, version)
    return calls


def _assert_consistent(root: Path, scenario: dict[str, Any]) -> bytes | None:
    store = LocalStore(root)
    got = store.get(scenario["key"])
    data = None if got is None else got.data
    assert data in (scenario["old"], NEW), "partial or foreign content"
    expected_keys = {"keep"} if scenario["old"] is None else set()
    if data is not None:
        expected_keys.add(scenario["key"])
    assert set(store.list("")) == expected_keys
    # nothing but objects, the lock and the temp dir; directories may be left empty
    visible = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    assert visible - {".lock"} - {v for v in visible if v.startswith(".tmp/")} == expected_keys
    # and the store still works: the lock is free and CAS proceeds from what is there
    version = store.replace(scenario["key"], b"after", expected=None if got is None else got.version)
    assert store.get(scenario["key"]).version == version  # type: ignore[union-attr]
    return data


@pytest.fixture(scope="module")
def steps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    return {
        name: _record_steps(tmp_path_factory.mktemp(name), scenario)
        for name, scenario in SCENARIOS.items()
    }


def test_the_traced_steps_cover_the_write_protocol(steps: dict[str, list[str]]) -> None:
    assert steps["create-new-nested"].count("mkdir") == 2
    for name in ("open", "write", "fsync", "link", "unlink"):
        assert name in steps["create-new-nested"]
    for name in ("flock", "replace"):
        assert name in steps["replace-cas"]
    assert "flock" not in steps["replace-expected-none"]  # create-only needs no lock


@pytest.mark.parametrize("scenario_name", list(SCENARIOS))
@pytest.mark.parametrize("exc_kind", ["oserror", "other"])
def test_soft_failure_at_every_step(
    scenario_name: str, exc_kind: str, steps: dict[str, list[str]], tmp_path: Path
) -> None:
    scenario = SCENARIOS[scenario_name]
    outcomes = []
    for k, step_name in enumerate(steps[scenario_name], start=1):
        root = tmp_path / f"k{k}"
        store, version = _prepared(root, scenario)

        def fail_at_k(step: int, name: str, k: int = k) -> None:
            if step == k:
                if exc_kind == "oserror":
                    raise OSError(errno.EIO, f"injected at step {k} ({name})")
                raise InjectedCrash(f"step {k} ({name})")

        raised: BaseException | None = None
        with traced(fail_at_k):
            try:
                scenario["op"](store, version)
            except (BackendUnavailable, InjectedCrash) as exc:
                raised = exc
        if exc_kind == "oserror" and raised is not None:
            assert isinstance(raised, BackendUnavailable)
        # our own temp file is gone unless the failure hit its removal
        leftovers = list((root / ".tmp").iterdir())
        assert not leftovers or step_name == "unlink", leftovers
        data = _assert_consistent(root, scenario)
        outcomes.append((k, step_name, "new" if data == NEW else "old", raised is not None))
    # sanity: early failures keep the old state, and a failure after publication keeps the new
    assert outcomes[0][2] == "old" and outcomes[0][3]
    assert any(o[2] == "new" for o in outcomes[:-1])


CHILD = textwrap.dedent(
    """
    import fcntl, os, signal, sys
    from controller.adapters import LocalStore
    root, key, expected, kill_at, new_hex = sys.argv[1:6]
    store = LocalStore(root)
    traced = [(os, "open"), (os, "write"), (os, "fsync"), (os, "mkdir"), (os, "link"),
              (os, "replace"), (os, "unlink"), (fcntl, "flock")]
    step = 0
    def wrap(fn):
        def wrapper(*a, **kw):
            global step
            step += 1
            if step == int(kill_at):
                os.kill(os.getpid(), signal.SIGKILL)
            return fn(*a, **kw)
        return wrapper
    for mod, name in traced:
        setattr(mod, name, wrap(getattr(mod, name)))
    data = bytes.fromhex(new_hex)
    if expected == "create":
        store.create(key, data)
    else:
        store.replace(key, data, expected=None if expected == "none" else expected)
    sys.exit(3)  # the kill should have come first
    """
)


@pytest.mark.parametrize("scenario_name", list(SCENARIOS))
def test_hard_kill_at_every_step(
    scenario_name: str, steps: dict[str, list[str]], tmp_path: Path
) -> None:
    scenario = SCENARIOS[scenario_name]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for k, step_name in enumerate(steps[scenario_name], start=1):
        root = tmp_path / f"k{k}"
        _, version = _prepared(root, scenario)
        expected = scenario["child_expected"] or version
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, str(root), scenario["key"], expected, str(k), NEW.hex()],
            env=env,
            capture_output=True,
            timeout=60,
        )
        assert proc.returncode == -signal.SIGKILL, (k, step_name, proc.stderr.decode())
        # the next store opened on the directory sweeps the dead writer's temp files
        _assert_consistent(root, scenario)
        assert list((root / ".tmp").iterdir()) == [], (k, step_name)


def test_temp_files_of_live_writers_survive_the_sweep(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    from controller.adapters import local

    mine = tmp_path / ".tmp" / f"{os.getpid()}-abcd-{local._HOST}.tmp"
    dead = tmp_path / ".tmp" / f"999999999-abcd-{local._HOST}.tmp"
    foreign = tmp_path / ".tmp" / "123-abcd-otherhost.tmp"
    for path in (mine, dead, foreign):
        path.write_bytes(b"partial")
    LocalStore(tmp_path)
    assert mine.exists() and foreign.exists() and not dead.exists()
    old = os.path.getmtime(foreign) - 2 * 3600
    os.utime(foreign, (old, old))
    LocalStore(tmp_path)
    assert not foreign.exists()
    assert store.list("") == []


def test_readers_never_see_partial_content_during_concurrent_replaces(tmp_path: Path) -> None:
    import threading

    store = LocalStore(tmp_path)
    blobs = [bytes([i]) * (256 * 1024) for i in range(4)]
    store.create("big", blobs[0])
    stop = threading.Event()
    seen: set[bytes] = set()
    bad: list[int] = []

    def reader() -> None:
        while not stop.is_set():
            got = store.get("big")
            assert got is not None
            if got.data not in blobs:
                bad.append(len(got.data))
            seen.add(got.data[:1])

    t = threading.Thread(target=reader)
    t.start()
    try:
        for i in range(1, 40):
            current = store.get("big")
            store.replace("big", blobs[i % 4], expected=current.version)  # type: ignore[union-attr]
    finally:
        stop.set()
        t.join()
    assert bad == []
    assert len(seen) > 1
