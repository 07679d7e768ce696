"""A command interrupted at any write step leaves a state that is all-old or all-new, and the next
command repairs the rest.

The write steps of a mutating command are (c) the audit record (``Store.create``), (d) the state
(``Store.replace``) and (e) the flag document (``write_flag_bytes``). A clean run on a copy of
the same directory counts them and yields the expected new state (the clock is fixed, so it is
byte-for-byte deterministic). Then, for every step k, the command runs again on a fresh copy and
"dies" (an exception no handler catches, like a killed process) just before or just after step
k. Afterwards:

- the stored state is exactly the old or exactly the new bytes, and the flag file is exactly the
  old or the new document;
- ``reconcile`` repairs: a logged record is completed (roll forward: state == new), the flag
  file is re-rendered from the state, and ``audit verify`` passes with nothing ahead;
- running the interrupted command again ends in exactly the clean run's state and chain.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from controller.adapters import LocalStore
from controller.ports import Versioned
from controller.service.rollout import RolloutService, state_key

try:
    from tests.test_rollout import OP, OP2, Env, assert_consistent, digest, make_env
except ModuleNotFoundError:
    from test_rollout import OP, OP2, Env, assert_consistent, digest, make_env


class Crash(BaseException):
    """The process dies here: no ``except Exception`` (nor our fail-safe paths) may catch it."""


class Steps:
    def __init__(self, crash_at: int = 0, when: str = "before") -> None:
        self.count, self.crash_at, self.when, self.names = 0, crash_at, when, []

    def around(self, name: str, write: Callable[[], Any]) -> Any:
        self.count += 1
        self.names.append(name)
        if self.count == self.crash_at and self.when == "before":
            raise Crash(f"before {name}")
        result = write()
        if self.count == self.crash_at and self.when == "after":
            raise Crash(f"after {name}")
        return result


class CountingStore:
    def __init__(self, inner: Any, steps: Steps) -> None:
        self.inner, self.steps = inner, steps

    def get(self, key: str) -> Versioned | None:
        return self.inner.get(key)

    def list(self, prefix: str) -> list[str]:
        return self.inner.list(prefix)

    def describe(self) -> str:
        return self.inner.describe()

    def create(self, key: str, data: bytes) -> None:
        self.steps.around(f"create {key.split('/')[0]}", lambda: self.inner.create(key, data))

    def replace(self, key: str, data: bytes, *, expected: str | None) -> str:
        return self.steps.around(f"replace {key.split('/')[0]}", lambda: self.inner.replace(key, data, expected=expected))


def _base(root: Path, scenario: str) -> Env:
    """stable release 1; release 2 is the candidate at internal (baked) unless ``scenario`` says otherwise."""
    env = make_env(root)
    env.to_stable(1)
    if scenario != "promote-first":
        env.passing(2)
        assert env.service().promote(digest(2), "internal", operator=OP).changed
        env.clock.advance(hours=25)
        env.passing(2)
    return env


COMMANDS: dict[str, Callable[[RolloutService], Any]] = {
    "promote-first": lambda s: s.promote(digest(2), "internal", operator=OP),
    "promote": lambda s: s.promote(digest(2), "limited", operator=OP, approvers=[OP2]),
    "rollback": lambda s: s.rollback(operator=OP, reason="bad answers"),
    "kill": lambda s: s.kill(operator="oncall", reason="incident"),
    "release-kill": lambda s: s.release_kill(operator=OP, reason="resolved"),
}


def _prepare(tmp_path: Path, scenario: str) -> tuple[Env, Path]:
    base = _base(tmp_path / "base", scenario)
    if scenario == "promote-first":
        base.passing(2)
    if scenario == "release-kill":
        base.service().kill(operator="oncall", reason="incident")
    return base, tmp_path / "base"


def _copy(base: Env, src: Path, dest: Path) -> Env:
    shutil.copytree(src, dest)
    env = make_env(dest, LocalStore(dest / "store"))
    env.clock.now = base.clock.now
    return env


def _run(env: Env, scenario: str, steps: Steps, monkeypatch: pytest.MonkeyPatch) -> Any:
    import controller.adapters.flag_file as flag_files

    real = flag_files.write_flag_bytes
    with monkeypatch.context() as mp:
        mp.setattr(flag_files, "write_flag_bytes", lambda path, data, **kw: steps.around("write flags", lambda: real(path, data, **kw)))
        return COMMANDS[scenario](env.service(store=CountingStore(env.store, steps)))


def _state_bytes(env: Env) -> bytes | None:
    got = env.store.get(state_key(env.workflow.id))
    return None if got is None else got.data


@pytest.mark.parametrize("scenario", list(COMMANDS))
def test_interrupted_at_every_write_step(scenario: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base, src = _prepare(tmp_path, scenario)
    old_state, old_flags = _state_bytes(base), base.flag_bytes()

    clean = _copy(base, src, tmp_path / "clean")
    counted = Steps()
    outcome = _run(clean, scenario, counted, monkeypatch)
    assert outcome.changed, outcome
    assert counted.names == ["create audit", "replace state", "write flags"]
    new_state, new_flags = _state_bytes(clean), clean.flag_bytes()
    new_chain = len(clean.service().history())
    assert new_state != old_state and new_flags != old_flags

    for k in range(1, counted.count + 1):
        for when in ("before", "after"):
            env = _copy(base, src, tmp_path / f"k{k}-{when}")
            with pytest.raises(Crash):
                _run(env, scenario, Steps(k, when), monkeypatch)
            where = f"{scenario}: crash {when} step {k} ({counted.names[k - 1]})"
            assert _state_bytes(env) in (old_state, new_state), where
            assert env.flag_bytes() in (old_flags, new_flags), where
            logged = len(env.service().history()) == new_chain

            env.service().reconcile()  # the next command (cron) repairs
            assert _state_bytes(env) == (new_state if logged else old_state), where
            assert env.flag_bytes() == (new_flags if logged else old_flags), where
            assert_consistent(env)

            COMMANDS[scenario](env.service())  # and re-running the command converges
            assert _state_bytes(env) == new_state, where
            assert env.flag_bytes() == new_flags, where
            assert len(env.service().history()) == new_chain, where
            assert_consistent(env)
