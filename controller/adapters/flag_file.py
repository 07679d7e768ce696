"""The local flag document as a ``FlagSink``: the file the gateway's flagd provider reads.

Writers are serialised by an flock on ``.<name>.lock`` beside the document (a dead holder's lock
is released by the kernel; a live but stuck one times out with ``Conflict`` instead of blocking a
kill forever). Writes are atomic (``controller.adapters.atomic``) with a mode the gateway's user
can read (``mode``, default 0640: owner and group; run the gateway in the controller's group).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from controller.adapters.atomic import STALE_TEMP_SECONDS, sweep_stale_temps, write_atomic
from controller.core.flags import encode_flag_document
from controller.errors import BackendUnavailable, Conflict

__all__ = [
    "DEFAULT_FLAG_FILE_MODE",
    "FLAG_LOCK_TIMEOUT_S",
    "STALE_TEMP_SECONDS",
    "FileFlagSink",
    "write_flag_bytes",
    "write_flag_document",
]

DEFAULT_FLAG_FILE_MODE = 0o640
FLAG_LOCK_TIMEOUT_S = 30.0  # how long a command waits for another command's flag write


def write_flag_bytes(path: Path, data: bytes, *, mode: int = DEFAULT_FLAG_FILE_MODE) -> None:
    """Every write of a flag document or kill marker: atomic, durable, readable by the gateway."""
    sweep_stale_temps(path)
    write_atomic(path, data, mode=mode)


def write_flag_document(path: Path, doc: Mapping[str, Any], *, mode: int = DEFAULT_FLAG_FILE_MODE) -> bytes:
    data = encode_flag_document(doc)
    write_flag_bytes(Path(path), data, mode=mode)
    return data


class FileFlagSink:
    def __init__(self, path: Path, *, mode: int = DEFAULT_FLAG_FILE_MODE, lock_timeout_s: float | None = None):
        self.path = Path(path)
        self.mode = mode
        self.lock_timeout_s = lock_timeout_s
        self._held = threading.local()  # lock() is reentrant within a thread: swap() inside lock()

    def describe(self) -> str:
        return str(self.path)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        if getattr(self._held, "depth", 0):
            self._held.depth += 1
            try:
                yield
            finally:
                self._held.depth -= 1
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path.with_name(f".{self.path.name}.lock"), os.O_RDWR | os.O_CREAT, 0o644)
        timeout = FLAG_LOCK_TIMEOUT_S if self.lock_timeout_s is None else self.lock_timeout_s
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise Conflict(
                            f"the flag document {self.path} has been locked by another command for "
                            f"{timeout:.0f}s; retry, or find the stuck process."
                        ) from None
                    time.sleep(0.01)
            self._held.depth = 1
            try:
                yield
            finally:
                self._held.depth = 0
        finally:
            os.close(fd)

    def read(self) -> bytes | None:
        try:
            return self.path.read_bytes()
        except FileNotFoundError:
            return None

    def write(self, data: bytes) -> None:
        """Write unconditionally (the caller holds ``lock``)."""
        try:
            write_flag_bytes(self.path, data, mode=self.mode)
        except OSError as exc:
            raise BackendUnavailable(f"cannot write the flag document {self.path}: {exc.strerror or exc}.") from exc

    def swap(self, decide: Callable[[bytes | None], bytes | None]) -> bool:
        with self.lock():
            data = decide(self.read())
            if data is None:
                return False
            self.write(data)
            return True
