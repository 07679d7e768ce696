"""SSO identity: verify an OIDC JWT from the workflow's IdP and decide who may use the workflow.

Two layers, so the policy is testable without keys or I/O:

- ``check_claims(claims, sso, personal, now)``: the pure decision. Verified claims in, an
  ``Identity`` or an ``IdentityRejected`` out. Authentication problems (issuer, audience,
  lifetime, missing or malformed claims) are 401; authorization problems (unverified email,
  personal account, domain, groups) are 403.
- ``IdentityVerifier.verify(token)``: parses the compact JWS, admits only RS256 and ES256,
  looks the ``kid`` up in a ``JwksSource``, checks the signature with the key's own algorithm
  (never the one the token asks for), then hands the claims to ``check_claims``.

JWKS sources (``FileJwks``, ``UrlJwks``, ``InMemoryJwks``) cache parsed keys with a TTL and
refetch at most once per interval when a token names an unknown ``kid`` (key rotation). A key
set that cannot be read raises ``BackendUnavailable``: no token is accepted without keys.

Rejection messages are one line and never contain the token or any claim value from it.
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
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jwt
from jwt.exceptions import InvalidSignatureError, PyJWTError

from controller.errors import BackendUnavailable, InvalidInput, Refused
from controller.ports import JwksSource

if TYPE_CHECKING:  # the models are only annotations here; keep the gateway's import light
    from controller.bundle.models import PersonalAccounts, Sso

__all__ = [
    "ALLOWED_ALGORITHMS",
    "DEFAULT_LEEWAY",
    "FileJwks",
    "Identity",
    "IdentityRejected",
    "IdentityVerifier",
    "InMemoryJwks",
    "JwksSource",
    "RejectReason",
    "UnknownKeyId",
    "UrlJwks",
    "bearer_token",
    "check_claims",
    "open_jwks",
    "parse_jwks",
]

ALLOWED_ALGORITHMS = ("RS256", "ES256")
DEFAULT_LEEWAY = dt.timedelta(seconds=30)
DEFAULT_JWKS_TTL = dt.timedelta(minutes=10)
DEFAULT_MIN_REFETCH = dt.timedelta(seconds=30)
DEFAULT_FAILURE_BACKOFF = dt.timedelta(seconds=5)

# Bounds on attacker-supplied input, checked before any parsing or crypto.
MAX_TOKEN_CHARS = 16 * 1024
MAX_KID_CHARS = 256
MAX_JWKS_BYTES = 1024 * 1024
_MIN_RSA_BITS = 2048
_NOT_A_JWT = "the bearer token is not a well-formed JWT"


# --- results and rejections ----------------------------------------------------------------


class RejectReason(StrEnum):
    """Why a token was refused; each reason has exactly one HTTP status (``http_status``)."""

    MISSING_TOKEN = "missing-token"
    MALFORMED = "malformed"
    ALGORITHM_NOT_ALLOWED = "algorithm-not-allowed"
    KEY_MISMATCH = "key-mismatch"
    UNKNOWN_KEY = "unknown-key"
    BAD_SIGNATURE = "bad-signature"
    WRONG_ISSUER = "wrong-issuer"
    WRONG_AUDIENCE = "wrong-audience"
    EXPIRED = "expired"
    LIFETIME_TOO_LONG = "lifetime-too-long"
    NOT_YET_VALID = "not-yet-valid"
    MISSING_CLAIM = "missing-claim"
    EMAIL_UNVERIFIED = "email-unverified"
    PERSONAL_ACCOUNT = "personal-account"
    DOMAIN_NOT_ALLOWED = "domain-not-allowed"
    NO_ALLOWED_GROUP = "no-allowed-group"

    @property
    def http_status(self) -> int:
        return 403 if self in _AUTHORIZATION_FAILURES else 401


# The token is authentic but the person may not use the workflow: 403. Everything else: 401.
_AUTHORIZATION_FAILURES = frozenset(
    {
        RejectReason.EMAIL_UNVERIFIED,
        RejectReason.PERSONAL_ACCOUNT,
        RejectReason.DOMAIN_NOT_ALLOWED,
        RejectReason.NO_ALLOWED_GROUP,
    }
)


class IdentityRejected(Refused):
    """The request's identity was refused. ``http_status`` is 401 (authentication) or 403."""

    def __init__(self, reason: RejectReason, message: str):
        self.reason = reason
        self.http_status = reason.http_status
        self.message = message
        super().__init__(f"identity rejected ({reason.value}): {message}")


