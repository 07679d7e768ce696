"""The OAuth 2.0 device authorization grant (RFC 8628), client side: what ``rollout login`` runs.

Discovery (``<issuer>/.well-known/openid-configuration``) gives the device authorization and
token endpoints; the client asks for a device code, shows the user where to sign in (the
verification URI and user code), and polls the token endpoint every ``interval`` seconds
(``slow_down`` adds 5 s) until it gets an ID token, the user refuses (``access_denied``) or the
code expires. Only ``https://`` endpoints are used, or ``http://`` on the loopback interface
(the dev IdP). Nothing here trusts the token: the caller verifies it like any other.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

from controller.errors import BackendUnavailable, InvalidInput, RefusedError

__all__ = ["DEVICE_GRANT", "device_login", "discover"]

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def _check(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in _LOOPBACK):
        return url
    raise InvalidInput(f"IdP endpoint {url!r}: only https://, or http:// on 127.0.0.1 (the dev IdP).")


def _request(url: str, form: Mapping[str, str] | None = None, timeout: float = 10.0) -> tuple[int, Any]:
    data = None if form is None else urllib.parse.urlencode(form).encode("ascii")
    request = urllib.request.Request(_check(url), data=data, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - scheme checked
            return response.status, json.loads(response.read(65536))
    except urllib.error.HTTPError as exc:  # OAuth errors are 400 with a JSON body
        try:
            return exc.code, json.loads(exc.read(65536))
        except ValueError:
            return exc.code, {}
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise BackendUnavailable(f"the IdP at {url} cannot be reached ({exc}).") from exc


def discover(issuer_url: str) -> dict[str, Any]:
    """The IdP's OpenID configuration; it must offer the device authorization grant."""
    status, doc = _request(issuer_url.rstrip("/") + "/.well-known/openid-configuration")
    if status != 200 or not isinstance(doc, dict):
        raise BackendUnavailable(f"the IdP at {issuer_url} has no OpenID configuration (HTTP {status}).")
    for name in ("device_authorization_endpoint", "token_endpoint"):
        if not isinstance(doc.get(name), str):
            raise InvalidInput(f"the IdP at {issuer_url} offers no {name}: it does not support `rollout login`.")
    return doc


def device_login(
    issuer_url: str,
    client_id: str,
    *,
    show: Callable[[Mapping[str, Any]], None],
    scope: str = "openid email groups",
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> str:
    """Run the grant; return the ID token (``RefusedError`` when denied or expired)."""
    config = discover(issuer_url)
    status, grant = _request(config["device_authorization_endpoint"], {"client_id": client_id, "scope": scope})
    if status != 200 or not isinstance(grant, dict) or not isinstance(grant.get("device_code"), str):
        raise BackendUnavailable(f"the IdP refused a device code (HTTP {status}: {grant}).")
    show(grant)
    interval = float(grant.get("interval") or 5)
    deadline = clock() + float(grant.get("expires_in") or 600)
    form = {"grant_type": DEVICE_GRANT, "device_code": grant["device_code"], "client_id": client_id}
    while clock() < deadline:
        status, answer = _request(config["token_endpoint"], form)
        token = answer.get("id_token") if isinstance(answer, dict) else None
        if status == 200 and isinstance(token, str):
            return token
        error = answer.get("error") if isinstance(answer, dict) else None
        if error == "slow_down":
            interval += 5
        elif error != "authorization_pending":
            raise RefusedError(f"login failed: the IdP answered {error or f'HTTP {status}'}.")
        sleep(interval)
    raise RefusedError("login failed: the device code expired before you signed in.")
