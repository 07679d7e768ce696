"""``MemoryStore``: a real, thread-safe, in-process Store; the test seam and ``--dry-run``.

It keeps the whole contract (create-only, compare-and-swap, key validation, sorted list) so
code tested against it behaves the same on disk and on S3. Versions are the content's sha256,
exactly as in ``LocalStore``. For a dry run, seed it with a copy of the real store's objects
(``MemoryStore.copy_of(store)``) and let the service write to memory instead.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping

from controller.core.keys import validate_key, validate_prefix
from controller.errors import Conflict
from controller.ports import AlreadyExists, Store, Versioned

__all__ = ["MemoryStore"]


def _version(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class MemoryStore:
    def __init__(self, initial: Mapping[str, bytes] | None = None, *, name: str = "") -> None:
        self._lock = threading.Lock()
        self._objects: dict[str, bytes] = {}
        self._name = name
        for key, data in (initial or {}).items():
            self._objects[validate_key(key)] = bytes(data)

    @classmethod
    def copy_of(cls, store: Store, prefix: str = "") -> MemoryStore:
        """A snapshot of ``store`` (keys under ``prefix``) for a dry run."""
        objects: dict[str, bytes] = {}
        for key in store.list(prefix):
            got = store.get(key)
            if got is not None:
                objects[key] = got.data
        return cls(objects, name=f"copy-of:{store.describe()}")

    def get(self, key: str) -> Versioned | None:
        validate_key(key)
        with self._lock:
            data = self._objects.get(key)
        return None if data is None else Versioned(data, _version(data))

    def create(self, key: str, data: bytes) -> None:
        validate_key(key)
        data = bytes(data)
        with self._lock:
            if key in self._objects:
                raise AlreadyExists(f"{self.describe()}: {key!r} already exists.")
            self._objects[key] = data

    def replace(self, key: str, data: bytes, *, expected: str | None) -> str:
        validate_key(key)
        data = bytes(data)
        with self._lock:
            current = self._objects.get(key)
            found = None if current is None else _version(current)
            if found != expected:
                raise Conflict(_moved(self.describe(), key, expected, found))
            self._objects[key] = data
        return _version(data)

    def list(self, prefix: str) -> list[str]:
        validate_prefix(prefix)
        with self._lock:
            return sorted(k for k in self._objects if k.startswith(prefix))

    def describe(self) -> str:
        return f"memory://{self._name}"


def _moved(where: str, key: str, expected: str | None, found: str | None) -> str:
    want = "absent" if expected is None else f"version {expected}"
    have = "absent" if found is None else f"version {found}"
    return f"{where}: {key!r} changed concurrently (expected {want}, found {have}); re-read and retry."