class UnknownKeyId(LookupError):
    """A JWKS source has no usable key with this ``kid`` (raised by ``JwksSource.get_key``)."""


@dataclass(frozen=True)
class Identity:
    """A verified, authorized caller. ``email`` is ASCII-lowercased; ``expires_at`` is UTC."""

    subject: str
    email: str
    groups: tuple[str, ...]
    issuer: str
    expires_at: dt.datetime


# --- the pure decision ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Policy:
    """The bundle's SSO settings, normalised once so each decision is set lookups."""

    issuer: str
    audience: str
    allowed_domains: frozenset[str]
    consumer_domains: frozenset[str]
    allowed_groups: frozenset[str]
    allowed_groups_text: str
    allowed_domains_text: str
    exceptions: tuple[tuple[str, str, dt.date], ...]  # (subject, ascii-lower subject, expires)

    @classmethod
    def of(cls, sso: Sso, personal: PersonalAccounts) -> _Policy:
        return cls(
            issuer=sso.idp.issuer,
            audience=sso.idp.audience,
            allowed_domains=frozenset(_ascii_lower(d) for d in sso.allowed_email_domains),
            consumer_domains=frozenset(_ascii_lower(d) for d in personal.consumer_domains),
            allowed_groups=frozenset(sso.allowed_groups),
            allowed_groups_text=", ".join(sso.allowed_groups),
            allowed_domains_text=", ".join(sso.allowed_email_domains),
            exceptions=tuple((e.subject, _ascii_lower(e.subject), e.expires) for e in personal.exceptions),
        )


def check_claims(
    claims: Mapping[str, Any],
    sso: Sso,
    personal: PersonalAccounts,
    now: dt.datetime,
    *,
    leeway: dt.timedelta = DEFAULT_LEEWAY,
    max_lifetime: dt.timedelta | None = None,
) -> Identity:
    """Decide whether signature-verified ``claims`` identify someone allowed to use the workflow.

    ``now`` must be timezone-aware. ``max_lifetime``, if given, refuses tokens whose
    ``exp - iat`` is longer (offboarding relies on short-lived tokens). Raises
    ``IdentityRejected`` (401 or 403); never does I/O.
    """
    return _decide(claims, _Policy.of(sso, personal), now, leeway, max_lifetime)


