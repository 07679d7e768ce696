"""The local dev IdP: key files, thumbprints, and tokens the real verifier accepts."""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
import threading
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from controller.adapters.devidp import DevIdp, dev_subject, dev_token, jwk_thumbprint, public_jwk
from controller.adapters.jwks import FileJwks
from controller.bundle.models import PersonalAccounts, Sso
from controller.bundle.yamlio import load_yaml
from controller.errors import InvalidInput
from controller.gateway.identity import IdentityRejected, IdentityVerifier, RejectReason

ISSUER = "https://login.corp.example/oauth2/default"
AUDIENCE = "api://internal-docs-qa"
SSO = Sso.model_validate(
    {
        "required": True,
        "idp": {"name": "Okta", "issuer": ISSUER, "audience": AUDIENCE, "jwks_uri": ISSUER + "/v1/keys", "max_token_lifetime": "24h"},
        "allowed_email_domains": ["corp.example"],
        "allowed_groups": ["eng", "ai-pilot"],
        "offboarding": "SCIM deactivation on the last day.",
    }
)
PERSONAL = PersonalAccounts.model_validate({"allowed": False, "consumer_domains": ["gmail.com"], "exceptions": []})


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def verifier_for(idp: DevIdp) -> IdentityVerifier:
    return IdentityVerifier(SSO, PERSONAL, FileJwks(idp.jwks_path))


def test_rfc7638_thumbprint_vector() -> None:
    # RFC 7638 section 3.1: the worked example and its published thumbprint.
    jwk = {
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29",
    }
    assert jwk_thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_thumbprint_needs_the_required_members() -> None:
    with pytest.raises(ValueError):
        jwk_thumbprint({"kty": "EC", "crv": "P-256", "x": "AA"})
    with pytest.raises(ValueError):
        jwk_thumbprint({"kty": "weird"})


def test_public_jwk_of_a_p256_key() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = public_jwk(key.public_key())
    assert set(jwk) == {"kty", "crv", "x", "y", "kid", "use", "alg"}
    assert (jwk["kty"], jwk["crv"], jwk["alg"], jwk["use"]) == ("EC", "P-256", "ES256", "sig")
    assert len(jwk["x"]) == len(jwk["y"]) == 43  # 32 octets, leading zeros kept
    assert jwk["kid"] == jwk_thumbprint(jwk)
    with pytest.raises(ValueError):
        public_jwk(ec.generate_private_key(ec.SECP384R1()).public_key())


def test_ensure_creates_a_private_key_and_a_public_jwks(tmp_path: Path) -> None:
    idp = DevIdp(tmp_path)
    idp.ensure()
    assert idp.key_path == tmp_path / "idp" / "signing-key.pem"
    assert idp.jwks_path == tmp_path / "idp" / "jwks.json"
    assert mode(idp.key_path) == 0o600
    assert mode(idp.directory) == 0o700
    assert mode(idp.jwks_path) & 0o022 == 0
    assert b"PRIVATE KEY" in idp.key_path.read_bytes()

    document = json.loads(idp.jwks_path.read_text())
    (jwk,) = document["keys"]
    assert "d" not in jwk  # public material only
    assert (jwk["kty"], jwk["crv"], jwk["alg"]) == ("EC", "P-256", "ES256")
    assert jwk["kid"] == jwk_thumbprint(jwk) == idp.kid
    assert sorted(p.name for p in idp.directory.iterdir()) == ["jwks.json", "signing-key.pem"]


def test_key_is_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        DevIdp(tmp_path / "open").ensure()
    finally:
        os.umask(old)
    assert mode(tmp_path / "open" / "idp" / "signing-key.pem") == 0o600
    old = os.umask(0o077)
    try:
        DevIdp(tmp_path / "closed").ensure()
    finally:
        os.umask(old)
    assert mode(tmp_path / "closed" / "idp" / "jwks.json") == 0o644


def test_ensure_is_idempotent(tmp_path: Path) -> None:
    idp = DevIdp(tmp_path)
    idp.ensure()
    key_before, jwks_before = idp.key_path.stat(), idp.jwks_path.stat()
    key_bytes = idp.key_path.read_bytes()
    kid = idp.kid

    idp.ensure()
    again = DevIdp(tmp_path)
    again.ensure()
    assert again.kid == kid
    assert idp.key_path.read_bytes() == key_bytes
    assert idp.key_path.stat().st_ino == key_before.st_ino
    assert idp.jwks_path.stat().st_ino == jwks_before.st_ino  # not even rewritten
    assert sorted(p.name for p in idp.directory.iterdir()) == ["jwks.json", "signing-key.pem"]


