"""Child entry point of ``tests/test_rollout_sigkill.py`` (not a test module).

    python -m tests.rollout_sigkill_child ROOT COMMAND CLOCK KILL_AT MODE

Runs one rollout command on the directory ``ROOT`` (laid out by ``tests.test_rollout.make_env``:
``store/`` and ``flags/``) with the clock fixed at ``CLOCK`` (ISO 8601), counting the write steps
the way ``tests/test_rollout_crash.py`` does: (c) ``Store.create`` of the audit record, (d)
``Store.replace`` of the state, (e) ``write_flag_bytes``. At write step ``KILL_AT`` the process
SIGKILLs itself, so no ``except``, ``finally`` or ``atexit`` runs, and the kernel drops whatever
flocks it held. ``MODE`` says where in that step:

- ``before``: just before the step's write call (for the flag write: inside the flag lock);
- ``pre-publish``: inside the write, just before the ``os.link``/``os.replace`` that publishes
  it (temp file complete; for a CAS replace of the state, the store's flock is held);
- ``post-publish``: just after that call returns (new object visible; directory not yet fsynced,
  store flock for a CAS replace still held);
- ``after``: just after the write call returns (for the flag write: still inside the flag lock).

``KILL_AT`` 0 runs to the end and prints ``{"steps": [...], "published": [...]}`` as JSON: the
write steps taken and, per step, the call that published it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import controller.adapters.flag_file as flag_files
import controller.service.rollout as rollout
from controller.adapters import LocalStore
from tests.test_rollout import make_env
from tests.test_rollout_crash import COMMANDS, CountingStore

MODES = ("before", "pre-publish", "post-publish", "after")
CHILD_COMMANDS: dict[str, Callable[[rollout.RolloutService], Any]] = {
    **COMMANDS,
    "reconcile": lambda s: s.reconcile(),
}


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class KillingSteps:
    """``tests.test_rollout_crash.Steps`` with a real death instead of a raised ``Crash``."""

    def __init__(self, kill_at: int, mode: str) -> None:
        if mode not in MODES:
            raise SystemExit(f"unknown mode {mode!r}")
        self.kill_at, self.mode = kill_at, mode
        self.count, self.names, self.published = 0, [], []
        self.step: str | None = None  # the write step in progress
        self.here = False  # ... and it is the one to die in
        self.step_published = False

    def around(self, name: str, write: Callable[[], Any]) -> Any:
        self.count += 1
        self.names.append(name)
        here = self.count == self.kill_at
        if here and self.mode == "before":
            die()
        self.step, self.here, self.step_published = name, here, False
        try:
            result = write()
        finally:
            self.step, self.here = None, False
        if here and self.mode == "after":
            die()
        return result

    def publishing(self, call: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Wrap ``os.link``/``os.replace``: the first such call of a write step publishes it."""

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            first = self.step is not None and not self.step_published
            if first and self.here and self.mode == "pre-publish":
                die()
            result = fn(*args, **kwargs)
            if first:
                self.step_published = True
                self.published.append(f"{self.step}: {call}")
                if self.here and self.mode == "post-publish":
                    die()
            return result

        return wrapper


def main(argv: list[str]) -> int:
    root, command, clock, kill_at, mode = argv
    env = make_env(Path(root), LocalStore(Path(root) / "store"))
    env.clock.now = dt.datetime.fromisoformat(clock)
    steps = KillingSteps(int(kill_at), mode)
    os.link = steps.publishing("link", os.link)  # type: ignore[assignment]
    os.replace = steps.publishing("replace", os.replace)  # type: ignore[assignment]
    real = flag_files.write_flag_bytes
    flag_files.write_flag_bytes = lambda path, data, **kw: steps.around("write flags", lambda: real(path, data, **kw))  # type: ignore[assignment]
    CHILD_COMMANDS[command](env.service(store=CountingStore(env.store, steps)))
    print(json.dumps({"steps": steps.names, "published": steps.published}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
