"""The local development IdP: a real signing key under the state directory, and a token minter.

The local default has no bypass switch: ``rollout dev-token`` mints a JWT signed by
``<state>/idp/signing-key.pem`` (ES256 on P-256 unless told otherwise, mode 0600), and the
gateway verifies it against ``<state>/idp/jwks.json`` through the same ``IdentityVerifier``
as production. The public key's ``kid`` is its RFC 7638 thumbprint.

Keys are created once, atomically (temp file + hard link, so a concurrent ``ensure`` can never
replace a key another process already wrote) and never overwritten; ``jwks.json`` is derived
from the key and rewritten only when it does not match.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import secrets
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from controller.adapters.atomic import create_once, write_atomic
from controller.errors import InvalidInput

if TYPE_CHECKING:
    from controller.bundle.models import Sso

__all__ = [
    "DevIdp",
    "dev_subject",
    "dev_token",
    "jwk_thumbprint",
    "public_jwk",
]

_ALGORITHMS = ("ES256", "RS256")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")

# RFC 7638 section 3.2: the required members of each key type, hashed in lexicographic order.
_THUMBPRINT_MEMBERS = {
    "EC": ("crv", "kty", "x", "y"),
    "RSA": ("e", "kty", "n"),
    "OKP": ("crv", "kty", "x"),
    "oct": ("k", "kty"),
}


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """The RFC 7638 SHA-256 thumbprint of a JWK, base64url without padding."""
    members = _THUMBPRINT_MEMBERS.get(jwk.get("kty", ""))
    if members is None:
        raise ValueError(f"unsupported key type {jwk.get('kty')!r}")
    missing = [m for m in members if not isinstance(jwk.get(m), str)]
    if missing:
        raise ValueError(f"JWK lacks required members {missing}")
    canonical = json.dumps({m: jwk[m] for m in members}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return _b64url(hashlib.sha256(canonical.encode("utf-8")).digest())


def public_jwk(public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey) -> dict[str, str]:
    """The public JWK (``kid`` = thumbprint, ``use`` = sig, ``alg``) of a P-256 or RSA key."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if not isinstance(public_key.curve, ec.SECP256R1):
            raise ValueError("only P-256 EC keys are supported (ES256)")
        numbers = public_key.public_numbers()
        # RFC 7518 6.2.1.2: coordinates are full-length (32 octets on P-256), leading zeros kept.
        jwk = {
            "kty": "EC",
            "crv": "P-256",
            "x": _b64url(numbers.x.to_bytes(32, "big")),
            "y": _b64url(numbers.y.to_bytes(32, "big")),
        }
        alg = "ES256"
    elif isinstance(public_key, rsa.RSAPublicKey):
        numbers = public_key.public_numbers()
        jwk = {"kty": "RSA", "n": _b64url_uint(numbers.n), "e": _b64url_uint(numbers.e)}
        alg = "RS256"
    else:
        raise ValueError("only P-256 EC and RSA keys are supported")
    return {**jwk, "kid": jwk_thumbprint(jwk), "use": "sig", "alg": alg}


def dev_subject(email: str) -> str:
    """A stable, opaque subject for ``email`` (the same address always maps to the same id)."""
    normalised = email.strip().translate(_ASCII_LOWER)
    digest = hashlib.sha256(b"ai-rollout/dev-idp/subject/v1\x00" + normalised.encode("utf-8"))
    return "dev-" + digest.hexdigest()[:32]