def test_concurrent_ensure_agrees_on_one_key(tmp_path: Path) -> None:
    barrier = threading.Barrier(8)
    kids: list[str] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            idp = DevIdp(tmp_path)
            idp.ensure()
            kids.append(idp.kid)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(set(kids)) == 1
    assert json.loads((tmp_path / "idp" / "jwks.json").read_text())["keys"][0]["kid"] == kids[0]
    assert sorted(p.name for p in (tmp_path / "idp").iterdir()) == ["jwks.json", "signing-key.pem"]


def test_a_losing_creator_never_replaces_the_key(tmp_path: Path) -> None:
    first, second = DevIdp(tmp_path), DevIdp(tmp_path)
    first.directory.mkdir(parents=True)
    first._create_key()
    key_bytes = first.key_path.read_bytes()
    second._create_key()  # as if it had checked for the key just before the first wrote it
    assert first.key_path.read_bytes() == key_bytes
    assert sorted(p.name for p in first.directory.iterdir()) == ["signing-key.pem"]


def test_jwks_is_repaired_from_the_key(tmp_path: Path) -> None:
    idp = DevIdp(tmp_path)
    idp.ensure()
    good = idp.jwks_path.read_text()
    other = public_jwk(ec.generate_private_key(ec.SECP256R1()).public_key())
    idp.jwks_path.write_text(json.dumps({"keys": [other]}))
    DevIdp(tmp_path).ensure()
    assert idp.jwks_path.read_text() == good
    idp.jwks_path.unlink()
    DevIdp(tmp_path).ensure()
    assert idp.jwks_path.read_text() == good


def test_existing_key_of_another_type_is_not_replaced(tmp_path: Path) -> None:
    DevIdp(tmp_path).ensure()
    key_bytes = (tmp_path / "idp" / "signing-key.pem").read_bytes()
    with pytest.raises(InvalidInput, match="never replaced"):
        DevIdp(tmp_path, algorithm="RS256").ensure()
    assert (tmp_path / "idp" / "signing-key.pem").read_bytes() == key_bytes


def test_readable_key_is_refused_not_used(tmp_path: Path) -> None:
    idp = DevIdp(tmp_path)
    idp.ensure()
    os.chmod(idp.key_path, 0o644)
    with pytest.raises(InvalidInput, match="chmod 600"):
        DevIdp(tmp_path).ensure()


def test_garbage_key_file_is_refused_not_overwritten(tmp_path: Path) -> None:
    key_path = tmp_path / "idp" / "signing-key.pem"
    key_path.parent.mkdir(parents=True)
    key_path.write_bytes(b"not a key")
    os.chmod(key_path, 0o600)
    with pytest.raises(InvalidInput, match="not an unencrypted PEM"):
        DevIdp(tmp_path).ensure()
    assert key_path.read_bytes() == b"not a key"


def test_unknown_algorithm_is_invalid(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput):
        DevIdp(tmp_path, algorithm="HS256")


@pytest.mark.parametrize("algorithm", ["ES256", "RS256"])
def test_minted_token_passes_the_real_verifier(tmp_path: Path, algorithm: str) -> None:
    idp = DevIdp(tmp_path, algorithm=algorithm)
    token = idp.mint("alice@corp.example", ["eng"], issuer=ISSUER, audience=AUDIENCE)
    assert jwt.get_unverified_header(token) == {"alg": algorithm, "kid": idp.kid, "typ": "JWT"}
    identity = verifier_for(idp).verify(token)
    assert identity.email == "alice@corp.example"
    assert identity.groups == ("eng",)
    assert identity.subject == dev_subject("alice@corp.example")
    assert identity.issuer == ISSUER


def test_minted_claims(tmp_path: Path) -> None:
    now = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC)
    token = DevIdp(tmp_path).mint(
        "alice@corp.example",
        ["eng", "ai-pilot"],
        issuer=ISSUER,
        audience=AUDIENCE,
        ttl=dt.timedelta(minutes=5),
        now=now,
        subject="00u-alice",
    )
    claims = jwt.decode(token, options={"verify_signature": False})
    t = int(now.timestamp())
    assert claims["iss"] == ISSUER and claims["aud"] == AUDIENCE
    assert claims["sub"] == "00u-alice"
    assert claims["email_verified"] is True
    assert claims["groups"] == ["eng", "ai-pilot"]
    assert (claims["iat"], claims["nbf"], claims["exp"]) == (t, t, t + 300)
    assert claims["jti"]


def test_default_subject_is_stable_and_opaque() -> None:
    subject = dev_subject("alice@corp.example")
    assert subject == dev_subject("Alice@CORP.example")
    assert subject != dev_subject("bob@corp.example")
    assert "alice" not in subject and subject.startswith("dev-")


