"""JWKS sources: where the gateway's identity check gets the IdP's signing keys.

``FileJwks`` (a JWKS file, e.g. the local dev IdP's) and ``UrlJwks`` (the IdP's ``jwks_uri``,
https only except on loopback, no redirects to other schemes) cache the key set for ``ttl``,
refetch at most once per ``min_refetch_interval`` on an unknown ``kid`` (a key rotation), and back
off after a failure; ``InMemoryJwks`` is the test seam. ``open_jwks`` is the one factory.
Documents are bounded (``MAX_JWKS_BYTES``) and keys filtered to what the verifier accepts.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jwt
from jwt.exceptions import PyJWTError

from controller.errors import BackendUnavailable, InvalidInput
from controller.ports import MAX_KID_CHARS, JwksSource, UnknownKeyId

__all__ = [
    "DEFAULT_JWKS_TTL",
    "MAX_JWKS_BYTES",
    "FileJwks",
    "InMemoryJwks",
    "UnknownKeyId",
    "UrlJwks",
    "open_jwks",
    "parse_jwks",
]

DEFAULT_JWKS_TTL = dt.timedelta(minutes=10)
DEFAULT_MIN_REFETCH = dt.timedelta(seconds=30)
DEFAULT_FAILURE_BACKOFF = dt.timedelta(seconds=5)
MAX_JWKS_BYTES = 1024 * 1024
_MIN_RSA_BITS = 2048


def parse_jwks(document: bytes | str | Mapping[str, Any]) -> dict[str, jwt.PyJWK]:
    """The usable signing keys of a JWK Set, by ``kid``. Raises ``ValueError`` if it is not one.

    A key is usable when it has a ``kid``, is RSA (>= 2048 bits, RS256) or EC P-256 (ES256),
    carries no private material, and its optional ``use``/``alg``/``key_ops`` agree. Other keys
    (encryption keys, other algorithms) are skipped; a ``kid`` that appears twice is dropped,
    because which of the two keys it means is ambiguous.
    """
    if isinstance(document, bytes | str):
        try:
            document = json.loads(document, parse_constant=_no_constant)
        except (ValueError, RecursionError) as exc:
            raise ValueError(f"not JSON ({exc.__class__.__name__})") from None
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWK Set (needs a 'keys' list)")
    keys: dict[str, jwt.PyJWK] = {}
    seen: set[str] = set()
    for jwk in document["keys"]:
        parsed = _usable_key(jwk)
        if parsed is None:
            continue
        kid, key = parsed
        if kid in seen:
            keys.pop(kid, None)
            continue
        seen.add(kid)
        keys[kid] = key
    if not keys:
        raise ValueError("has no usable RS256/ES256 signing key with a kid")
    return keys


def _usable_key(jwk: Any) -> tuple[str, jwt.PyJWK] | None:
    if not isinstance(jwk, Mapping):
        return None
    kid = jwk.get("kid")
    if not isinstance(kid, str) or not kid or len(kid) > MAX_KID_CHARS:
        return None
    kty = jwk.get("kty")
    if kty == "RSA":
        algorithm = "RS256"
    elif kty == "EC" and jwk.get("crv") == "P-256":
        algorithm = "ES256"
    else:
        return None
    if "d" in jwk:  # a private key published in a key set is compromised, not usable
        return None
    if jwk.get("use", "sig") != "sig" or jwk.get("alg", algorithm) != algorithm:
        return None
    ops = jwk.get("key_ops")
    if ops is not None and (not isinstance(ops, list) or "verify" not in ops):
        return None
    try:
        key = jwt.PyJWK(dict(jwk), algorithm=algorithm)
    except (PyJWTError, ValueError, TypeError):
        return None
    if kty == "RSA" and key.key.key_size < _MIN_RSA_BITS:
        return None
    return kid, key


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


class InMemoryJwks:
    """Keys held in memory: the test seam and the dry-run source. ``set_keys`` rotates."""

    def __init__(self, document: Mapping[str, Any] | None = None):
        self._keys: dict[str, jwt.PyJWK] = parse_jwks(document) if document is not None else {}

    def set_keys(self, document: Mapping[str, Any]) -> None:
        self._keys = parse_jwks(document)

    def get_key(self, kid: str) -> jwt.PyJWK:
        try:
            return self._keys[kid]
        except KeyError:
            raise UnknownKeyId(kid) from None


class _CachingJwks:
    """A TTL cache of parsed keys over a fetch.

    A known ``kid`` with fresh keys is a dict lookup, without a lock. A ``kid`` the cache does
    not know triggers one refetch (the IdP may have rotated), at most once per
    ``min_refetch_interval`` so a stream of made-up kids cannot become a stream of fetches.
    Keys are never served past their TTL: if the reload fails, verification fails
    (``BackendUnavailable``). After a failed fetch, further fetches wait ``failure_backoff`` so
    a down IdP does not add a network timeout to every request.
    """

    def __init__(
        self,
        *,
        ttl: dt.timedelta,
        min_refetch_interval: dt.timedelta,
        failure_backoff: dt.timedelta,
        monotonic: Callable[[], float],
    ):
        self._ttl = ttl.total_seconds()
        self._min_refetch = min_refetch_interval.total_seconds()
        self._backoff = failure_backoff.total_seconds()
        self._monotonic = monotonic
        self._lock = threading.Lock()  # held by whoever fetches; lookups never take it
        # (keys, monotonic time of the fetch that produced them), replaced as one object.
        self._state: tuple[dict[str, jwt.PyJWK] | None, float] = (None, -math.inf)
        self._refetched_at = -math.inf  # last unknown-kid refetch: rate-limits the next one
        self._failed_at = -math.inf
        self._last_error = ""
        self.fetch_count = 0  # observable for tests and metrics

    @property
    def location(self) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    def _fetch(self) -> bytes:  # pragma: no cover - overridden
        raise NotImplementedError

    def get_key(self, kid: str) -> jwt.PyJWK:
        keys, loaded_at = self._state
        if keys is not None and self._monotonic() - loaded_at < self._ttl:
            key = keys.get(kid)
            if key is not None:
                return key
        with self._lock:
            now = self._monotonic()
            keys, loaded_at = self._state  # another thread may have fetched while we waited
            if keys is None or now - loaded_at >= self._ttl:
                keys = self._load(now)
            elif kid not in keys and now - self._refetched_at >= self._min_refetch:
                self._refetched_at = now
                keys = self._load(now)
            key = keys.get(kid)
            if key is None:
                raise UnknownKeyId(kid)
            return key

    def _load(self, now: float) -> dict[str, jwt.PyJWK]:
        if now - self._failed_at < self._backoff:
            raise BackendUnavailable(self._last_error)
        self.fetch_count += 1
        try:
            keys = parse_jwks(self._fetch())
        except BackendUnavailable as exc:
            self._failed_at, self._last_error = now, str(exc)
            raise
        except ValueError as exc:
            self._failed_at = now
            self._last_error = f"JWKS at {self.location} is unusable: {exc}"
            raise BackendUnavailable(self._last_error) from None
        self._state = (keys, now)
        return keys


class FileJwks(_CachingJwks):
    """A JWK Set in a local file (the dev IdP's ``jwks.json``, or a pinned copy)."""

    def __init__(
        self,
        path: Path | str,
        *,
        ttl: dt.timedelta = DEFAULT_JWKS_TTL,
        min_refetch_interval: dt.timedelta = DEFAULT_MIN_REFETCH,
        failure_backoff: dt.timedelta = DEFAULT_FAILURE_BACKOFF,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        super().__init__(
            ttl=ttl,
            min_refetch_interval=min_refetch_interval,
            failure_backoff=failure_backoff,
            monotonic=monotonic,
        )
        self.path = Path(path)

    @property
    def location(self) -> str:
        return str(self.path)

    def _fetch(self) -> bytes:
        try:
            with self.path.open("rb") as fh:
                data = fh.read(MAX_JWKS_BYTES + 1)
        except OSError as exc:
            raise BackendUnavailable(f"cannot read JWKS file {self.path}: {exc.strerror or exc}") from None
        if len(data) > MAX_JWKS_BYTES:
            raise BackendUnavailable(f"JWKS file {self.path} is larger than {MAX_JWKS_BYTES} bytes")
        return data


_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


def _check_jwks_url(url: str) -> None:
    """https anywhere; plain http only to this machine, where nobody can rewrite the keys."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS:
        return
    raise InvalidInput(f"JWKS URL {url!r} must be https:// (plain http is accepted only for 127.0.0.1/localhost)")


class _SafeRedirects(urllib.request.HTTPRedirectHandler):
    # urllib follows https -> http redirects; a downgrade would let anyone on the path
    # substitute their own keys.
    def redirect_request(  # type: ignore[no-untyped-def]
        self, req, fp, code, msg, headers, newurl
    ):
        try:
            _check_jwks_url(newurl)
        except InvalidInput:
            raise urllib.error.URLError("redirected to a URL that is not https") from None
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_SafeRedirects)


class UrlJwks(_CachingJwks):
    """The IdP's published JWK Set (``sso.idp.jwks_uri``), fetched with urllib and a timeout."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 5.0,
        ttl: dt.timedelta = DEFAULT_JWKS_TTL,
        min_refetch_interval: dt.timedelta = DEFAULT_MIN_REFETCH,
        failure_backoff: dt.timedelta = DEFAULT_FAILURE_BACKOFF,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        _check_jwks_url(url)
        super().__init__(
            ttl=ttl,
            min_refetch_interval=min_refetch_interval,
            failure_backoff=failure_backoff,
            monotonic=monotonic,
        )
        self.url = url
        self.timeout = timeout

    @property
    def location(self) -> str:
        return self.url

    def _fetch(self) -> bytes:
        request = urllib.request.Request(self.url, headers={"Accept": "application/json", "User-Agent": "ai-rollout"})
        try:
            with _OPENER.open(request, timeout=self.timeout) as response:
                data = response.read(MAX_JWKS_BYTES + 1)
        except urllib.error.HTTPError as exc:
            raise BackendUnavailable(f"cannot fetch JWKS from {self.url}: HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            why = getattr(exc, "reason", None) or exc
            raise BackendUnavailable(f"cannot fetch JWKS from {self.url}: {why}") from None
        if len(data) > MAX_JWKS_BYTES:
            raise BackendUnavailable(f"JWKS at {self.url} is larger than {MAX_JWKS_BYTES} bytes")
        return data


def open_jwks(location: str | Path, **options: Any) -> JwksSource:
    """The one factory: an http(s) URL -> ``UrlJwks``; anything else is a file path."""
    if isinstance(location, str) and "://" in location:
        return UrlJwks(location, **options)
    return FileJwks(location, **options)
