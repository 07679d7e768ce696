"""Signing adapters: the evaluator's (and the controller's) key, locally or in AWS KMS.

Evidence in the store is only as trustworthy as whoever can write the store; a signature moves the
trust to whoever holds a key. Two backends, one envelope:

- ``LocalSigner``: an ECDSA P-256 key at ``<state>/keys/signing-key.pem``, created once (mode
  0600, create-only, never replaced) and refused when other users can read it. Its ``key_id`` is
  ``local:<RFC 7638 thumbprint of the public key>``.
- ``KmsSigner``: an AWS KMS asymmetric key (``ECC_NIST_P256``, ``SIGN_VERIFY``): the private key
  never leaves KMS; signing needs ``kms:Sign``, verifying only the public key
  (``kms:GetPublicKey``, fetched once). Its ``key_id`` is the key's ARN.

The envelope (``sign``), stored create-only beside what it signs::

    {"schema": "ai-rollout.signature/v1", "key_id": "...", "algorithm": "ECDSA_SHA_256",
     "sha256": "<hex of the signed bytes>", "signature": "<base64 DER>"}

``verify(signer, data, envelope)`` returns ``None`` when ``envelope`` is a valid signature of
exactly ``data`` by the signer's key, else one line saying what is wrong. Only the configured
key is trusted: a result signed by any other key (a key an attacker made) is refused.
``open_signer(spec, state_dir)`` picks the backend: ``None``/``local`` or ``kms:<key id or ARN>``
(env ``ROLLOUT_SIGNING_KEY``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from controller.adapters.atomic import create_once
from controller.adapters.devidp import public_jwk
from controller.errors import BackendUnavailable, InvalidInput

__all__ = [
    "ALGORITHM",
    "SIGNATURE_SCHEMA",
    "KmsSigner",
    "LocalSigner",
    "Signer",
    "open_signer",
    "sign",
    "verify",
]

SIGNATURE_SCHEMA = "ai-rollout.signature/v1"
ALGORITHM = "ECDSA_SHA_256"
# The signed message is the 32-byte SHA-256 of the data, signed with ECDSA over SHA-256: KMS
# ``MessageType=RAW`` does exactly that, so a KMS signature and a local one verify the same way.
_ECDSA = ec.ECDSA(hashes.SHA256())


class Signer(Protocol):
    key_id: str

    def sign_digest(self, digest: bytes) -> bytes:
        """A DER ECDSA-SHA256 signature whose message is ``digest`` (the SHA-256 of the data)."""
        ...

    def public_key(self) -> ec.EllipticCurvePublicKey: ...


class _Seals:
    """What evidence writers and readers call (``controller.evals.scoring``, the audit checkpoints)."""

    def seal(self, data: bytes) -> bytes:
        return sign(self, data)  # type: ignore[arg-type]

    def check(self, data: bytes, envelope: bytes) -> str | None:
        return verify(self, data, envelope)  # type: ignore[arg-type]


class LocalSigner(_Seals):
    """A P-256 key under the state directory (mode 0600)."""

    def __init__(self, state_dir: Path) -> None:
        self.path = Path(state_dir) / "keys" / "signing-key.pem"
        self._key: ec.EllipticCurvePrivateKey | None = None

    def _load(self, *, create: bool) -> ec.EllipticCurvePrivateKey:
        if self._key is not None:
            return self._key
        if not self.path.exists():
            if not create:
                raise InvalidInput(
                    f"there is no signing key at {self.path}: nothing signed here can be verified "
                    "(run the eval with this --state, or set ROLLOUT_SIGNING_KEY)."
                )
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            create_once(self.path, pem, mode=0o600)  # a concurrent creator wins; we load its key
        info = os.stat(self.path)
        if not stat.S_ISREG(info.st_mode) or info.st_mode & 0o077:
            raise InvalidInput(
                f"{self.path} is not a regular file readable by its owner only "
                f"(mode {stat.S_IMODE(info.st_mode):04o}); run: chmod 600 {self.path}"
            )
        try:
            key = serialization.load_pem_private_key(self.path.read_bytes(), password=None)
        except (ValueError, TypeError):
            raise InvalidInput(f"{self.path} is not an unencrypted PEM private key.") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
            raise InvalidInput(f"{self.path} must hold a P-256 EC key.")
        self._key = key
        return key

    @property
    def key_id(self) -> str:
        return "local:" + public_jwk(self.public_key())["kid"]

    def sign_digest(self, digest: bytes) -> bytes:
        return self._load(create=True).sign(digest, _ECDSA)

    def public_key(self) -> ec.EllipticCurvePublicKey:
        # Verifying must not create a key: a fresh key would trust nothing ever signed.
        return (self._key or self._load(create=False)).public_key()

    def describe(self) -> str:
        return f"local key {self.path}"


class KmsSigner(_Seals):
    """An AWS KMS asymmetric signing key (ECC_NIST_P256)."""

    def __init__(self, key: str, client: Any = None) -> None:
        self.key = key
        self._client = client
        self._public: ec.EllipticCurvePublicKey | None = None
        self._arn: str | None = None

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config

            self._client = boto3.client(
                "kms", config=Config(connect_timeout=5, read_timeout=10, retries={"max_attempts": 3})
            )
        return self._client

    def _call(self, name: str, **kwargs: Any) -> Any:
        try:
            return getattr(self.client, name)(**kwargs)
        except Exception as exc:  # botocore raises many types; all mean "no signature possible"
            raise BackendUnavailable(f"KMS {name} on key {self.key} failed: {exc}.") from exc

    def _fetch(self) -> None:
        got = self._call("get_public_key", KeyId=self.key)
        if (
            got.get("KeySpec", got.get("CustomerMasterKeySpec")) != "ECC_NIST_P256"
            or got.get("KeyUsage") != "SIGN_VERIFY"
        ):
            raise InvalidInput(f"KMS key {self.key} must be an ECC_NIST_P256 SIGN_VERIFY key.")
        public = serialization.load_der_public_key(got["PublicKey"])
        assert isinstance(public, ec.EllipticCurvePublicKey)
        # the ARN whatever alias or id named the key (GetPublicKey returns it on AWS, not on every fake)
        arn = str(got["KeyId"])
        if not arn.startswith("arn:"):
            arn = str(self._call("describe_key", KeyId=self.key)["KeyMetadata"]["Arn"])
        self._public, self._arn = public, arn

    @property
    def key_id(self) -> str:
        if self._arn is None:
            self._fetch()
        assert self._arn is not None
        return self._arn

    def sign_digest(self, digest: bytes) -> bytes:
        got = self._call("sign", KeyId=self.key, Message=digest, MessageType="RAW", SigningAlgorithm=ALGORITHM)
        return bytes(got["Signature"])

    def public_key(self) -> ec.EllipticCurvePublicKey:
        if self._public is None:
            self._fetch()
        assert self._public is not None
        return self._public

    def describe(self) -> str:
        return f"KMS key {self.key}"


def sign(signer: Signer, data: bytes) -> bytes:
    """The signature envelope of ``data`` (canonical JSON bytes)."""
    digest = hashlib.sha256(data).digest()
    signature = signer.sign_digest(digest)  # first: a local key is created on its first signature
    envelope = {
        "schema": SIGNATURE_SCHEMA,
        "key_id": signer.key_id,
        "algorithm": ALGORITHM,
        "sha256": digest.hex(),
        "signature": base64.b64encode(signature).decode("ascii"),
    }
    return json.dumps(envelope, sort_keys=True, separators=(",", ":")).encode("utf-8")


def verify(signer: Signer, data: bytes, envelope: bytes) -> str | None:
    """``None`` when ``envelope`` signs exactly ``data`` with ``signer``'s key, else why not."""
    try:
        doc = json.loads(envelope)
    except (UnicodeDecodeError, ValueError):
        return "its signature is not JSON"
    if not isinstance(doc, dict) or doc.get("schema") != SIGNATURE_SCHEMA or doc.get("algorithm") != ALGORITHM:
        return "its signature is not an ai-rollout ECDSA_SHA_256 signature"
    if doc.get("key_id") != signer.key_id:
        return f"it is signed by key {str(doc.get('key_id'))[:80]!r}, not the trusted key {signer.key_id}"
    digest = hashlib.sha256(data).digest()
    if doc.get("sha256") != digest.hex():
        return "its signature is of other bytes (the result was changed after it was signed)"
    try:
        raw = base64.b64decode(str(doc.get("signature")), validate=True)
        signer.public_key().verify(raw, digest, _ECDSA)
    except (ValueError, InvalidSignature):
        return "its signature does not verify with the trusted key"
    return None


def open_signer(spec: str | None, state_dir: Path, *, kms_client: Any = None) -> LocalSigner | KmsSigner:
    """``None`` / ``local``: the state directory's key; ``kms:<key id, alias or ARN>``: KMS."""
    if spec is None or spec in ("", "local"):
        return LocalSigner(state_dir)
    if spec.startswith("kms:") and len(spec) > 4:
        return KmsSigner(spec[4:], kms_client)
    raise InvalidInput(f"ROLLOUT_SIGNING_KEY {spec!r}: use 'local' or 'kms:<key id, alias or ARN>'.")
