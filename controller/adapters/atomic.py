"""Atomic file writes: the one way this package replaces a file that someone else may be reading.

``write_atomic`` writes a temp file beside the target (``O_EXCL``, explicit mode, so it is never
briefly readable by others), fsyncs it, renames it onto the target (atomic within a filesystem)
and fsyncs the directory so the new name survives a power cut. A reader sees the old bytes or the
new bytes, never half a file. ``create_once`` is the create-only variant (a hard link: never
replaces a file another process created first). Temp files a killed writer left behind are swept
by ``sweep_stale_temps`` once they are older than any live writer could be.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from pathlib import Path

__all__ = ["STALE_TEMP_SECONDS", "create_once", "fsync_dir", "sweep_stale_temps", "write_atomic"]

STALE_TEMP_SECONDS = 300


def fsync_dir(directory: Path) -> None:
    """Make a rename or link in ``directory`` durable (best effort where the OS refuses)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _temp(target: Path, data: bytes, mode: int) -> Path:
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)  # the umask may have removed bits we asked for
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return tmp


def write_atomic(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` atomically and durably; creates the parent directory."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp(path, data, mode)
    try:
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def create_once(path: Path, data: bytes, *, mode: int = 0o600) -> bool:
    """Create ``path`` with ``data`` unless it exists; True when this call created it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp(path, data, mode)
    try:
        os.link(tmp, path)  # link() fails if the target exists; rename() would silently replace it
        created = True
    except FileExistsError:
        created = False
    except OSError:  # a filesystem without hard links: rename, after one last look
        created = not path.exists()
        if created:
            os.rename(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)
    return created


def sweep_stale_temps(path: Path, *, older_than: float = STALE_TEMP_SECONDS) -> None:
    """Remove temp files of ``path`` that a writer killed before its rename left behind."""
    for tmp in Path(path).parent.glob(f".{Path(path).name}.*.tmp"):
        with contextlib.suppress(FileNotFoundError):
            if time.time() - tmp.stat().st_mtime > older_than:
                tmp.unlink()
