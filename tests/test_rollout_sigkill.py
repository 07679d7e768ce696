"""``tests/test_rollout_crash.py`` with real deaths: promote, rollback and kill are SIGKILLed at
every write step, in a child process, and the next command repairs.

Each command runs in a child (``python -m tests.rollout_sigkill_child``) on its own copy of a
prepared directory (``store/``: a LocalStore, ``flags/``: the live flag file), with the clock
fixed so a clean run is byte-for-byte deterministic. The write steps are found the way the
in-process crash tests find them: (c) ``Store.create`` of the audit record, (d) ``Store.replace``
of the state, (e) ``write_flag_document``. A clean child run counts them and yields the expected
new state, chain and flag file. Then, for every step k and every kill point, a child SIGKILLs
itself there (no handler, ``finally`` or ``atexit`` runs; the kernel drops its flocks):

- ``before`` / ``after`` the k-th write call (for (e) both are inside the flag lock);
- ``pre-publish`` / ``post-publish``: inside the k-th write, around the ``os.link`` /
  ``os.replace`` that publishes it (for (d) both are inside the store's CAS flock).

Afterwards, in the parent:

- the state and the chain are exactly the old or exactly the clean run's new bytes (which one
  follows from the writes completed), and so is the flag file;
- no lock is left held: both flocks (the store's ``.lock`` and the flag lock) are free to a
  non-blocking ``flock``, and the next commands run on a store with ``lock_timeout=0`` (a held
  lock would raise ``Conflict`` at once instead of waiting);
- ``verify()`` and ``rollout audit verify`` pass; a chain one record "ahead" of the state is
  accepted here only because the next command completes it;
- the next command repairs: ``reconcile`` (for the ``before``/``after`` kills) or the same
  command re-run directly (for the publish kills) leaves the flag file equal, byte for byte, to
  the rendering of the state, with nothing ahead; re-running the command then converges on the
  clean run's state, chain and flag file exactly.

``test_killed_again_while_repairing`` samples a double crash (the full matrix would double the
runtime): after a kill that left the chain ahead, the repairing ``reconcile`` is killed inside
its roll-forward CAS (before and after publishing) and inside the flag lock, and a third
command still repairs everything.

Known and tolerated: a kill inside ``write_flag_document`` before its rename leaves its dot-named
temp file (``.<name>.flagd.json.*.tmp``) in ``flags/`` and no later command removes it (the
LocalStore, by contrast, sweeps its dead writers' temp files, which is checked). Right after the
kill the test expects exactly that one stray file after exactly that kill, and none after any other.

Runtime: the step matrix is complete (not sampled): 3 scenarios x (1 clean + 3 steps x 4 kill
points) children, plus 3 x (1 + 1 + 3) for the double crash, about 0.4 s each: about 22 s
measured on 2 cores.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from controller.adapters import LocalStore
from controller.core import audit
from controller.service.rollout import kill_marker_path, render

try:
    from tests.test_rollout import Env, make_env
    from tests.test_rollout_crash import COMMANDS, _prepare, _state_bytes
except ModuleNotFoundError:
    from test_rollout import Env, make_env
    from test_rollout_crash import COMMANDS, _prepare, _state_bytes

REPO = Path(__file__).resolve().parent.parent
BUNDLE = REPO / "workflows" / "internal-docs-qa"
SCENARIOS = ["promote", "rollback", "kill"]
MODES = ["before", "pre-publish", "post-publish", "after"]
STEPS = ["create audit", "replace state", "write flags"]
runner = CliRunner()


# --- helpers ---------------------------------------------------------------------------------------


def run_child(root: Path, command: str, clock: dt.datetime, kill_at: int = 0, mode: str = "before") -> Any:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    args = [str(root), command, clock.isoformat(), str(kill_at), mode]
    # The timeout only turns a hang (a lock never released) into a failure; no timing is asserted.
    return subprocess.run(
        [sys.executable, "-m", "tests.rollout_sigkill_child", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        timeout=120,
    )


def open_env(root: Path, clock: dt.datetime) -> Env:
    """The next command's view: a fresh LocalStore (it sweeps dead writers' temp files) that
    fails at once with ``Conflict`` if its lock is held rather than waiting for it."""
    env = make_env(root, LocalStore(root / "store", lock_timeout=0))
    env.clock.now = clock
    return env


def chain(env: Env) -> list[bytes]:
    keys = env.store.list(audit.chain_prefix(env.workflow.id))
    return [env.store.get(k).data for k in keys]


def flag_lock(env: Env) -> Path:
    return env.flags.with_name(f".{env.flags.name}.lock")


def assert_unlocked(path: Path, where: str) -> None:
    fd = os.open(path, os.O_RDWR)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pytest.fail(f"{where}: {path.name} is still locked after the process died")
    finally:
        os.close(fd)


def rendered(env: Env) -> bytes:
    """Exactly what ``write_flag_document`` writes for the state's rendering."""
    svc = env.service()
    doc = render(env.workflow, svc.load(repair=False).state, killed=svc.kill_pending() is not None)
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode("utf-8")


