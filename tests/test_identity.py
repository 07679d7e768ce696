"""Identity: the pure claims decision (table-driven), signatures with real keys, JWKS sources."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import http.server
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import given
from hypothesis import strategies as st

from controller.adapters.devidp import public_jwk
from controller.adapters.jwks import FileJwks, InMemoryJwks, UrlJwks, open_jwks, parse_jwks
from controller.bundle.models import PersonalAccounts, Sso
from controller.errors import BackendUnavailable, InvalidInput, RefusedError, RolloutError
from controller.gateway.identity import (
    Identity,
    IdentityRejected,
    IdentityVerifier,
    JwksSource,
    RejectReason,
    UnknownKeyId,
    bearer_token,
    check_claims,
)

ISSUER = "https://login.corp.example/oauth2/default"
AUDIENCE = "api://internal-docs-qa"
NOW = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC)
T = int(NOW.timestamp())

SSO = Sso.model_validate(
    {
        "required": True,
        "idp": {"name": "Okta", "issuer": ISSUER, "audience": AUDIENCE, "jwks_uri": ISSUER + "/v1/keys", "max_token_lifetime": "24h"},
        "allowed_email_domains": ["corp.example"],
        "allowed_groups": ["eng", "support", "ai-pilot"],
        "offboarding": "SCIM deactivation on the last day.",
    }
)
PERSONAL = PersonalAccounts.model_validate(
    {
        "allowed": False,
        "consumer_domains": ["gmail.com", "outlook.com", "proton.me"],
        "exceptions": [
            {"subject": "contractor@gmail.com", "owner": "Priya", "reason": "pilot", "expires": dt.date(2025, 6, 30)},
            {"subject": "lapsed@gmail.com", "owner": "Priya", "reason": "pilot", "expires": dt.date(2025, 5, 31)},
            {"subject": "00u-exception-sub", "owner": "Priya", "reason": "pilot", "expires": dt.date(2025, 6, 1)},
        ],
    }
)

DROP = object()


def claims(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "00u-alice",
        "email": "alice@corp.example",
        "email_verified": True,
        "groups": ["eng"],
        "iat": T - 60,
        "exp": T + 3600,
    }
    for name, value in changes.items():
        if value is DROP:
            base.pop(name, None)
        else:
            base[name] = value
    return base


# --- check_claims: every refusal, both statuses ---------------------------------------------

R = RejectReason
REFUSALS = [
    # 401: not a current token from our IdP, for us
    ("no-issuer", claims(iss=DROP), R.MISSING_CLAIM),
    ("other-issuer", claims(iss="https://login.corp.example/oauth2/other"), R.WRONG_ISSUER),
    ("issuer-prefix", claims(iss="https://login.corp.example"), R.WRONG_ISSUER),
    ("issuer-trailing-slash", claims(iss=ISSUER + "/"), R.WRONG_ISSUER),
    ("issuer-case", claims(iss=ISSUER.upper()), R.WRONG_ISSUER),
    ("issuer-not-string", claims(iss=[ISSUER]), R.WRONG_ISSUER),
    ("no-audience", claims(aud=DROP), R.MISSING_CLAIM),
    ("other-audience", claims(aud="api://payroll"), R.WRONG_AUDIENCE),
    ("audience-list-without-ours", claims(aud=["api://payroll", "x"]), R.WRONG_AUDIENCE),
    ("audience-empty-list", claims(aud=[]), R.WRONG_AUDIENCE),
    ("audience-not-strings", claims(aud=[AUDIENCE, 7]), R.MALFORMED),
    ("no-exp", claims(exp=DROP), R.MISSING_CLAIM),
    ("expired", claims(exp=T - 31), R.EXPIRED),
    ("expired-at-leeway-edge", claims(exp=T - 30), R.EXPIRED),
    ("exp-string", claims(exp=str(T + 3600)), R.MALFORMED),
    ("exp-bool", claims(exp=True), R.MALFORMED),
    ("exp-nan", claims(exp=float("nan")), R.MALFORMED),
    ("exp-infinite", claims(exp=float("inf")), R.MALFORMED),
    ("exp-out-of-range", claims(exp=1e300), R.MALFORMED),
    ("not-yet-valid", claims(nbf=T + 31), R.NOT_YET_VALID),
    ("nbf-string", claims(nbf="soon"), R.MALFORMED),
    ("no-iat", claims(iat=DROP), R.MISSING_CLAIM),
    ("iat-in-future", claims(iat=T + 31), R.NOT_YET_VALID),
    ("iat-after-exp", claims(iat=T + 20, exp=T + 10), R.MALFORMED),
    ("no-sub", claims(sub=DROP), R.MISSING_CLAIM),
    ("null-sub", claims(sub=None), R.MISSING_CLAIM),
    ("empty-sub", claims(sub=""), R.MALFORMED),
    ("sub-not-string", claims(sub=42), R.MALFORMED),
    ("no-email", claims(email=DROP), R.MISSING_CLAIM),
    ("email-not-string", claims(email=["alice@corp.example"]), R.MALFORMED),
    ("email-no-at", claims(email="alice"), R.MALFORMED),
    ("email-no-local", claims(email="@corp.example"), R.MALFORMED),
    ("email-no-domain", claims(email="alice@"), R.MALFORMED),
    ("email-two-ats", claims(email="alice@corp.example@attacker.test"), R.MALFORMED),
    ("email-quoted-at", claims(email='"alice@corp.example"@attacker.test'), R.MALFORMED),
    ("email-whitespace", claims(email="alice@corp.example "), R.MALFORMED),
    ("email-newline", claims(email="alice@corp.example\n"), R.MALFORMED),
    ("groups-space-separated-string", claims(groups="eng support"), R.MALFORMED),
    ("groups-not-strings", claims(groups=["eng", 1]), R.MALFORMED),
    # 403: authentic, but not allowed to use the workflow
    ("email-unverified", claims(email_verified=False), R.EMAIL_UNVERIFIED),
    ("email-verified-string", claims(email_verified="true"), R.EMAIL_UNVERIFIED),
    ("email-verified-null", claims(email_verified=None), R.EMAIL_UNVERIFIED),
    ("personal-gmail", claims(email="alice@gmail.com"), R.PERSONAL_ACCOUNT),
    ("personal-gmail-uppercase", claims(email="Alice@GMail.COM"), R.PERSONAL_ACCOUNT),
    ("personal-proton", claims(email="alice@proton.me"), R.PERSONAL_ACCOUNT),
    ("lookalike-prefix", claims(email="alice@evilcorp.example"), R.DOMAIN_NOT_ALLOWED),
    ("lookalike-suffix", claims(email="alice@corp.example.attacker.test"), R.DOMAIN_NOT_ALLOWED),
    ("lookalike-subdomain", claims(email="alice@mail.corp.example"), R.DOMAIN_NOT_ALLOWED),
    ("lookalike-dash", claims(email="alice@corp-example"), R.DOMAIN_NOT_ALLOWED),
    ("lookalike-trailing-dot", claims(email="alice@corp.example."), R.DOMAIN_NOT_ALLOWED),
    ("lookalike-cyrillic", claims(email="alice@corp.\u0435xample"), R.DOMAIN_NOT_ALLOWED),
    ("other-company", claims(email="bob@partner.example"), R.DOMAIN_NOT_ALLOWED),
    ("no-groups", claims(groups=DROP), R.NO_ALLOWED_GROUP),
    ("empty-groups", claims(groups=[]), R.NO_ALLOWED_GROUP),
    ("groups-case-differs", claims(groups=["ENG"]), R.NO_ALLOWED_GROUP),
    ("groups-lookalike", claims(groups=["eng-contractors", "everyone"]), R.NO_ALLOWED_GROUP),
    # exceptions to the personal-account refusal
    ("exception-expired", claims(email="lapsed@gmail.com"), R.PERSONAL_ACCOUNT),
    ("exception-other-gmail-user", claims(email="someone@gmail.com"), R.PERSONAL_ACCOUNT),
    ("exception-still-needs-group", claims(email="contractor@gmail.com", groups=[]), R.NO_ALLOWED_GROUP),
    (
        "exception-only-for-consumer-domains",
        claims(email="contractor@partner.example", sub="00u-exception-sub"),
        R.DOMAIN_NOT_ALLOWED,
    ),
    ("exception-needs-verified-email", claims(email="contractor@gmail.com", email_verified=False), R.EMAIL_UNVERIFIED),
]


@pytest.mark.parametrize(("token_claims", "reason"), [c[1:] for c in REFUSALS], ids=[c[0] for c in REFUSALS])
def test_check_claims_refuses(token_claims: dict[str, Any], reason: RejectReason) -> None:
    with pytest.raises(IdentityRejected) as caught:
        check_claims(token_claims, SSO, PERSONAL, NOW)
    exc = caught.value
    assert exc.reason is reason
    assert exc.http_status == (403 if reason in _FORBIDDEN else 401)
    message = str(exc)
    assert "\n" not in message
    # Never echo what the token said: only the bundle's own settings appear in messages.
    for name in ("sub", "email", "iss", "aud"):
        value = token_claims.get(name)
        if isinstance(value, str) and value.strip() and value not in ISSUER + AUDIENCE:
            assert value.strip() not in message, name


_FORBIDDEN = {R.EMAIL_UNVERIFIED, R.PERSONAL_ACCOUNT, R.DOMAIN_NOT_ALLOWED, R.NO_ALLOWED_GROUP}


def test_every_reason_has_one_status() -> None:
    assert {r for r in RejectReason if r.http_status == 403} == _FORBIDDEN
    assert all(r.http_status in (401, 403) for r in RejectReason)
    # the table above (plus test_max_lifetime) exercises every reason check_claims produces
    produced = {c[2] for c in REFUSALS}
    elsewhere = {
        R.LIFETIME_TOO_LONG,
        R.MISSING_TOKEN,
        R.ALGORITHM_NOT_ALLOWED,
        R.KEY_MISMATCH,
        R.UNKNOWN_KEY,
        R.BAD_SIGNATURE,
    }
    assert produced | elsewhere == set(RejectReason)


ACCEPTED = [
    ("baseline", claims()),
    ("domain-uppercase", claims(email="Alice@CORP.Example")),
    ("audience-in-list", claims(aud=["api://other", AUDIENCE])),
    ("expired-within-leeway", claims(exp=T - 29)),
    ("nbf-within-leeway", claims(nbf=T + 29)),
    ("iat-within-leeway", claims(iat=T + 29)),
    ("float-dates", claims(iat=T - 0.5, exp=T + 0.5)),
    ("email-verified-absent", claims(email_verified=DROP)),
    ("one-allowed-group-among-others", claims(groups=["everyone", "support"])),
    ("exception-by-email", claims(email="contractor@gmail.com")),
    ("exception-by-email-any-case", claims(email="Contractor@Gmail.com")),
    ("exception-by-sub", claims(email="someone@outlook.com", sub="00u-exception-sub")),
]


@pytest.mark.parametrize("token_claims", [c[1] for c in ACCEPTED], ids=[c[0] for c in ACCEPTED])
def test_check_claims_accepts(token_claims: dict[str, Any]) -> None:
    identity = check_claims(token_claims, SSO, PERSONAL, NOW)
    assert identity.subject == token_claims["sub"]
    assert identity.issuer == ISSUER


def test_identity_fields() -> None:
    identity = check_claims(claims(email="Alice@CORP.example", groups=["eng", "wiki", "eng"]), SSO, PERSONAL, NOW)
    assert identity == Identity(
        subject="00u-alice",
        email="alice@corp.example",
        groups=("eng", "wiki"),
        issuer=ISSUER,
        expires_at=NOW + dt.timedelta(hours=1),
    )
    with pytest.raises(AttributeError):
        identity.email = "mallory@corp.example"  # type: ignore[misc]


def test_exception_expires_at_the_end_of_its_day() -> None:
    token = claims(email="someone@outlook.com", sub="00u-exception-sub")
    last_moment = dt.datetime(2025, 6, 1, 23, 59, 59, tzinfo=dt.UTC)
    check_claims(token | {"exp": T + 86400}, SSO, PERSONAL, last_moment)
    with pytest.raises(IdentityRejected) as caught:
        check_claims(token | {"exp": T + 86400}, SSO, PERSONAL, last_moment + dt.timedelta(seconds=1))
    assert caught.value.reason is R.PERSONAL_ACCOUNT


def test_max_lifetime() -> None:
    hour = dt.timedelta(hours=1)
    check_claims(claims(iat=T - 60, exp=T + 3540), SSO, PERSONAL, NOW, max_lifetime=hour)
    with pytest.raises(IdentityRejected) as caught:
        check_claims(claims(iat=T - 60, exp=T + 3541), SSO, PERSONAL, NOW, max_lifetime=hour)
    assert (caught.value.reason, caught.value.http_status) == (R.LIFETIME_TOO_LONG, 401)
    check_claims(claims(exp=T + 86400), SSO, PERSONAL, NOW)  # not limited unless asked


def test_leeway_is_configurable() -> None:
    with pytest.raises(IdentityRejected):
        check_claims(claims(exp=T - 5), SSO, PERSONAL, NOW, leeway=dt.timedelta(0))
    check_claims(claims(iat=T - 200, exp=T - 100), SSO, PERSONAL, NOW, leeway=dt.timedelta(minutes=2))


def test_check_claims_needs_an_aware_clock() -> None:
    with pytest.raises(ValueError):
        check_claims(claims(), SSO, PERSONAL, NOW.replace(tzinfo=None))


def test_claims_must_be_an_object() -> None:
    with pytest.raises(IdentityRejected) as caught:
        check_claims(["not", "claims"], SSO, PERSONAL, NOW)  # type: ignore[arg-type]
    assert caught.value.reason is R.MALFORMED


def test_unicode_case_folding_cannot_forge_an_allowed_domain() -> None:
    # str.lower() turns KELVIN SIGN into "k": a naive comparison would admit this lookalike.
    sso = SSO.model_copy(update={"allowed_email_domains": ["kestrel.example"]})
    assert "\u212aestrel.example".lower() == "kestrel.example"
    check_claims(claims(email="alice@KESTREL.example"), sso, PERSONAL, NOW)
    with pytest.raises(IdentityRejected) as caught:
        check_claims(claims(email="alice@\u212aestrel.example"), sso, PERSONAL, NOW)
    assert caught.value.reason is R.DOMAIN_NOT_ALLOWED


_LABEL = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.\u0435\u212a", min_size=1, max_size=30
)


@given(domain=_LABEL)
def test_only_the_exact_allowed_domain_is_admitted(domain: str) -> None:
    token = claims(email=f"alice@{domain}")
    exact = domain.isascii() and domain.lower() == "corp.example"
    if exact:
        assert check_claims(token, SSO, PERSONAL, NOW).email == "alice@corp.example"
    else:
        with pytest.raises(IdentityRejected) as caught:
            check_claims(token, SSO, PERSONAL, NOW)
        assert caught.value.http_status == 403


@given(prefix=_LABEL, suffix=_LABEL)
def test_allowed_domain_embedded_in_another_is_refused(prefix: str, suffix: str) -> None:
    for domain in (f"{prefix}corp.example", f"corp.example{suffix}", f"{prefix}.corp.example"):
        with pytest.raises(IdentityRejected):
            check_claims(claims(email=f"alice@{domain}"), SSO, PERSONAL, NOW)


def test_rejection_is_a_refusal_with_exit_code() -> None:
    exc = IdentityRejected(R.EXPIRED, "token has expired")
    assert isinstance(exc, RefusedError) and isinstance(exc, RolloutError)
    assert exc.exit_code == 3
    assert (exc.reason, exc.http_status, exc.message) == (R.EXPIRED, 401, "token has expired")
    assert str(exc) == "identity rejected (expired): token has expired"


# --- signatures with real keys --------------------------------------------------------------


def _pem(public_key: Any) -> bytes:
    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.fixture(scope="module")
def keys() -> dict[str, Any]:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    return {
        "rsa": rsa_key,
        "ec": ec_key,
        "attacker_rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "attacker_ec": ec.generate_private_key(ec.SECP256R1()),
        "rotated_ec": ec.generate_private_key(ec.SECP256R1()),
        "jwks": {
            "keys": [
                {**public_jwk(rsa_key.public_key()), "kid": "rsa-1"},
                {**public_jwk(ec_key.public_key()), "kid": "ec-1"},
            ]
        },
    }


def sign(private_key: Any, alg: str, kid: str | None, **changes: Any) -> str:
    headers = {"kid": kid} if kid is not None else {}
    return jwt.encode(claims(**changes), private_key, algorithm=alg, headers=headers)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def handmade(header: dict[str, Any], payload: bytes | dict[str, Any], signature: bytes) -> str:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return f"{_b64(json.dumps(header).encode())}.{_b64(body)}.{_b64(signature)}"


@pytest.fixture
def verifier(keys: dict[str, Any]) -> IdentityVerifier:
    return IdentityVerifier(SSO, PERSONAL, InMemoryJwks(keys["jwks"]), clock=lambda: NOW)


def rejected(verifier: IdentityVerifier, token: str) -> IdentityRejected:
    with pytest.raises(IdentityRejected) as caught:
        verifier.verify(token)
    message = str(caught.value)
    assert "\n" not in message
    for segment in token.split("."):
        if len(segment) >= 8:
            assert segment not in message
    return caught.value


@pytest.mark.parametrize(("key", "alg", "kid"), [("rsa", "RS256", "rsa-1"), ("ec", "ES256", "ec-1")])
def test_valid_signatures_are_accepted(
    verifier: IdentityVerifier, keys: dict[str, Any], key: str, alg: str, kid: str
) -> None:
    identity = verifier.verify(sign(keys[key], alg, kid))
    assert identity.email == "alice@corp.example"
    assert identity.groups == ("eng",)


@pytest.mark.parametrize(
    ("attacker", "alg", "kid"), [("attacker_rsa", "RS256", "rsa-1"), ("attacker_ec", "ES256", "ec-1")]
)
def test_forged_signature_with_a_known_kid_is_refused(
    verifier: IdentityVerifier, keys: dict[str, Any], attacker: str, alg: str, kid: str
) -> None:
    exc = rejected(verifier, sign(keys[attacker], alg, kid))
    assert (exc.reason, exc.http_status) == (R.BAD_SIGNATURE, 401)


def test_tampered_payload_is_refused(verifier: IdentityVerifier, keys: dict[str, Any]) -> None:
    header, _, signature = sign(keys["ec"], "ES256", "ec-1").split(".")
    payload = _b64(json.dumps(claims(email="mallory@corp.example")).encode())
    exc = rejected(verifier, f"{header}.{payload}.{signature}")
    assert (exc.reason, exc.http_status) == (R.BAD_SIGNATURE, 401)


@pytest.mark.parametrize("alg", ["none", "None", "NONE", ""])
def test_alg_none_is_refused(verifier: IdentityVerifier, alg: str) -> None:
    exc = rejected(verifier, handmade({"alg": alg, "kid": "ec-1"}, claims(), b""))
    assert (exc.reason, exc.http_status) == (R.ALGORITHM_NOT_ALLOWED, 401)


def test_alg_header_missing_is_refused(verifier: IdentityVerifier) -> None:
    exc = rejected(verifier, handmade({"kid": "ec-1"}, claims(), b"x" * 64))
    assert exc.http_status == 401


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
def test_hmac_with_the_public_key_as_secret_is_refused(
    verifier: IdentityVerifier, keys: dict[str, Any], alg: str
) -> None:
    # The classic confusion: the verifier's RSA public key used as an HMAC secret.
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    for secret in (_pem(keys["rsa"].public_key()), json.dumps(keys["jwks"]["keys"][0]).encode()):
        header = {"alg": alg, "kid": "rsa-1", "typ": "JWT"}
        unsigned = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims()).encode())}"
        mac = hmac.new(secret, unsigned.encode(), digest).digest()
        exc = rejected(verifier, f"{unsigned}.{_b64(mac)}")
        assert (exc.reason, exc.http_status) == (R.ALGORITHM_NOT_ALLOWED, 401)


@pytest.mark.parametrize("alg", ["ES384", "ES512", "PS256", "RS512", "EdDSA"])
def test_other_algorithms_are_refused(verifier: IdentityVerifier, alg: str) -> None:
    exc = rejected(verifier, handmade({"alg": alg, "kid": "rsa-1"}, claims(), b"x" * 64))
    assert (exc.reason, exc.http_status) == (R.ALGORITHM_NOT_ALLOWED, 401)


@pytest.mark.parametrize(("key", "alg", "kid"), [("rsa", "RS256", "ec-1"), ("ec", "ES256", "rsa-1")])
def test_algorithm_must_match_the_key_type(
    verifier: IdentityVerifier, keys: dict[str, Any], key: str, alg: str, kid: str
) -> None:
    exc = rejected(verifier, sign(keys[key], alg, kid))
    assert (exc.reason, exc.http_status) == (R.KEY_MISMATCH, 401)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"exp": T - 60}, R.EXPIRED),
        ({"nbf": T + 600}, R.NOT_YET_VALID),
        ({"iss": "https://login.attacker.test/oauth2/default"}, R.WRONG_ISSUER),
        ({"aud": "api://payroll"}, R.WRONG_AUDIENCE),
        ({"email": DROP}, R.MISSING_CLAIM),
    ],
    ids=["expired", "not-yet-valid", "wrong-issuer", "wrong-audience", "no-email"],
)
def test_validly_signed_but_unacceptable_tokens_are_401(
    verifier: IdentityVerifier, keys: dict[str, Any], changes: dict[str, Any], reason: RejectReason
) -> None:
    exc = rejected(verifier, sign(keys["ec"], "ES256", "ec-1", **changes))
    assert (exc.reason, exc.http_status) == (reason, 401)


def test_unknown_kid_is_refused(verifier: IdentityVerifier, keys: dict[str, Any]) -> None:
    exc = rejected(verifier, sign(keys["ec"], "ES256", "ec-2"))
    assert (exc.reason, exc.http_status) == (R.UNKNOWN_KEY, 401)


@pytest.mark.parametrize("kid", [None, "", 7, "k" * 300])
def test_unusable_kid_is_refused(verifier: IdentityVerifier, keys: dict[str, Any], kid: Any) -> None:
    header = {"alg": "ES256"} if kid is None else {"alg": "ES256", "kid": kid}
    token = handmade(header, claims(), b"x" * 64)
    assert rejected(verifier, token).http_status == 401


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"email": "alice@gmail.com"}, R.PERSONAL_ACCOUNT),
        ({"email": "alice@evilcorp.example"}, R.DOMAIN_NOT_ALLOWED),
        ({"email": "alice@corp.example.attacker.test"}, R.DOMAIN_NOT_ALLOWED),
        ({"groups": ["everyone"]}, R.NO_ALLOWED_GROUP),
        ({"email": "lapsed@gmail.com"}, R.PERSONAL_ACCOUNT),
        ({"email_verified": False}, R.EMAIL_UNVERIFIED),
    ],
    ids=["gmail", "lookalike-prefix", "lookalike-suffix", "no-group", "expired-exception", "unverified"],
)
def test_authentic_but_unauthorized_tokens_are_403(
    verifier: IdentityVerifier, keys: dict[str, Any], changes: dict[str, Any], reason: RejectReason
) -> None:
    exc = rejected(verifier, sign(keys["rsa"], "RS256", "rsa-1", **changes))
    assert (exc.reason, exc.http_status) == (reason, 403)


def test_unexpired_exception_admits(verifier: IdentityVerifier, keys: dict[str, Any]) -> None:
    token = sign(keys["ec"], "ES256", "ec-1", email="contractor@gmail.com")
    assert verifier.verify(token).email == "contractor@gmail.com"


def test_exception_expiry_uses_the_injected_clock(keys: dict[str, Any]) -> None:
    later = NOW + dt.timedelta(days=40)
    verifier = IdentityVerifier(SSO, PERSONAL, InMemoryJwks(keys["jwks"]), clock=lambda: later)
    t = int(later.timestamp())
    token = sign(keys["ec"], "ES256", "ec-1", email="contractor@gmail.com", iat=t - 5, exp=t + 60)
    assert rejected(verifier, token).reason is R.PERSONAL_ACCOUNT


@pytest.mark.parametrize(
    "token",
    [
        "abc",
        "a.b",
        "a.b.c",
        "a.b.c.d.e",  # a JWE (five parts) is not a signed token
        "....",
        "eyJ.eyJ.\u00e9",
        "x" * 20000 + ".a.b",
        "eyJhbGciOiJFUzI1NiJ9.e30.!!!",
    ],
)
def test_malformed_tokens_are_401(verifier: IdentityVerifier, token: str) -> None:
    exc = rejected(verifier, token)
    assert (exc.reason, exc.http_status) == (R.MALFORMED, 401)


def test_empty_token_is_401(verifier: IdentityVerifier) -> None:
    exc = rejected(verifier, "")
    assert (exc.reason, exc.http_status) == (R.MISSING_TOKEN, 401)


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b"[1, 2, 3]",
        b'"a string"',
        # a second "email" member: parsers disagree on which one wins, so refuse both
        json.dumps(claims())[:-1].encode() + b', "email": "mallory@gmail.com"}',
        json.dumps(claims())[:-1].encode() + b', "exp": NaN}',
    ],
    ids=["not-json", "array", "string", "duplicate-member", "nan"],
)
def test_signed_but_malformed_payload_is_401(verifier: IdentityVerifier, keys: dict[str, Any], payload: bytes) -> None:
    token = jwt.api_jws.encode(payload, keys["ec"], algorithm="ES256", headers={"kid": "ec-1"})
    exc = rejected(verifier, token)
    assert (exc.reason, exc.http_status) == (R.MALFORMED, 401)


def test_unknown_critical_header_is_refused(verifier: IdentityVerifier, keys: dict[str, Any]) -> None:
    token = jwt.encode(
        claims(),
        keys["ec"],
        algorithm="ES256",
        headers={"kid": "ec-1", "crit": ["exp-2099"], "exp-2099": True},
    )
    assert rejected(verifier, token).http_status == 401


def test_embedded_keys_in_the_header_are_ignored(verifier: IdentityVerifier, keys: dict[str, Any]) -> None:
    # jwk/jku in the header must never become the verification key.
    attacker = keys["attacker_ec"]
    token = jwt.encode(
        claims(),
        attacker,
        algorithm="ES256",
        headers={"kid": "ec-1", "jwk": public_jwk(attacker.public_key()), "jku": "https://attacker.test/keys"},
    )
    assert rejected(verifier, token).reason is R.BAD_SIGNATURE


def test_verifier_uses_the_injected_clock(keys: dict[str, Any]) -> None:
    token = sign(keys["ec"], "ES256", "ec-1")
    late = IdentityVerifier(SSO, PERSONAL, InMemoryJwks(keys["jwks"]), clock=lambda: NOW + dt.timedelta(hours=2))
    assert rejected(late, token).reason is R.EXPIRED
    strict = IdentityVerifier(
        SSO,
        PERSONAL,
        InMemoryJwks(keys["jwks"]),
        clock=lambda: NOW + dt.timedelta(seconds=3605),
        leeway=dt.timedelta(0),
    )
    assert rejected(strict, token).reason is R.EXPIRED


@pytest.mark.parametrize("leeway", [dt.timedelta(seconds=-1), dt.timedelta(hours=1)])
def test_unreasonable_leeway_is_invalid(keys: dict[str, Any], leeway: dt.timedelta) -> None:
    with pytest.raises(InvalidInput):
        IdentityVerifier(SSO, PERSONAL, InMemoryJwks(keys["jwks"]), leeway=leeway)


@pytest.mark.parametrize(
    ("header", "expected"),
    [("Bearer abc.def.ghi", "abc.def.ghi"), ("bearer abc.def.ghi", "abc.def.ghi")],
)
def test_bearer_token(header: str, expected: str) -> None:
    assert bearer_token(header) == expected


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "abc.def"])
def test_bearer_token_missing(header: str | None) -> None:
    with pytest.raises(IdentityRejected) as caught:
        bearer_token(header)
    assert (caught.value.reason, caught.value.http_status) == (R.MISSING_TOKEN, 401)


# --- parsing key sets -----------------------------------------------------------------------


def test_parse_jwks_keeps_only_usable_signing_keys(keys: dict[str, Any]) -> None:
    rsa_jwk, ec_jwk = keys["jwks"]["keys"]
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    p384 = ec.generate_private_key(ec.SECP384R1())
    private_ec = {**ec_jwk, "kid": "leaked", "d": "AAAA"}
    document = {
        "keys": [
            rsa_jwk,
            ec_jwk,
            {**ec_jwk, "kid": None},
            {**ec_jwk, "kid": "enc", "use": "enc"},
            {**ec_jwk, "kid": "wrong-alg", "alg": "ES384"},
            {**rsa_jwk, "kid": "rsa-claims-hs", "alg": "HS256"},
            {**ec_jwk, "kid": "no-verify", "key_ops": ["encrypt"]},
            {**public_jwk(small.public_key()), "kid": "rsa-1024"},
            {
                "kty": "EC",
                "crv": "P-384",
                "kid": "p384",
                "x": _b64(p384.public_key().public_numbers().x.to_bytes(48, "big")),
                "y": _b64(p384.public_key().public_numbers().y.to_bytes(48, "big")),
            },
            {"kty": "oct", "kid": "hmac", "k": _b64(b"secret" * 8)},
            private_ec,
            {**ec_jwk, "kid": "bad-point", "x": _b64(b"\x01" * 32)},
            "not an object",
        ]
    }
    parsed = parse_jwks(document)
    assert set(parsed) == {"rsa-1", "ec-1"}
    assert parsed["rsa-1"].algorithm_name == "RS256"
    assert parsed["ec-1"].algorithm_name == "ES256"


def test_parse_jwks_drops_ambiguous_kids(keys: dict[str, Any]) -> None:
    rsa_jwk, ec_jwk = keys["jwks"]["keys"]
    parsed = parse_jwks({"keys": [rsa_jwk, {**ec_jwk, "kid": "rsa-1"}, ec_jwk]})
    assert set(parsed) == {"ec-1"}


@pytest.mark.parametrize(
    "document",
    [b"not json", b"[]", b'{"keys": {}}', b'{"keys": []}', b'{"keys": [{"kty": "oct", "k": "AA"}]}', b'{"keys": NaN}'],
)
def test_parse_jwks_rejects_non_key_sets(document: bytes) -> None:
    with pytest.raises(ValueError):
        parse_jwks(document)


def test_in_memory_source(keys: dict[str, Any]) -> None:
    source = InMemoryJwks(keys["jwks"])
    assert isinstance(source, JwksSource)
    assert source.get_key("ec-1").algorithm_name == "ES256"
    with pytest.raises(UnknownKeyId):
        source.get_key("nope")
    source.set_keys({"keys": [keys["jwks"]["keys"][0]]})
    with pytest.raises(UnknownKeyId):
        source.get_key("ec-1")


# --- FileJwks: caching, rotation, failing closed --------------------------------------------


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _write(path: Any, *jwks: dict[str, Any]) -> None:
    path.write_text(json.dumps({"keys": list(jwks)}))


def test_file_jwks_caches_and_reloads_after_ttl(tmp_path: Any, keys: dict[str, Any]) -> None:
    path = tmp_path / "jwks.json"
    rsa_jwk, ec_jwk = keys["jwks"]["keys"]
    _write(path, ec_jwk)
    clock = FakeMonotonic()
    source = FileJwks(path, ttl=dt.timedelta(minutes=10), monotonic=clock)
    verifier = IdentityVerifier(SSO, PERSONAL, source, clock=lambda: NOW)
    token = sign(keys["ec"], "ES256", "ec-1")
    for _ in range(5):
        verifier.verify(token)
    assert source.fetch_count == 1
    clock.now += 601
    verifier.verify(token)
    assert source.fetch_count == 2


def test_file_jwks_rotation_refetches_once_rate_limited(tmp_path: Any, keys: dict[str, Any]) -> None:
    path = tmp_path / "jwks.json"
    _, ec_jwk = keys["jwks"]["keys"]
    rotated = {**public_jwk(keys["rotated_ec"].public_key()), "kid": "ec-2"}
    _write(path, ec_jwk)
    clock = FakeMonotonic()
    source = FileJwks(path, min_refetch_interval=dt.timedelta(seconds=30), monotonic=clock)
    verifier = IdentityVerifier(SSO, PERSONAL, source, clock=lambda: NOW)
    verifier.verify(sign(keys["ec"], "ES256", "ec-1"))
    assert source.fetch_count == 1

    _write(path, ec_jwk, rotated)  # the IdP publishes a new key and starts using it
    clock.now += 1
    assert verifier.verify(sign(keys["rotated_ec"], "ES256", "ec-2")).subject == "00u-alice"
    assert source.fetch_count == 2

    ghost = sign(keys["attacker_ec"], "ES256", "ghost")
    for _ in range(10):  # made-up kids do not turn into fetches
        assert rejected(verifier, ghost).reason is R.UNKNOWN_KEY
    assert source.fetch_count == 2
    clock.now += 31
    assert rejected(verifier, ghost).reason is R.UNKNOWN_KEY
    assert source.fetch_count == 3


def test_file_jwks_missing_file_fails_closed(tmp_path: Any, keys: dict[str, Any]) -> None:
    verifier = IdentityVerifier(SSO, PERSONAL, FileJwks(tmp_path / "absent.json"), clock=lambda: NOW)
    with pytest.raises(BackendUnavailable) as caught:
        verifier.verify(sign(keys["ec"], "ES256", "ec-1"))
    assert "absent.json" in str(caught.value)
    assert caught.value.exit_code == 5


@pytest.mark.parametrize("content", ["{", '{"keys": []}', '{"keys": [{"kty": "oct", "k": "AA"}]}'])
def test_file_jwks_unusable_content_fails_closed(tmp_path: Any, keys: dict[str, Any], content: str) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(content)
    verifier = IdentityVerifier(SSO, PERSONAL, FileJwks(path), clock=lambda: NOW)
    with pytest.raises(BackendUnavailable):
        verifier.verify(sign(keys["ec"], "ES256", "ec-1"))


def test_stale_keys_are_never_served(tmp_path: Any, keys: dict[str, Any]) -> None:
    path = tmp_path / "jwks.json"
    _write(path, keys["jwks"]["keys"][1])
    clock = FakeMonotonic()
    source = FileJwks(path, ttl=dt.timedelta(minutes=10), monotonic=clock)
    verifier = IdentityVerifier(SSO, PERSONAL, source, clock=lambda: NOW)
    token = sign(keys["ec"], "ES256", "ec-1")
    verifier.verify(token)
    path.unlink()
    clock.now += 599
    verifier.verify(token)  # still within the TTL
    clock.now += 2
    with pytest.raises(BackendUnavailable):
        verifier.verify(token)


def test_failed_fetches_back_off(tmp_path: Any, keys: dict[str, Any]) -> None:
    path = tmp_path / "jwks.json"
    clock = FakeMonotonic()
    source = FileJwks(path, failure_backoff=dt.timedelta(seconds=5), monotonic=clock)
    for _ in range(3):
        with pytest.raises(BackendUnavailable):
            source.get_key("ec-1")
    assert source.fetch_count == 1
    _write(path, keys["jwks"]["keys"][1])
    clock.now += 5
    assert source.get_key("ec-1").algorithm_name == "ES256"
    assert source.fetch_count == 2


def test_concurrent_lookups_fetch_once(tmp_path: Any, keys: dict[str, Any]) -> None:
    path = tmp_path / "jwks.json"
    _write(path, *keys["jwks"]["keys"])
    source = FileJwks(path)
    errors: list[BaseException] = []

    def look() -> None:
        try:
            for _ in range(50):
                source.get_key("rsa-1")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=look) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert source.fetch_count == 1


# --- UrlJwks against a local http.server ----------------------------------------------------


class JwksServer:
    def __init__(self) -> None:
        self.body = b"{}"
        self.status = 200
        self.location: str | None = None
        self.hits = 0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                server.hits += 1
                if server.location:
                    self.send_response(302)
                    self.send_header("Location", server.location)
                    self.end_headers()
                    return
                self.send_response(server.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(server.body)))
                self.end_headers()
                self.wfile.write(server.body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/oauth2/default/v1/keys"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def serve(self, *jwks: dict[str, Any]) -> None:
        self.body = json.dumps({"keys": list(jwks)}).encode()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture
def jwks_server() -> Iterator[JwksServer]:
    server = JwksServer()
    yield server
    server.close()


def test_url_jwks_fetches_caches_and_follows_rotation(jwks_server: JwksServer, keys: dict[str, Any]) -> None:
    _, ec_jwk = keys["jwks"]["keys"]
    rotated = {**public_jwk(keys["rotated_ec"].public_key()), "kid": "ec-2"}
    jwks_server.serve(ec_jwk)
    clock = FakeMonotonic()
    source = UrlJwks(jwks_server.url, timeout=2, monotonic=clock)
    verifier = IdentityVerifier(SSO, PERSONAL, source, clock=lambda: NOW)

    old_token = sign(keys["ec"], "ES256", "ec-1")
    verifier.verify(old_token)
    verifier.verify(old_token)
    assert jwks_server.hits == 1

    jwks_server.serve(ec_jwk, rotated)
    new_token = sign(keys["rotated_ec"], "ES256", "ec-2")
    assert verifier.verify(new_token).email == "alice@corp.example"
    assert jwks_server.hits == 2  # exactly one refetch for the new kid
    verifier.verify(new_token)
    verifier.verify(old_token)
    assert jwks_server.hits == 2

    ghost = sign(keys["attacker_ec"], "ES256", "ghost")
    for _ in range(5):
        assert rejected(verifier, ghost).reason is R.UNKNOWN_KEY
    assert jwks_server.hits == 2


def test_url_jwks_unreachable_fails_closed(keys: dict[str, Any]) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    source = UrlJwks(f"http://127.0.0.1:{port}/keys", timeout=2)
    verifier = IdentityVerifier(SSO, PERSONAL, source, clock=lambda: NOW)
    with pytest.raises(BackendUnavailable) as caught:
        verifier.verify(sign(keys["ec"], "ES256", "ec-1"))
    assert f"127.0.0.1:{port}" in str(caught.value)


def test_url_jwks_http_error_fails_closed(jwks_server: JwksServer, keys: dict[str, Any]) -> None:
    jwks_server.status = 500
    with pytest.raises(BackendUnavailable) as caught:
        UrlJwks(jwks_server.url).get_key("ec-1")
    assert "HTTP 500" in str(caught.value)


def test_url_jwks_refuses_a_downgrade_redirect(jwks_server: JwksServer) -> None:
    jwks_server.location = "http://jwks.attacker.test/keys"
    with pytest.raises(BackendUnavailable) as caught:
        UrlJwks(jwks_server.url, timeout=2).get_key("ec-1")
    assert "not https" in str(caught.value)
    assert jwks_server.hits == 1


def test_url_jwks_refuses_an_oversized_document(jwks_server: JwksServer) -> None:
    jwks_server.body = b" " * (1024 * 1024 + 1)
    with pytest.raises(BackendUnavailable):
        UrlJwks(jwks_server.url).get_key("ec-1")


@pytest.mark.parametrize(
    "url",
    [
        "http://login.corp.example/oauth2/default/v1/keys",
        "ftp://login.corp.example/keys",
        "file:///etc/hosts",
        "https:///no-host",
        "login.corp.example/keys",
    ],
)
def test_url_jwks_needs_https(url: str) -> None:
    with pytest.raises(InvalidInput):
        UrlJwks(url)


def test_open_jwks_picks_the_source(tmp_path: Any) -> None:
    assert isinstance(open_jwks("https://login.corp.example/oauth2/default/v1/keys"), UrlJwks)
    assert isinstance(open_jwks(tmp_path / "jwks.json"), FileJwks)
    assert isinstance(open_jwks(str(tmp_path / "jwks.json")), FileJwks)