def _decide(
    claims: Mapping[str, Any],
    policy: _Policy,
    now: dt.datetime,
    leeway: dt.timedelta,
    max_lifetime: dt.timedelta | None = None,
) -> Identity:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")
    if not isinstance(claims, Mapping):
        raise _reject(RejectReason.MALFORMED, "token claims are not a JSON object")

    # Authentication: is this a current token from our IdP, for us?
    issuer = _required(claims, "iss")
    if not isinstance(issuer, str) or issuer != policy.issuer:
        raise _reject(RejectReason.WRONG_ISSUER, f"token was not issued by {policy.issuer}")
    audience = _required(claims, "aud")
    if isinstance(audience, str):
        audience = [audience]
    if not isinstance(audience, list) or not all(isinstance(a, str) for a in audience):
        raise _reject(RejectReason.MALFORMED, "claim 'aud' must be a string or a list of strings")
    if policy.audience not in audience:
        raise _reject(RejectReason.WRONG_AUDIENCE, f"token is not for audience {policy.audience}")

    t = now.timestamp()
    slack = leeway.total_seconds()
    exp = _numeric_date(claims, "exp", required=True)
    iat = _numeric_date(claims, "iat", required=True)
    nbf = _numeric_date(claims, "nbf", required=False)
    assert exp is not None and iat is not None
    if t >= exp + slack:
        raise _reject(RejectReason.EXPIRED, "token has expired")
    if nbf is not None and nbf > t + slack:
        raise _reject(RejectReason.NOT_YET_VALID, "token is not valid yet (nbf)")
    if iat > t + slack:
        raise _reject(RejectReason.NOT_YET_VALID, "token is issued in the future (iat)")
    if iat > exp:
        raise _reject(RejectReason.MALFORMED, "token is issued after it expires (iat > exp)")
    if max_lifetime is not None and exp - iat > max_lifetime.total_seconds():
        raise _reject(
            RejectReason.LIFETIME_TOO_LONG,
            f"token lifetime exceeds the allowed {int(max_lifetime.total_seconds())} s",
        )
    try:
        expires_at = dt.datetime.fromtimestamp(exp, dt.UTC)
    except (OverflowError, OSError, ValueError):
        raise _reject(RejectReason.MALFORMED, "claim 'exp' is out of range") from None

    subject = _required(claims, "sub")
    if not isinstance(subject, str) or not subject or len(subject) > 255:
        raise _reject(RejectReason.MALFORMED, "claim 'sub' must be a non-empty string")
    email = _required(claims, "email")
    if not isinstance(email, str):
        raise _reject(RejectReason.MALFORMED, "claim 'email' must be a string")
    domain = _email_domain(email)
    groups = claims.get("groups", [])
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        raise _reject(RejectReason.MALFORMED, "claim 'groups' must be a list of strings")

    # Authorization: may this person use the workflow?
    if "email_verified" in claims and claims["email_verified"] is not True:
        raise _reject(RejectReason.EMAIL_UNVERIFIED, "the IdP has not verified this account's email address")
    email = _ascii_lower(email)
    if domain in policy.consumer_domains:
        if not _has_exception(policy, subject, email, now):
            raise _reject(
                RejectReason.PERSONAL_ACCOUNT,
                f"personal accounts are not allowed; sign in with your {policy.allowed_domains_text} account",
            )
    elif domain not in policy.allowed_domains:
        raise _reject(
            RejectReason.DOMAIN_NOT_ALLOWED,
            f"email domain is not allowed (allowed: {policy.allowed_domains_text})",
        )
    if policy.allowed_groups.isdisjoint(groups):
        raise _reject(
            RejectReason.NO_ALLOWED_GROUP,
            f"account is in none of the allowed groups ({policy.allowed_groups_text})",
        )
    return Identity(
        subject=subject,
        email=email,
        groups=tuple(dict.fromkeys(groups)),
        issuer=issuer,
        expires_at=expires_at,
    )


def _reject(reason: RejectReason, message: str) -> IdentityRejected:
    return IdentityRejected(reason, message)


def _required(claims: Mapping[str, Any], name: str) -> Any:
    if name not in claims or claims[name] is None:
        raise _reject(RejectReason.MISSING_CLAIM, f"token lacks the required claim {name!r}")
    return claims[name]


def _numeric_date(claims: Mapping[str, Any], name: str, *, required: bool) -> float | None:
    if not required and claims.get(name) is None:
        return None
    value = _required(claims, name)
    # bool is an int; NaN compares false with everything and would pass every time check.
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _reject(RejectReason.MALFORMED, f"claim {name!r} must be a NumericDate")
    return float(value)


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _ascii_lower(value: str) -> str:
    # str.lower() folds some non-ASCII letters onto ASCII ones (KELVIN SIGN -> "k"), which
    # would let a lookalike domain compare equal to an allowed one. Fold ASCII only.
    return value.translate(_ASCII_LOWER)


def _email_domain(email: str) -> str:
    """The ASCII-lowercased domain of a plain ``local@domain`` address, or a 401."""
    local, at, domain = email.rpartition("@")
    if (
        not at
        or not local
        or not domain
        or "@" in local
        or len(email) > 320
        or any(c.isspace() or not c.isprintable() for c in email)
    ):
        raise _reject(RejectReason.MALFORMED, "claim 'email' is not a plain email address")
    return _ascii_lower(domain)