def cli_audit_verify(root: Path) -> dict[str, Any]:
    from controller import cli

    store = str(root / "store")
    args = ["--state", str(root), "--store", store, "audit", "verify", "--workflow", str(BUNDLE), "--json"]
    result = runner.invoke(cli.app, args)
    doc = json.loads(result.stdout)
    doc["exit_code"] = result.exit_code
    return doc


def assert_verifies(env: Env, where: str, *, ahead: int = 0) -> None:
    result, problems = env.service().verify()
    assert result.ok and result.ahead == ahead and problems == [], (where, result, problems)
    doc = cli_audit_verify(env.root)
    assert doc["exit_code"] == 0 and doc["ok"] and doc["ahead"] == ahead, (where, doc)
    assert doc["status"] == ("ahead" if ahead else "ok"), (where, doc)


def assert_repaired(env: Env, where: str) -> None:
    """Nothing ahead, the chain verifies, the flag file is the state's rendering byte for byte."""
    assert_verifies(env, where)
    assert env.flag_bytes() == rendered(env), where
    assert env.service().flags_in_sync(env.state()), where


def flag_leftovers(env: Env) -> list[str]:
    keep = {env.flags.name, flag_lock(env).name}
    return sorted(p.name for p in env.flags.parent.iterdir() if p.name not in keep)


@dataclasses.dataclass(frozen=True)
class Snapshot:
    state: bytes | None
    chain: list[bytes]
    flags: bytes

    @classmethod
    def of(cls, env: Env) -> Snapshot:
        return cls(_state_bytes(env), chain(env), env.flag_bytes())


@dataclasses.dataclass(frozen=True)
class Prepared:
    scenario: str
    src: Path
    clock: dt.datetime
    old: Snapshot
    new: Snapshot
    clean_run: dict[str, Any]

    def copy(self, dest: Path) -> Path:
        shutil.copytree(self.src, dest)
        return dest


