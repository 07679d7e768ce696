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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import jwt
from jwt.exceptions import InvalidSignatureError, PyJWTError

from controller.errors import InvalidInput, RefusedError
from controller.ports import MAX_KID_CHARS, JwksSource, UnknownKeyId

if TYPE_CHECKING:  # the models are only annotations here; keep the gateway's import light
    from controller.bundle.models import PersonalAccounts, Sso

__all__ = [
    "ALLOWED_ALGORITHMS",
    "DEFAULT_LEEWAY",
    "Identity",
    "IdentityRejected",
    "IdentityVerifier",
    "JwksSource",
    "RejectReason",
    "UnknownKeyId",
    "bearer_token",
    "check_claims",
]

ALLOWED_ALGORITHMS = ("RS256", "ES256")
DEFAULT_LEEWAY = dt.timedelta(seconds=30)

# Bounds on attacker-supplied input, checked before any parsing or crypto.
MAX_TOKEN_CHARS = 16 * 1024
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


class IdentityRejected(RefusedError):
    """The request's identity was refused. ``http_status`` is 401 (authentication) or 403."""

    def __init__(self, reason: RejectReason, message: str):
        self.reason = reason
        self.http_status = reason.http_status
        self.message = message
        super().__init__(f"identity rejected ({reason.value}): {message}")


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
    require_group: bool = True,
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
    if require_group and policy.allowed_groups.isdisjoint(groups):
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
        require_group: bool = True,  # False: the control plane, whose access rules name emails too
    ):
        if leeway < dt.timedelta(0) or leeway > dt.timedelta(minutes=5):
            raise InvalidInput("identity leeway must be between 0 and 5 minutes")
        self._policy = _Policy.of(sso, personal_accounts)
        self._jwks = jwks
        self._leeway = leeway
        self._clock = clock
        self._max_lifetime = max_lifetime
        self._require_group = require_group
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
        return _decide(claims, self._policy, self._clock(), self._leeway, self._max_lifetime, self._require_group)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


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
