"""The local flag document as a ``FlagSink``: the file the gateway's flagd provider reads.

Writers are serialised by an flock on ``.<name>.lock`` beside the document (a dead holder's lock
is released by the kernel; a live but stuck one times out with ``Conflict`` instead of blocking a
kill forever). Writes are atomic (``controller.adapters.atomic``) with a mode the gateway's user
can read: ``mode`` (env ``ROLLOUT_FLAG_FILE_MODE``, octal, default 0640: owner and group) and
``group`` (env ``ROLLOUT_FLAG_FILE_GROUP``, a group name or gid; default: the controller's own).
The group is given to the flag directory with the setgid bit, so every file created in it (each
temp file before its rename, the kill marker) is born in that group: there is no moment where
the gateway, running as another user in that group, finds a document it cannot read.
"""

from __future__ import annotations

import contextlib
import fcntl
import grp
import os
import stat
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from controller.adapters.atomic import STALE_TEMP_SECONDS, sweep_stale_temps, write_atomic
from controller.core.flags import encode_flag_document
from controller.errors import BackendUnavailable, Conflict, InvalidInput

__all__ = [
    "DEFAULT_FLAG_FILE_MODE",
    "FLAG_LOCK_TIMEOUT_S",
    "STALE_TEMP_SECONDS",
    "FileFlagSink",
    "flag_file_group",
    "flag_file_mode",
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


def flag_file_mode(env: Mapping[str, str] = os.environ) -> int:
    """The flag document's mode: ``ROLLOUT_FLAG_FILE_MODE`` (octal, e.g. 0640) or the default."""
    text = env.get("ROLLOUT_FLAG_FILE_MODE")
    if not text:
        return DEFAULT_FLAG_FILE_MODE
    try:
        mode = int(text, 8)
    except ValueError:
        mode = -1
    if not 0 <= mode <= 0o777 or not mode & 0o400:
        raise InvalidInput(
            f"ROLLOUT_FLAG_FILE_MODE={text!r}: expected an octal file mode the owner can read, such as 0640."
        )
    return mode


def flag_file_group(env: Mapping[str, str] = os.environ) -> int | None:
    """The gid of ``ROLLOUT_FLAG_FILE_GROUP`` (a group name or number), or None (leave it)."""
    text = env.get("ROLLOUT_FLAG_FILE_GROUP")
    if not text:
        return None
    if text.isdigit():
        return int(text)
    try:
        return grp.getgrnam(text).gr_gid
    except KeyError:
        raise InvalidInput(f"ROLLOUT_FLAG_FILE_GROUP={text!r}: no such group on this machine.") from None


def _give_directory_to(directory: Path, gid: int) -> None:
    """Group ``gid`` and the setgid bit on ``directory``: what is created in it is born in ``gid``."""
    st = directory.stat()
    if st.st_gid != gid:
        os.chown(directory, -1, gid)
    if not st.st_mode & stat.S_ISGID or st.st_gid != gid:
        os.chmod(directory, stat.S_IMODE(st.st_mode) | stat.S_ISGID)


class FileFlagSink:
    def __init__(
        self,
        path: Path,
        *,
        mode: int | None = None,
        group: int | None = None,
        lock_timeout_s: float | None = None,
    ):
        self.path = Path(path)
        # A malformed ROLLOUT_FLAG_FILE_MODE / _GROUP refuses every write but ``engage``: the kill
        # switch must not wait on configuration (``RolloutService.kill``), everything else stops.
        self.config_problem: InvalidInput | None = None
        try:
            self.mode = flag_file_mode() if mode is None else mode
        except InvalidInput as exc:
            self.mode, self.config_problem = DEFAULT_FLAG_FILE_MODE, exc
        try:
            self.group = flag_file_group() if group is None else group
        except InvalidInput as exc:
            self.group, self.config_problem = None, self.config_problem or exc
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
        """Write unconditionally (the caller holds ``lock``); refused while the mode or group
        configuration is malformed."""
        if self.config_problem is not None:
            raise self.config_problem
        self._write(data)

    def engage(self, data: bytes) -> None:
        """Write a kill document even when the mode or group configuration is malformed (with the
        default mode, readable by the controller's group): the kill switch works when all else fails."""
        self._write(data)

    def _write(self, data: bytes) -> None:
        try:
            if self.group is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                _give_directory_to(self.path.parent, self.group)
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