@pytest.fixture(scope="module", params=SCENARIOS)
def prepared(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Prepared:
    scenario = request.param
    tmp = tmp_path_factory.mktemp(scenario)
    base, src = _prepare(tmp, scenario)
    old = Snapshot.of(base)
    clean = tmp / "clean"
    shutil.copytree(src, clean)
    proc = run_child(clean, scenario, base.clock.now)
    assert proc.returncode == 0, proc.stderr.decode()
    new = Snapshot.of(open_env(clean, base.clock.now))
    return Prepared(scenario, src, base.clock.now, old, new, json.loads(proc.stdout))


def expect(p: Prepared, writes_done: int) -> Snapshot:
    """What a command that completed ``writes_done`` of its write steps leaves behind."""
    return Snapshot(
        p.new.state if writes_done >= 2 else p.old.state,
        p.new.chain if writes_done >= 1 else p.old.chain,
        p.new.flags if writes_done >= 3 else p.old.flags,
    )


def check_after_kill(p: Prepared, root: Path, proc: Any, writes_done: int, where: str, *, stranded: bool) -> Env:
    assert proc.returncode == -signal.SIGKILL, (where, proc.returncode, proc.stderr.decode())
    probe = make_env(root, LocalStore(root / "store"))
    assert_unlocked(probe.store.root / ".lock", where)
    assert_unlocked(flag_lock(probe), where)
    env = open_env(root, p.clock)
    assert list((env.store.root / ".tmp").iterdir()) == [], where  # the dead writer's temp files are swept
    assert not kill_marker_path(env.flags).exists(), where  # no fail-safe ran: the process just died
    assert Snapshot.of(env) == expect(p, writes_done), where  # all-old or all-new, per object
    # A kill inside the flag write before its rename strands its temp file (see the docstring).
    leftovers = flag_leftovers(env)
    if stranded:
        assert len(leftovers) == 1 and leftovers[0].startswith(f".{env.flags.name}.") and leftovers[0].endswith(".tmp")
    else:
        assert leftovers == [], (where, leftovers)
    # Logged but not applied: verify reports the record ahead (ok); the next command completes it.
    assert_verifies(env, where, ahead=1 if writes_done == 1 else 0)
    return env


# --- tests -----------------------------------------------------------------------------------------


def test_the_child_takes_the_three_write_steps(prepared: Prepared) -> None:
    assert prepared.clean_run == {
        "steps": STEPS,
        "published": ["create audit: link", "replace state: replace", "write flags: replace"],
    }
    old, new = prepared.old, prepared.new
    assert new.state != old.state and new.flags != old.flags
    assert new.chain[: len(old.chain)] == old.chain and len(new.chain) == len(old.chain) + 1


@pytest.mark.parametrize("mode", MODES)
def test_sigkill_at_every_write_step(prepared: Prepared, mode: str, tmp_path: Path) -> None:
    p = prepared
    for k, step in enumerate(STEPS, start=1):
        where = f"{p.scenario}: SIGKILL {mode} step {k} ({step})"
        root = p.copy(tmp_path / f"k{k}")
        proc = run_child(root, p.scenario, p.clock, k, mode)
        writes_done = k if mode in ("post-publish", "after") else k - 1
        stranded = step == "write flags" and mode == "pre-publish"
        env = check_after_kill(p, root, proc, writes_done, where, stranded=stranded)

        if mode in ("before", "after"):
            env.service().reconcile()  # the cron repairs; a logged record rolls forward
            assert Snapshot.of(env) == (p.new if writes_done >= 1 else p.old), where
        else:
            COMMANDS[p.scenario](env.service())  # the next command repairs (and completes) by itself
            assert Snapshot.of(env) == p.new, where
        assert_repaired(env, where)

        COMMANDS[p.scenario](env.service())  # re-running converges on the clean run exactly
        assert Snapshot.of(env) == p.new, where
        assert_repaired(env, where)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_killed_again_while_repairing(scenario: str, tmp_path: Path) -> None:
    """Sampled: a chain left ahead, then the repairing ``reconcile`` dies too."""
    base, src = _prepare(tmp_path, scenario)
    clock = base.clock.now
    ahead = tmp_path / "ahead"
    shutil.copytree(src, ahead)
    proc = run_child(ahead, scenario, clock, 1, "after")
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()

    clean = tmp_path / "clean-repair"
    shutil.copytree(ahead, clean)
    proc = run_child(clean, "reconcile", clock)
    assert proc.returncode == 0, proc.stderr.decode()
    assert json.loads(proc.stdout)["steps"] == ["replace state", "write flags"]  # roll forward, re-render
    repaired = Snapshot.of(open_env(clean, clock))
    old = Snapshot.of(open_env(ahead, clock))
    assert repaired.chain == old.chain and repaired.state != old.state and repaired.flags != old.flags

    # (step, mode, repair steps completed): inside the store's CAS flock, and inside the flag lock
    for k, mode, done in ((1, "pre-publish", 0), (1, "post-publish", 1), (2, "before", 1)):
        where = f"{scenario}: reconcile SIGKILLed {mode} its step {k}"
        root = tmp_path / f"k{k}-{mode}"
        shutil.copytree(ahead, root)
        proc = run_child(root, "reconcile", clock, k, mode)
        assert proc.returncode == -signal.SIGKILL, (where, proc.stderr.decode())
        assert_unlocked(root / "store" / ".lock", where)
        assert_unlocked(flag_lock(make_env(root)), where)
        env = open_env(root, clock)
        assert Snapshot.of(env) == Snapshot(repaired.state if done else old.state, old.chain, old.flags), where
        assert_verifies(env, where, ahead=0 if done else 1)

        env.service().reconcile()
        assert Snapshot.of(env) == repaired, where
        assert_repaired(env, where)
