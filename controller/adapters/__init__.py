"""I/O adapters behind Protocols, and the one factory that picks a Store from a URL.

    open_store(".rollout")                     -> LocalStore (a plain path, relative or absolute)
    open_store("file:///abs/dir")              -> LocalStore
    open_store("s3://bucket/some/prefix")      -> S3Store (boto3; endpoint from the environment)
    open_store("memory://")                    -> MemoryStore (empty; dry runs and tests)

The S3 backend (boto3) is imported only when an ``s3://`` URL is opened.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from controller.adapters.local import LocalStore
from controller.adapters.memory import MemoryStore
from controller.core.keys import validate_key, validate_prefix
from controller.errors import InvalidInput
from controller.ports import AlreadyExists, Store, Versioned

if TYPE_CHECKING:
    from controller.adapters.s3 import S3Store

__all__ = [
    "DEFAULT_STORE_URL",
    "AlreadyExists",
    "LocalStore",
    "MemoryStore",
    "S3Store",
    "Store",
    "Versioned",
    "open_store",
    "validate_key",
    "validate_prefix",
]

DEFAULT_STORE_URL = ".rollout"


def open_store(url: str, *, kms_key_id: str | None = None) -> Store:
    """The Store named by ``url``. ``kms_key_id`` applies to ``s3://`` only (SSE-KMS)."""
    if not url or not url.strip():
        raise InvalidInput("Empty store URL; use a directory, file:///abs/dir, s3://bucket/prefix "
                           "or memory://.")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "memory":
        return MemoryStore(name=(parts.netloc + parts.path).strip("/"))
    if scheme == "s3":
        if not parts.netloc:
            raise InvalidInput(f"Store URL {url!r} names no bucket; expected s3://bucket/prefix.")
        if parts.query or parts.fragment:
            raise InvalidInput(f"Store URL {url!r}: s3:// URLs take no query or fragment.")
        from controller.adapters.s3 import S3Store

        return S3Store(parts.netloc, unquote(parts.path).strip("/"), kms_key_id=kms_key_id)
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise InvalidInput(f"Store URL {url!r} names a remote host; file:// must be local.")
        path = unquote(parts.path)
        if not path.startswith("/"):
            raise InvalidInput(f"Store URL {url!r} must be absolute: file:///abs/dir.")
        return LocalStore(Path(path))
    if "://" in url:
        raise InvalidInput(
            f"Unknown store URL scheme {parts.scheme!r} in {url!r}; "
            "use a directory, file:///abs/dir, s3://bucket/prefix or memory://."
        )
    return LocalStore(Path(url))


def __getattr__(name: str) -> object:
    # S3Store is listed in __all__ but its module (and boto3) load only when asked for.
    if name == "S3Store":
        from controller.adapters.s3 import S3Store

        return S3Store
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
