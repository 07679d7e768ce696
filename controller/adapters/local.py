"""``LocalStore``: the embedded default Store, a directory (``.rollout/`` unless configured).

Layout under ``root``::

    <key path>          one file per object; the key's segments are directories
    .lock               the compare-and-swap lock (``fcntl.flock``)
    .tmp/               temp files being written: ``<pid>-<random>-<host>.tmp``

How each guarantee is made:

- No partial reads. Every write goes to a temp file in ``.tmp/`` that is written in full and
  fsynced, and only then linked or renamed onto the key's path (both atomic within one
  filesystem); the key's directory is fsynced afterwards so the new name survives a power cut.
- Create-only. ``os.link(temp, path)`` fails with EEXIST when the key exists, atomically and
  without a lock, so two creators can never both win. (On a filesystem without hard links we
  fall back to "check, then rename" under the lock.)
- Compare-and-swap. ``replace(..., expected=v)`` takes an exclusive ``flock`` on ``.lock`` only
  around "read current, compare, rename". The lock is an ``flock`` rather than an O_EXCL lock
  file on purpose: the kernel drops it when its holder dies, so there is no stale lock to detect
  or break, and no pid/host/time bookkeeping to get wrong. Waiting is bounded (``lock_timeout``);
  a lock held longer surfaces as ``Conflict``. ``expected=None`` needs no lock (it is a create).
  Objects are never deleted, so a link-based create cannot race a locked replace.
- Version = sha256 of the content: self-validating (nothing stored beside the object that could
  disagree with it after a crash). A write of identical bytes keeps the version; that is fine
  for CAS, which guards content.
- Crash at any step leaves the old or the new object, never a mix: before the link/rename only
  ``.tmp/`` changed, after it the new object is complete. Temp files are invisible (``.``-names
  are never keys) and are removed by their writer on any error, or, after a hard crash, by the
  next ``LocalStore`` opened on the directory once their writing process is gone.

Limits: one host (``flock`` is not reliable over NFS; use S3 at scale); and because keys are
paths, ``a`` and ``a/b`` cannot both exist (the second raises ``InvalidInput``).
Permission errors and other I/O failures raise ``BackendUnavailable``.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import random
import re
import secrets
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from controller.adapters.atomic import fsync_dir
from controller.core.keys import validate_key, validate_prefix
from controller.errors import BackendUnavailable, Conflict, InvalidInput
from controller.ports import AlreadyExists, Versioned

__all__ = ["LocalStore"]

_LOCK_NAME = ".lock"
_TMP_DIR = ".tmp"
# Temp files of a writer that is gone but can't be proven dead (other host, unparsable name)
# are removed once they are this old.
_ORPHAN_AGE_S = 3600.0
_HOST = re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname())[:64] or "host"
# link(2) reports a filesystem without hard links with one of these.
_NO_HARDLINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS}


def _version(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class LocalStore:
    def __init__(self, root: Path | str, *, lock_timeout: float = 30.0) -> None:
        root = Path(root).expanduser().absolute()
        self._lock_timeout = lock_timeout
        with self._io_errors("open", ""):
            try:
                root.mkdir(parents=True, exist_ok=True)
                (root / _TMP_DIR).mkdir(exist_ok=True)
            except (FileExistsError, NotADirectoryError) as exc:
                raise BackendUnavailable(f"Store root {root} is not a directory: {exc}.") from exc
            os.close(os.open(root / _LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666))
            self.root = root.resolve()
            self._sweep_orphans()

    # -- Store -------------------------------------------------------------------------------

    def get(self, key: str) -> Versioned | None:
        path = self._path(key)
        with self._io_errors("read", key):
            try:
                data = path.read_bytes()
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                return None
        return Versioned(data, _version(data))

    def create(self, key: str, data: bytes) -> None:
        path = self._path(key)
        with self._io_errors("create", key), self._temp(data) as tmp:
            self._ensure_parent(key, path)
            if not self._link_new(tmp, path):
                raise AlreadyExists(f"{self.describe()}: {key!r} already exists.")

    def replace(self, key: str, data: bytes, *, expected: str | None) -> str:
        path = self._path(key)
        new_version = _version(data)
        with self._io_errors("replace", key), self._temp(data) as tmp:
            self._ensure_parent(key, path)
            if expected is None:
                if not self._link_new(tmp, path):
                    raise Conflict(_moved(self.describe(), key, None, "present"))
                return new_version
            with self._locked():
                try:
                    found: str | None = _version(path.read_bytes())
                except FileNotFoundError:
                    found = None
                if found != expected:
                    raise Conflict(_moved(self.describe(), key, expected, found))
                os.replace(tmp, path)
                fsync_dir(path.parent)
        return new_version

    def list(self, prefix: str) -> list[str]:
        validate_prefix(prefix)
        base = prefix.rpartition("/")[0]
        start = self.root.joinpath(*base.split("/")) if base else self.root
        keys: list[str] = []

        def onerror(exc: OSError) -> None:
            if not isinstance(exc, FileNotFoundError | NotADirectoryError):
                raise exc

        with self._io_errors("list", prefix):
            for dirpath, dirnames, filenames in os.walk(start, onerror=onerror):
                rel = Path(dirpath).relative_to(self.root).as_posix()
                rel = "" if rel == "." else rel + "/"
                # prune dot-dirs (store internals) and subtrees that cannot match the prefix
                dirnames[:] = [
                    d
                    for d in dirnames
                    if not d.startswith(".")
                    and ((rel + d + "/").startswith(prefix) or prefix.startswith(rel + d + "/"))
                ]
                keys.extend(
                    rel + f
                    for f in filenames
                    if not f.startswith(".") and (rel + f).startswith(prefix)
                )
        return sorted(keys)

    def describe(self) -> str:
        return f"local:{self.root}"

    # -- internals ---------------------------------------------------------------------------

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*validate_key(key).split("/"))

    @contextlib.contextmanager
    def _io_errors(self, op: str, key: str) -> Iterator[None]:
        """Anything the OS refuses is the backend being unavailable, not a bug of ours."""
        try:
            yield
        except OSError as exc:
            where = getattr(self, "root", None) or "local store"
            raise BackendUnavailable(
                f"Local store {where}: cannot {op} {key!r}: {exc.strerror or exc}."
            ) from exc

    @contextlib.contextmanager
    def _temp(self, data: bytes) -> Iterator[Path]:
        """A fully written, fsynced temp file; removed on exit whatever happened (after a
        successful rename it no longer exists and the removal is a no-op)."""
        tmp = self.root / _TMP_DIR / f"{os.getpid()}-{secrets.token_hex(8)}-{_HOST}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
            try:
                view = memoryview(bytes(data))
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            yield tmp
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)

    def _link_new(self, tmp: Path, path: Path) -> bool:
        """Publish ``tmp`` at ``path`` only if ``path`` does not exist. False when it does."""
        try:
            os.link(tmp, path)
        except FileExistsError:
            if path.is_dir():
                raise InvalidInput(
                    f"{self.describe()}: key {path.relative_to(self.root).as_posix()!r} is a "
                    "directory of other keys in a local store."
                ) from None
            return False
        except OSError as exc:
            if exc.errno not in _NO_HARDLINKS:
                raise
            with self._locked():
                if os.path.lexists(path):
                    return False
                os.replace(tmp, path)
        fsync_dir(path.parent)
        return True

    def _ensure_parent(self, key: str, path: Path) -> None:
        """mkdir -p the key's directory, fsyncing each new entry's parent for durability."""
        missing: list[Path] = []
        parent = path.parent
        while parent != self.root and not parent.is_dir():
            missing.append(parent)
            parent = parent.parent
        for directory in reversed(missing):
            try:
                directory.mkdir(exist_ok=True)
            except (FileExistsError, NotADirectoryError):
                raise InvalidInput(
                    f"{self.describe()}: cannot store {key!r}: "
                    f"{directory.relative_to(self.root).as_posix()!r} is an object, "
                    "not a directory, in a local store."
                ) from None
            fsync_dir(directory.parent)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self.root / _LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            deadline = time.monotonic() + self._lock_timeout
            delay = 0.001
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise Conflict(
                            f"{self.describe()}: the store lock has been held for over "
                            f"{self._lock_timeout:g}s by another process; retry later."
                        ) from None
                    time.sleep(delay * (0.5 + random.random()))
                    delay = min(delay * 2, 0.05)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the flock

    def _sweep_orphans(self) -> None:
        """Remove temp files left by writers that died mid-write."""
        tmp_dir = self.root / _TMP_DIR
        now = time.time()
        for entry in os.scandir(tmp_dir):
            if _writer_gone(entry.name) or _older_than(entry, now, _ORPHAN_AGE_S):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)


def _writer_gone(name: str) -> bool:
    pid_s, _, rest = name.partition("-")
    host = rest.partition("-")[2].removesuffix(".tmp")
    if host != _HOST or not pid_s.isdigit():
        return False  # can't tell from here; left to the age rule
    try:
        os.kill(int(pid_s), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, owned by someone else
    return False


def _older_than(entry: os.DirEntry[str], now: float, age: float) -> bool:
    try:
        return now - entry.stat(follow_symlinks=False).st_mtime > age
    except OSError:
        return False


def _moved(where: str, key: str, expected: str | None, found: str | None) -> str:
    want = "absent" if expected is None else f"version {expected}"
    have = "absent" if found is None else ("present" if found == "present" else f"version {found}")
    return f"{where}: {key!r} changed concurrently (expected {want}, found {have}); re-read and retry."
