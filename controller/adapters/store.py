"""The object-store port: one small Protocol for control-plane state, releases, evals and audit.

Every backend (``LocalStore`` directory, ``S3Store``, ``MemoryStore``) honours the same contract,
checked by one suite in ``tests/test_store_contract.py``:

- ``get(key)`` returns the bytes and an opaque ``version`` token, or ``None`` when absent.
- ``create(key, data)`` is create-only: when the key exists it raises ``AlreadyExists`` (a
  ``Conflict``, exit 4) and the stored object is untouched.
- ``replace(key, data, expected=...)`` is compare-and-swap: it writes only when the stored
  version still equals ``expected`` (``None`` meaning "must not exist") and returns the new
  version; otherwise it raises ``Conflict``. Readers never observe a partial object.
- ``list(prefix)`` returns the sorted keys that start with ``prefix`` (a plain string prefix,
  as in S3; ``"audit/wf/"`` lists one directory, ``""`` lists everything).
- ``describe()`` names the backend for evidence (``local:/abs/dir``, ``s3://bucket/prefix``).

Versions are opaque. Two writes of identical bytes may share a version (LocalStore and
MemoryStore use the content's sha256, S3 its ETag); compare-and-swap therefore guards
*content*, which is what a load -> decide -> save loop needs.

Keys are ``/``-separated relative paths. ``validate_key`` refuses anything that could escape
the store's root or alias another key on some backend: empty keys or segments, absolute paths,
``.``/``..``, backslashes, NUL and other control characters. Segments starting with ``.`` are
reserved for store internals (LocalStore keeps its lock and temp files there), so they are
refused everywhere and every backend accepts exactly the same keys.

Failures: bad keys raise ``InvalidInput`` (exit 2); an unreachable backend (connection refused,
permission denied, missing bucket) raises ``BackendUnavailable`` (exit 5).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from controller.errors import Conflict, InvalidInput

__all__ = [
    "MAX_KEY_BYTES",
    "AlreadyExists",
    "Store",
    "Versioned",
    "validate_key",
    "validate_prefix",
]

# S3's own limit; enforced everywhere so a key that works locally also works at scale.
MAX_KEY_BYTES = 1024


class AlreadyExists(Conflict):
    """``create`` found the key already present (someone else won the race). Exit code 4."""


@dataclass(frozen=True)
class Versioned:
    """An object's bytes and the opaque version token to pass back as ``expected``."""

    data: bytes
    version: str


@runtime_checkable
class Store(Protocol):
    def get(self, key: str) -> Versioned | None: ...

    def create(self, key: str, data: bytes) -> None: ...

    def replace(self, key: str, data: bytes, *, expected: str | None) -> str: ...

    def list(self, prefix: str) -> list[str]: ...

    def describe(self) -> str: ...


def _problem(text: str, what: str) -> str | None:
    if not isinstance(text, str):
        return f"must be a string, not {type(text).__name__}"
    if len(text.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        return f"is longer than {MAX_KEY_BYTES} bytes"
    if "\\" in text:
        return "contains a backslash"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        return "contains NUL or another control character"
    if any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        return "contains a lone surrogate (not valid UTF-8)"
    if text.startswith("/"):
        return f"must be a relative {what}, not absolute"
    return None


def validate_key(key: str) -> str:
    """Return ``key`` unchanged when it is a safe store key, else raise ``InvalidInput``."""
    problem = _problem(key, "key")
    if problem is None:
        if key == "":
            problem = "is empty"
        else:
            for segment in key.split("/"):
                if segment == "":
                    problem = "has an empty segment ('//' or a trailing '/')"
                    break
                if segment.startswith("."):
                    problem = (
                        f"has segment {segment!r}: segments may not start with '.' "
                        "('.' and '..' would traverse; dot-names are reserved for the store)"
                    )
                    break
    if problem is not None:
        raise InvalidInput(f"Invalid store key {key!r}: it {problem}.")
    return key


def validate_prefix(prefix: str) -> str:
    """A list prefix: ``""``, or a key, or a key followed by ``/``; a partial last segment
    (``"audit/wf/0000"``) is allowed, as in S3."""
    problem = _problem(prefix, "prefix")
    if problem is None and prefix:
        segments = prefix.split("/")
        # the last segment may be empty (trailing '/') or a partial name
        for i, segment in enumerate(segments):
            last = i == len(segments) - 1
            if segment == "" and not last:
                problem = "has an empty segment ('//')"
                break
            if segment.startswith("."):
                problem = f"has segment {segment!r}: segments may not start with '.'"
                break
    if problem is not None:
        raise InvalidInput(f"Invalid store prefix {prefix!r}: it {problem}.")
    return prefix
