"""The ports: the small Protocols every adapter implements and the core and service depend on.

Each has a real in-memory implementation that ships with the package and doubles as the test
seam (``MemoryStore``, ``MemorySink``, ``InMemoryJwks``, ``StaticFlagSource``, the test model
adapters), so nothing in ``core/``, ``bundle/``, ``boundaries/`` or ``evals/`` scoring needs an
adapter to be exercised.

    Store        releases, eval results, rollout state, the audit chain (local dir, S3, memory)
    FlagSink     where the rendered flag document goes (file, S3, Kubernetes ConfigMap)
    FlagSource   how the gateway reads the kill switch and release flag (OpenFeature + flagd)
    RequestSink  the per-request audit trail (JSONL, S3, memory)
    JwksSource   the IdP's signing keys (file, URL, memory)
    ModelAdapter a model endpoint (``controller.models``)
    Clock        "now", passed in so every decision is testable with a fixed time

The Store contract (checked by one suite against every backend, ``tests/test_store_contract.py``):

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
*content*, which is what a load -> decide -> save loop needs. Keys are checked by
``controller.core.keys.validate_key`` on every backend.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from controller.errors import Conflict

if TYPE_CHECKING:  # the model types live with the adapters' shared shapes
    import jwt

    from controller.models.base import ModelRequest, ModelResponse

__all__ = [
    "AlreadyExists",
    "Clock",
    "FlagSink",
    "FlagSource",
    "JwksSource",
    "MAX_KID_CHARS",
    "UnknownKeyId",
    "ModelAdapter",
    "RequestSink",
    "Store",
    "Versioned",
]

Clock = Callable[[], dt.datetime]
"""Returns the current time, timezone-aware (UTC)."""


MAX_KID_CHARS = 256
"""Bound on an attacker-supplied key id, checked before any lookup (token header and JWKS alike)."""


class UnknownKeyId(LookupError):
    """A JWKS source has no usable key with this ``kid`` (raised by ``JwksSource.get_key``)."""


class AlreadyExists(Conflict):
    """``Store.create`` found the key already present (someone else won the race). Exit code 4."""


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


class FlagSink(Protocol):
    """A place the flag document is published to. Sinks are dumb read-modify-write primitives:
    the rule of what may replace what (never un-kill) is ``controller.core.flags.publish_hold``,
    applied to every sink by ``controller.service.publish.publish_flags``."""

    def swap(self, decide: Callable[[bytes | None], bytes | None]) -> bool:
        """Read the live document (``None`` when absent), call ``decide`` with it, and write what
        it returns (``None``: leave the live one). Atomic against concurrent writers where the
        backend allows (flock, resourceVersion). True when the sink was written."""
        ...

    def describe(self) -> str: ...


OFF = "off"
"""The release flag's variant (and the cohort name) that serves nobody."""


@dataclass(frozen=True)
class FlagDecision:
    """What the flags say for one user: the kill switch first, then the release flag."""

    killed: bool
    kill_reason: str
    variant: str  # a release digest, or "off"
    variant_reason: str
    cohort: str = "off"  # the release flag's variant name: the cohort the user is in, or "off"

    @property
    def release(self) -> str | None:
        return None if self.killed or self.variant == OFF else self.variant


class FlagSource(Protocol):
    def decide(self, subject: str, email: str, groups: tuple[str, ...]) -> FlagDecision:
        """The kill switch then the release flag for one user (``FlagDecision``); never raises:
        any error is the safe state (killed, off)."""
        ...


REQUEST_SCHEMA = "ai-rollout.request/v1"
"""The schema id every request record carries (``controller/schemas/request-record.v1.json``)."""


class RequestSink(Protocol):
    def write(self, record: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class JwksSource(Protocol):
    """Where verification keys come from.

    ``get_key`` returns the usable key for ``kid``, raises ``UnknownKeyId`` when there is none
    and ``BackendUnavailable`` when the key set cannot be read.
    """

    def get_key(self, kid: str) -> jwt.PyJWK: ...


@runtime_checkable
class ModelAdapter(Protocol):
    """A model endpoint. Implementations are safe to share between threads."""

    name: str

    def complete(self, request: ModelRequest) -> ModelResponse:
        """Answer ``request`` or raise ``ModelError`` (never another exception for I/O)."""
        ...