def _has_exception(policy: _Policy, subject: str, email: str, now: dt.datetime) -> bool:
    # ``expires`` is the last day the exception is valid (load_bundle treats a date before
    # today as expired), evaluated in UTC.
    today = now.astimezone(dt.UTC).date()
    return any(
        today <= expires and (exc_subject == subject or exc_lower == email)
        for exc_subject, exc_lower, expires in policy.exceptions
    )


# --- JWKS sources --------------------------------------------------------------------------


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


# --- the verifier --------------------------------------------------------------------------


def bearer_token(authorization: str | None) -> str:
    """The token from an ``Authorization: Bearer <token>`` header value, or a 401."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise _reject(RejectReason.MISSING_TOKEN, "an 'Authorization: Bearer <token>' header is required")
    return token


class IdentityVerifier:
    """Verify a bearer token's signature against the IdP's keys, then apply the SSO policy."""

    def __init__(
        self,
        sso: Sso,
        personal_accounts: PersonalAccounts,
        jwks: JwksSource,
        *,
        leeway: dt.timedelta = DEFAULT_LEEWAY,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        max_lifetime: dt.timedelta | None = None,
    ):
        if leeway < dt.timedelta(0) or leeway > dt.timedelta(minutes=5):
            raise InvalidInput("identity leeway must be between 0 and 5 minutes")
        self._policy = _Policy.of(sso, personal_accounts)
        self._jwks = jwks
        self._leeway = leeway
        self._clock = clock
        self._max_lifetime = max_lifetime
        self._jws = jwt.PyJWS(algorithms=list(ALLOWED_ALGORITHMS))

    def verify(self, token: str) -> Identity:
        """The caller's ``Identity``; raises ``IdentityRejected`` or ``BackendUnavailable``."""
        if not isinstance(token, str) or not token:
            raise _reject(RejectReason.MISSING_TOKEN, "no bearer token was presented")
        if len(token) > MAX_TOKEN_CHARS or not token.isascii() or token.count(".") != 2:
            raise _reject(RejectReason.MALFORMED, "the bearer token is not a compact JWS")
        try:
            header = self._jws.get_unverified_header(token)
        except PyJWTError:
            raise _reject(RejectReason.MALFORMED, _NOT_A_JWT) from None

        alg = header.get("alg")
        if alg not in ALLOWED_ALGORITHMS:
            raise _reject(
                RejectReason.ALGORITHM_NOT_ALLOWED,
                f"token algorithm is not allowed (accepted: {', '.join(ALLOWED_ALGORITHMS)})",
            )
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid or len(kid) > MAX_KID_CHARS:
            raise _reject(RejectReason.MALFORMED, "token header has no usable key id (kid)")
        try:
            key = self._jwks.get_key(kid)
        except UnknownKeyId:
            raise _reject(RejectReason.UNKNOWN_KEY, "token is signed with a key the IdP does not publish") from None
        # The key decides the algorithm; a token cannot talk an RSA key into HS256 or ES256.
        if key.algorithm_name != alg:
            raise _reject(RejectReason.KEY_MISMATCH, "token algorithm does not match the signing key's type")
        try:
            decoded = self._jws.decode_complete(token, key=key, algorithms=[alg])
        except InvalidSignatureError:
            raise _reject(RejectReason.BAD_SIGNATURE, "token signature is invalid") from None
        except PyJWTError:
            raise _reject(RejectReason.MALFORMED, _NOT_A_JWT) from None

        claims = _parse_claims(decoded["payload"])
        return _decide(claims, self._policy, self._clock(), self._leeway, self._max_lifetime)


def _parse_claims(payload: bytes) -> dict[str, Any]:
    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        # Duplicate members are how parser-differential attacks smuggle a second "email".
        out = dict(pairs)
        if len(out) != len(pairs):
            raise ValueError("duplicate member")
        return out

    try:
        claims = json.loads(payload, object_pairs_hook=unique, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        raise _reject(RejectReason.MALFORMED, "token claims are not valid JSON") from None
    if not isinstance(claims, dict):
        raise _reject(RejectReason.MALFORMED, "token claims are not a JSON object")
    return claims
