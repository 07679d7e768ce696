"""Run a FlagdFileSource as another (non-root) user and print one decision per line.

Used by tests/test_flag_source.py: root reads every file whatever its mode, so a gateway that
runs as another user is the only honest way to see ``chmod 000`` take effect. Everything is
imported while still root (the interpreter lives under /root), then the process drops to the
uid given and builds the source there.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from openfeature.contrib.provider.flagd import FlagdProvider  # noqa: F401 - imported before the drop
from openfeature.contrib.provider.flagd.config import ResolverType  # noqa: F401

from controller.adapters.flagd_source import FlagdFileSource


def main() -> None:
    path, uid, poll_ms = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
    source = FlagdFileSource(path, release_flag=sys.argv[4], kill_switch_flag=sys.argv[5], poll_ms=poll_ms)
    stop = time.monotonic() + 20  # a test that waits for a change that never comes fails, not hangs
    while time.monotonic() < stop:
        d = source.decide("u-1", "ana@corp.example", ("ai-pilot",))
        print(json.dumps({"t": time.monotonic(), "uid": os.getuid(), "killed": d.killed, "reason": d.kill_reason,
                          "release": d.release}), flush=True)
        time.sleep(0.01)


if __name__ == "__main__":
    main()