def test_extra_claims_make_refusable_tokens(tmp_path: Path) -> None:
    idp = DevIdp(tmp_path)
    token = idp.mint(
        "alice@corp.example",
        ["eng"],
        issuer=ISSUER,
        audience=AUDIENCE,
        extra_claims={"email_verified": False},
    )
    with pytest.raises(IdentityRejected) as caught:
        verifier_for(idp).verify(token)
    assert (caught.value.reason, caught.value.http_status) == (RejectReason.EMAIL_UNVERIFIED, 403)


@pytest.mark.parametrize(
    ("email", "groups", "reason"),
    [
        ("alice@gmail.com", ["eng"], RejectReason.PERSONAL_ACCOUNT),
        ("alice@corp.example.attacker.test", ["eng"], RejectReason.DOMAIN_NOT_ALLOWED),
        ("alice@corp.example", ["finance"], RejectReason.NO_ALLOWED_GROUP),
    ],
)
def test_dev_tokens_get_no_special_treatment(
    tmp_path: Path, email: str, groups: list[str], reason: RejectReason
) -> None:
    idp = DevIdp(tmp_path)
    token = idp.mint(email, groups, issuer=ISSUER, audience=AUDIENCE)
    with pytest.raises(IdentityRejected) as caught:
        verifier_for(idp).verify(token)
    assert caught.value.reason is reason


def test_expired_dev_token_is_refused(tmp_path: Path) -> None:
    idp = DevIdp(tmp_path)
    token = idp.mint(
        "alice@corp.example",
        ["eng"],
        issuer=ISSUER,
        audience=AUDIENCE,
        now=dt.datetime.now(dt.UTC) - dt.timedelta(hours=2),
    )
    with pytest.raises(IdentityRejected) as caught:
        verifier_for(idp).verify(token)
    assert caught.value.reason is RejectReason.EXPIRED


def test_another_state_dirs_key_is_not_trusted(tmp_path: Path) -> None:
    mine, theirs = DevIdp(tmp_path / "mine"), DevIdp(tmp_path / "theirs")
    mine.ensure()
    token = theirs.mint("alice@corp.example", ["eng"], issuer=ISSUER, audience=AUDIENCE)
    with pytest.raises(IdentityRejected) as caught:
        verifier_for(mine).verify(token)
    assert (caught.value.reason, caught.value.http_status) == (RejectReason.UNKNOWN_KEY, 401)


def test_mint_checks_its_arguments(tmp_path: Path) -> None:
    idp = DevIdp(tmp_path)
    with pytest.raises(InvalidInput):
        idp.mint("alice@corp.example", "eng", issuer=ISSUER, audience=AUDIENCE)
    with pytest.raises(InvalidInput):
        idp.mint("alice@corp.example", ["eng"], issuer=ISSUER, audience=AUDIENCE, ttl=dt.timedelta(0))
    with pytest.raises(InvalidInput):
        idp.mint("alice@corp.example", ["eng"], issuer=ISSUER, audience=AUDIENCE, now=dt.datetime(2025, 6, 1, 12, 0))


def test_dev_token_uses_the_bundles_issuer_and_audience(tmp_path: Path) -> None:
    token = dev_token(tmp_path, SSO, email="alice@corp.example", groups="eng, ai-pilot")
    identity = verifier_for(DevIdp(tmp_path)).verify(token)
    assert identity.groups == ("eng", "ai-pilot")
    assert mode(tmp_path / "idp" / "signing-key.pem") == 0o600


def test_shipped_bundle_settings_with_a_dev_token(tmp_path: Path) -> None:
    workflow = Path(__file__).resolve().parent.parent / "workflows/internal-docs-qa/workflow.yaml"
    data = load_yaml(workflow).data
    sso = Sso.model_validate(data["sso"])
    personal = PersonalAccounts.model_validate(data["personal_accounts"])
    idp = DevIdp(tmp_path)
    verifier = IdentityVerifier(sso, personal, FileJwks(idp.jwks_path), max_lifetime=dt.timedelta(hours=1))
    token = dev_token(tmp_path, sso, email="alice@corp.example", groups=["eng"])
    assert verifier.verify(token).email == "alice@corp.example"
    personal_token = dev_token(tmp_path, sso, email="alice@googlemail.com", groups=["eng"])
    with pytest.raises(IdentityRejected) as caught:
        verifier.verify(personal_token)
    assert (caught.value.reason, caught.value.http_status) == (RejectReason.PERSONAL_ACCOUNT, 403)
