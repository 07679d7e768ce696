"""``rollout login``: the OAuth 2.0 device authorization grant against the dev IdP's device
endpoint (a real HTTP server on 127.0.0.1), the token verified and cached 0600, then used by
every command; a denied, expired or foreign login caches nothing."""

from __future__ import annotations

import os
import stat
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from controller.adapters.device_login import device_login
from controller.adapters.devidp import DevIdp, DevIdpServer
from controller.errors import InvalidInput, RefusedError
from controller.service.compose import StatePaths
from controller.service.identity import login_token_path
from tests.test_cli_rollout import AUDIENCE, ISSUER, rollout, rollout_json


@pytest.fixture
def state(project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("ROLLOUT_STORE", "ROLLOUT_TOKEN", "ROLLOUT_IDP_URL"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "state"


@pytest.fixture
def idp(state: Path) -> Any:
    server = DevIdpServer(DevIdp(StatePaths(state).idp), issuer=ISSUER, audience=AUDIENCE, interval=0).start()
    yield server
    server.close()


def sign_in_in_the_browser(email: str, groups: str = "") -> Any:
    """What the person does with the URL and code the terminal shows."""

    def show(grant: Any) -> None:
        url = f"{grant['verification_uri_complete']}&email={email}&groups={groups}"
        threading.Timer(0.05, lambda: urllib.request.urlopen(url).read()).start()

    return show


def test_login_signs_in_with_the_device_grant_and_every_command_uses_it(
    state: Path, idp: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import controller.adapters.device_login as flow

    real = flow.device_login
    monkeypatch.setattr(
        flow,
        "device_login",
        lambda url, cid, show: real(
            url,
            cid,
            show=sign_in_in_the_browser("dana.whitfield@corp.example", "ai-rollout-approvers"),
            sleep=lambda s: time.sleep(0.02),
        ),
    )
    code, doc = rollout_json(state, "login", "--idp", idp.url)
    assert code == 0, doc
    assert doc["principal"]["email"] == "dana.whitfield@corp.example" and doc["principal"]["source"] == "oidc"
    path = login_token_path(state)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    code, who = rollout_json(state, "whoami")
    assert (
        code == 0 and who["principal"]["email"] == "dana.whitfield@corp.example" and who["not_allowed"]["approve"] == []
    )


def test_the_grant_polls_until_signed_in_and_codes_are_used_once(idp: Any) -> None:
    polls: list[float] = []
    token = device_login(
        idp.url,
        "cli",
        show=sign_in_in_the_browser("sam.okafor@corp.example"),
        sleep=lambda s: (polls.append(s), time.sleep(0.02)),
    )
    assert token.count(".") == 2 and polls  # it was pending at least once
    grant = idp.authorize("cli")
    assert idp.token("urn:ietf:params:oauth:grant-type:device_code", grant["device_code"]) == (
        400,
        {"error": "authorization_pending"},
    )
    assert idp.verify(grant["user_code"], "x@corp.example", "")[0] == 200
    assert idp.token("urn:ietf:params:oauth:grant-type:device_code", grant["device_code"])[0] == 200
    assert idp.token("urn:ietf:params:oauth:grant-type:device_code", grant["device_code"]) == (
        400,
        {"error": "invalid_grant"},
    )
    assert idp.token("password", "x") == (400, {"error": "unsupported_grant_type"})


def test_an_expired_code_refuses_and_caches_nothing(state: Path, idp: Any) -> None:
    idp.expires_in = 0
    with pytest.raises(RefusedError, match="expired"):
        device_login(idp.url, "cli", show=lambda g: None, sleep=lambda s: None)
    assert not login_token_path(state).exists()


def test_only_https_or_loopback_endpoints(state: Path) -> None:
    with pytest.raises(InvalidInput, match="only https://"):
        device_login("http://idp.example.com", "cli", show=lambda g: None)
    code, doc = rollout_json(state, "login", "--idp", "http://127.0.0.1:9")  # nothing listens there
    assert code == 5 and "cannot be reached" in doc["error"]["message"]
    assert rollout(state, "whoami").exit_code == 0  # still the asserted OS user


def test_an_expired_cached_login_says_to_log_in_again(state: Path) -> None:
    import datetime as dt

    from controller.adapters.atomic import write_atomic

    old = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    token = DevIdp(StatePaths(state).idp).mint(
        "dana.whitfield@corp.example", [], issuer=ISSUER, audience=AUDIENCE, now=old
    )
    login_token_path(state).parent.mkdir(parents=True)
    write_atomic(login_token_path(state), token.encode(), mode=0o600)
    code, doc = rollout_json(state, "whoami")
    assert code == 3 and "expired" in doc["error"]["message"] and "run `rollout login` again" in doc["error"]["message"]
    result = rollout(state, "kill", "--reason", "still works")  # the kill switch never waits for a login
    assert result.exit_code == 0 and "kill switch engaged" in result.stdout