class DevIdp:
    """A local IdP whose keys live in ``<state_dir>/idp/``.

    ``algorithm`` picks the key type when the key is created (ES256 if not given); if given
    and an existing key is of the other type, ``ensure`` refuses rather than replace it.
    """

    def __init__(self, state_dir: Path, *, algorithm: str | None = None):
        if algorithm is not None and algorithm not in _ALGORITHMS:
            raise InvalidInput(f"dev IdP algorithm must be one of {', '.join(_ALGORITHMS)}")
        self.algorithm = algorithm
        self.directory = Path(state_dir) / "idp"
        self.key_path = self.directory / "signing-key.pem"
        self.jwks_path = self.directory / "jwks.json"
        self._private_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | None = None
        self._jwk: dict[str, str] | None = None

    @property
    def kid(self) -> str:
        self.ensure()
        assert self._jwk is not None
        return self._jwk["kid"]

    def ensure(self) -> None:
        """Create the signing key (if absent) and make ``jwks.json`` match it. Idempotent."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not self.key_path.exists():
            self._create_key()
        private_key = self._load_key()
        jwk = public_jwk(private_key.public_key())
        document = json.dumps({"keys": [jwk]}, indent=2, sort_keys=True) + "\n"
        try:
            current = self.jwks_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            current = None
        if current != document:
            # Derived from the key, so replacing it is always safe.
            self._write_atomically(self.jwks_path, document.encode("utf-8"), mode=0o644)
        self._private_key, self._jwk = private_key, jwk

    def mint(
        self,
        email: str,
        groups: Sequence[str],
        *,
        issuer: str,
        audience: str,
        ttl: dt.timedelta = dt.timedelta(hours=1),
        subject: str | None = None,
        now: dt.datetime | None = None,
        extra_claims: Mapping[str, Any] | None = None,
    ) -> str:
        """A signed ID-token-shaped JWT for ``email``. ``extra_claims`` are applied last, so
        they can override standard claims (useful for minting tokens that must be refused)."""
        if isinstance(groups, str):
            raise InvalidInput("groups must be a list of group names, not a single string")
        if ttl <= dt.timedelta(0):
            raise InvalidInput("token lifetime must be positive")
        now = now or dt.datetime.now(dt.UTC)
        if now.tzinfo is None:
            raise InvalidInput("now must be a timezone-aware datetime")
        if self._private_key is None:
            self.ensure()
        assert self._private_key is not None and self._jwk is not None
        issued = int(now.timestamp())
        claims: dict[str, Any] = {
            "iss": issuer,
            "aud": audience,
            "sub": subject or dev_subject(email),
            "email": email,
            "email_verified": True,
            "groups": list(groups),
            "iat": issued,
            "nbf": issued,
            "exp": issued + int(ttl.total_seconds()),
            "jti": secrets.token_urlsafe(16),
        }
        claims.update(extra_claims or {})
        return jwt.encode(
            claims,
            self._private_key,
            algorithm=self._jwk["alg"],
            headers={"kid": self._jwk["kid"], "typ": "JWT"},
        )

    # --- key files -------------------------------------------------------------------------

    def _create_key(self) -> None:
        key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
        if (self.algorithm or "ES256") == "ES256":
            key = ec.generate_private_key(ec.SECP256R1())
        else:
            key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        # Create-only: a concurrent ensure() that got there first wins and we load its key.
        create_once(self.key_path, pem, mode=0o600)

    def _load_key(self) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
        info = os.stat(self.key_path)
        if not stat.S_ISREG(info.st_mode):
            raise InvalidInput(f"{self.key_path} is not a regular file")
        if info.st_mode & 0o077:
            raise InvalidInput(
                f"{self.key_path} is accessible by other users "
                f"(mode {stat.S_IMODE(info.st_mode):04o}); run: chmod 600 {self.key_path}"
            )
        try:
            key = serialization.load_pem_private_key(self.key_path.read_bytes(), password=None)
        except (ValueError, TypeError):
            raise InvalidInput(
                f"{self.key_path} is not an unencrypted PEM private key; move it away to let ensure() create a new one"
            ) from None
        if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
            found = "ES256"
        elif isinstance(key, rsa.RSAPrivateKey) and key.key_size >= 2048:
            found = "RS256"
        else:
            raise InvalidInput(f"{self.key_path} must be a P-256 EC key or an RSA key of at least 2048 bits")
        if self.algorithm is not None and found != self.algorithm:
            raise InvalidInput(
                f"{self.key_path} holds an {found} key but {self.algorithm} was requested; "
                "the existing key is never replaced"
            )
        return key

    def _write_atomically(self, target: Path, data: bytes, *, mode: int) -> None:
        write_atomic(target, data, mode=mode)


def dev_token(
    state_dir: Path,
    sso: Sso,
    *,
    email: str,
    groups: Sequence[str] | str,
    ttl: dt.timedelta = dt.timedelta(hours=1),
) -> str:
    """What ``rollout dev-token`` calls: a token for the bundle's issuer and audience.

    ``groups`` may be a list or a comma-separated string (``--groups eng,ai-pilot``).
    """
    if isinstance(groups, str):
        groups = [g.strip() for g in groups.split(",") if g.strip()]
    idp = DevIdp(state_dir)
    idp.ensure()
    return idp.mint(email, groups, issuer=sso.idp.issuer, audience=sso.idp.audience, ttl=ttl)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_uint(value: int) -> str:
    # RFC 7518 6.3.1: the minimal big-endian octets of the integer.
    return _b64url(value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big"))


# --- the device authorization endpoint (RFC 8628), for `rollout login` on the local default -------

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


class DevIdpServer:
    """The dev IdP's OAuth 2.0 device authorization grant over HTTP on 127.0.0.1.

    ``GET /.well-known/openid-configuration`` (discovery), ``POST /device_authorization``
    (a device code and a user code), ``GET /device?user_code=...&email=...&groups=...`` (the
    "browser" step: the dev IdP has no passwords, signing in is naming yourself, which is why it
    is the dev IdP), ``POST /token`` (``authorization_pending`` until then, then an ID token minted
    for the bundle's issuer and audience), ``GET /jwks``. Codes live ``expires_in`` seconds and are
    used once.
    """

    def __init__(
        self,
        idp: DevIdp,
        *,
        issuer: str,
        audience: str,
        host: str = "127.0.0.1",
        port: int = 0,
        expires_in: int = 600,
        interval: int = 1,
        ttl: dt.timedelta = dt.timedelta(hours=1),
    ) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        if host not in ("127.0.0.1", "localhost", "::1"):
            raise InvalidInput("the dev IdP serves on the loopback interface only")
        self.idp, self.issuer, self.audience, self.ttl = idp, issuer, audience, ttl
        self.expires_in, self.interval = expires_in, interval
        self._pending: dict[str, dict[str, Any]] = {}  # device_code -> state
        self._lock = threading.Lock()
        idp.ensure()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _send(self, status: int, payload: Any, content_type: str = "application/json") -> None:
                body = payload if isinstance(payload, bytes) else json.dumps(payload).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Cache-Control", "no-store")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                from urllib.parse import parse_qs, urlsplit

                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                if parts.path == "/.well-known/openid-configuration":
                    self._send(200, outer.discovery())
                elif parts.path == "/jwks":
                    self._send(200, outer.idp.jwks_path.read_bytes())
                elif parts.path == "/device":
                    status, text = outer.verify(
                        query.get("user_code", ""), query.get("email", ""), query.get("groups", "")
                    )
                    self._send(status, text.encode("utf-8"), "text/plain; charset=utf-8")
                else:
                    self._send(404, {"error": "not_found"})

            def do_POST(self) -> None:  # noqa: N802
                from urllib.parse import parse_qs

                length = min(int(self.headers.get("Content-Length") or 0), 8192)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode("utf-8", "replace")).items()}
                if self.path == "/device_authorization":
                    self._send(200, outer.authorize(form.get("client_id", "")))
                elif self.path == "/token":
                    status, payload = outer.token(form.get("grant_type", ""), form.get("device_code", ""))
                    self._send(status, payload)
                else:
                    self._send(404, {"error": "not_found"})

        self._server = ThreadingHTTPServer((host, port), Handler)
        self.url = f"http://{host}:{self._server.server_address[1]}"

    # -- the protocol (also callable directly) ------------------------------------------------

    def discovery(self) -> dict[str, str]:
        return {
            "issuer": self.issuer,
            "device_authorization_endpoint": f"{self.url}/device_authorization",
            "token_endpoint": f"{self.url}/token",
            "jwks_uri": f"{self.url}/jwks",
        }

    def authorize(self, client_id: str) -> dict[str, Any]:
        device_code = secrets.token_urlsafe(32)
        alphabet = "BCDFGHJKLMNPQRSTVWXZ"  # RFC 8628 6.1: no vowels, no look-alikes
        user_code = "".join(secrets.choice(alphabet) for _ in range(8))
        user_code = f"{user_code[:4]}-{user_code[4:]}"
        with self._lock:
            self._pending[device_code] = {
                "user_code": user_code,
                "client_id": client_id,
                "expires": dt.datetime.now(dt.UTC) + dt.timedelta(seconds=self.expires_in),
                "who": None,
            }
        return {
            "device_code": device_code,
            "user_code": user_code,
            "verification_uri": f"{self.url}/device",
            "verification_uri_complete": f"{self.url}/device?user_code={user_code}",
            "expires_in": self.expires_in,
            "interval": self.interval,
        }

    def verify(self, user_code: str, email: str, groups: str) -> tuple[int, str]:
        """The browser step: sign in as ``email`` (with ``groups``) for ``user_code``."""
        if not email or "@" not in email:
            return 400, "sign in: give ?email=you@corp.example (and &groups=a,b)"
        with self._lock:
            for state in self._pending.values():
                if state["user_code"] == user_code and state["who"] is None:
                    state["who"] = (email, [g for g in groups.split(",") if g])
                    return 200, f"signed in as {email}; return to your terminal"
        return 404, "unknown or used code"

    def token(self, grant_type: str, device_code: str) -> tuple[int, dict[str, Any]]:
        if grant_type != DEVICE_GRANT:
            return 400, {"error": "unsupported_grant_type"}
        with self._lock:
            state = self._pending.get(device_code)
            if state is None:
                return 400, {"error": "invalid_grant"}
            if dt.datetime.now(dt.UTC) >= state["expires"]:
                del self._pending[device_code]
                return 400, {"error": "expired_token"}
            if state["who"] is None:
                return 400, {"error": "authorization_pending"}
            del self._pending[device_code]  # used once
        email, groups = state["who"]
        token = self.idp.mint(email, groups, issuer=self.issuer, audience=self.audience, ttl=self.ttl)
        return 200, {
            "id_token": token,
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": int(self.ttl.total_seconds()),
        }

    # -- serving --------------------------------------------------------------------------------

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def start(self) -> DevIdpServer:
        import threading

        threading.Thread(target=self._server.serve_forever, daemon=True, name="dev-idp").start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
