"""End to end over HTTP against the real gateway on 127.0.0.1: identity, flags, boundaries,
retrieval, the offline model, audit records and the fallback path."""

from __future__ import annotations

import datetime as dt
import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from controller.adapters.devidp import DevIdp
from controller.adapters.flag_file import write_flag_document
from controller.adapters.request_sinks import MemorySink, schema_document
from controller.bundle.models import load_bundle
from controller.core.flags import render_flag_document
from controller.core.release import create_release, model_choice
from controller.gateway.asgi import create_app
from controller.gateway.server import BackgroundServer
from controller.models.base import ModelUnavailable
from controller.service.compose import StatePaths, build_gateway, open_local_store

FAKE_KEY_ID = "AKIA" + "FAKE2TESTKEY7DOC"  # obviously fake, assembled so no scanner trips on the file


class Outage:
    name = "outage"

    def complete(self, request: Any) -> Any:
        raise ModelUnavailable("connection refused (simulated outage)")


@pytest.fixture
def world(project: Path, tmp_path: Path) -> Any:
    """A served release for the internal cohort, a running server, and the tools to poke it."""
    bundle = load_bundle(project)
    state = tmp_path / "state"
    store = open_local_store(state)
    digest, _ = create_release(store, bundle, model_choice(bundle.workflow, "local"))
    paths = StatePaths(state)
    flags_path = paths.flags(bundle.id)
    write_flag_document(flags_path, render_flag_document(bundle.workflow, {"internal": digest}, killed=False))
    sink = MemorySink()
    outage = {"on": False}

    def adapters(release: Any, retriever: Any) -> Any:
        from controller.service.compose import make_model_adapter

        real = make_model_adapter(release, retriever)

        class Switchable:
            name = "switchable"

            def complete(self, request: Any) -> Any:
                return Outage().complete(request) if outage["on"] else real.complete(request)

        return Switchable()

    gateway = build_gateway(bundle, state, poll_ms=50, sink=sink, adapter_factory=adapters)
    server = BackgroundServer(create_app(gateway, flags_path=flags_path)).__enter__()
    url = server.url
    idp = DevIdp(paths.idp)
    idp.ensure()
    sso = bundle.workflow.sso.idp

    class World:
        pass

    w = World()
    w.bundle, w.digest, w.sink, w.url, w.flags_path, w.outage, w.idp = (
        bundle, digest, sink, url, flags_path, outage, idp,
    )

    def token(email: str, groups: list[str], **kw: Any) -> str:
        kw.setdefault("issuer", sso.issuer)
        kw.setdefault("audience", sso.audience)
        return idp.mint(email, groups, **kw)

    def post(question: str, tok: str | None) -> tuple[int, dict[str, Any]]:
        headers = {"Content-Type": "application/json"}
        if tok is not None:
            headers["Authorization"] = f"Bearer {tok}"
        req = urllib.request.Request(
            f"{url}/v1/ask", data=json.dumps({"question": question}).encode(), headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    w.token, w.post = token, post
    w.gateway = gateway
    yield w
    server.__exit__()
    gateway.flags.close()


INSIDER = ("alice.moreau@corp.example", ["eng", "ai-pilot"])
OUTSIDER = ("ben.okoro@corp.example", ["eng"])
QUESTION = "How quickly must the primary on-call acknowledge a page?"


def test_in_cohort_user_is_answered_with_citations(world: Any) -> None:
    status, body = world.post(QUESTION, world.token(*INSIDER))
    assert status == 200
    assert body["decision"] == "answered"
    assert body["citations"], body
    assert body["release"] == world.digest
    assert body["model"] == "local-extractive-v1"


def test_out_of_cohort_user_gets_the_fallback(world: Any) -> None:
    status, body = world.post(QUESTION, world.token(*OUTSIDER))
    assert status == 200
    assert body["decision"] == "fallback"
    assert world.bundle.workflow.fallback.contact in body["answer"]


@pytest.mark.parametrize(
    ("make", "status"),
    [
        ("personal", 403),
        ("forged", 401),
        ("expired", 401),
        ("audience", 401),
        ("missing", 401),
        ("no-group", 403),
        ("too-long-lived", 401),
    ],
)
def test_bad_identities_are_refused(world: Any, tmp_path: Path, make: str, status: int) -> None:
    email, groups = INSIDER
    if make == "personal":
        tok = world.token("alice.moreau@gmail.com", groups)
    elif make == "forged":
        other = DevIdp(tmp_path / "attacker")
        other.ensure()
        good = world.token(email, groups)
        forged = other.mint(email, groups, issuer=world.bundle.workflow.sso.idp.issuer,
                            audience=world.bundle.workflow.sso.idp.audience)
        # keep the real header (kid) and claims, swap in the attacker's signature
        tok = ".".join(good.split(".")[:2] + [forged.split(".")[2]])
    elif make == "expired":
        tok = world.token(email, groups, now=dt.datetime.now(dt.UTC) - dt.timedelta(hours=3))
    elif make == "audience":
        tok = world.token(email, groups, audience="api://some-other-app")
    elif make == "too-long-lived":
        tok = world.token(email, groups, ttl=dt.timedelta(hours=8))
    elif make == "no-group":
        tok = world.token(email, ["marketing"])
    else:
        tok = None
    got, body = world.post(QUESTION, tok)
    assert got == status, body
    assert body["decision"] == "refused"


def test_kill_switch_in_the_flag_file_turns_answers_into_fallbacks(world: Any) -> None:
    tok = world.token(*INSIDER)
    assert world.post(QUESTION, tok)[1]["decision"] == "answered"
    doc = render_flag_document(world.bundle.workflow, {"internal": world.digest}, killed=True)
    write_flag_document(world.flags_path, doc)
    deadline = time.monotonic() + 5
    decision = None
    while time.monotonic() < deadline:
        status, body = world.post(QUESTION, tok)
        decision = body["decision"]
        if decision == "disabled":
            break
        time.sleep(0.05)
    assert decision == "disabled"
    assert status == 503
    assert world.bundle.workflow.fallback.contact in body["answer"]


def test_a_missing_flag_file_fails_closed(world: Any) -> None:
    tok = world.token(*INSIDER)
    world.flags_path.unlink()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and world.post(QUESTION, tok)[1]["decision"] != "disabled":
        time.sleep(0.05)
    assert world.post(QUESTION, tok)[1]["decision"] == "disabled"


def test_a_prompt_carrying_a_key_is_blocked_and_never_echoed(world: Any) -> None:
    status, body = world.post(f"my key is {FAKE_KEY_ID}, why does deploy fail?", world.token(*INSIDER))
    assert status == 422
    assert body["decision"] == "blocked"
    assert "credentials" in body["blocked_categories"]
    assert FAKE_KEY_ID not in json.dumps(body)


def test_a_model_outage_gives_the_fallback(world: Any) -> None:
    world.outage["on"] = True
    status, body = world.post(QUESTION, world.token(*INSIDER))
    assert status == 200
    assert body["decision"] == "fallback"
    assert "model unavailable" in world.sink.records[-1]["reason"]


def test_http_errors(world: Any) -> None:
    req = urllib.request.Request(f"{world.url}/v1/ask", data=b"not json", method="POST",
                                 headers={"Authorization": "Bearer x", "Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(req, timeout=5)
    assert caught.value.code == 400
    req = urllib.request.Request(f"{world.url}/v1/ask", data=b"x" * (70 * 1024), method="POST")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(req, timeout=5)
    assert caught.value.code == 413
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(f"{world.url}/v1/ask", timeout=5)
    assert caught.value.code == 405


def test_every_request_writes_exactly_one_complete_audit_record_without_secrets(world: Any) -> None:
    from controller.boundaries.redactor import bundle_redactor

    calls = [
        (QUESTION, world.token(*INSIDER)),
        (QUESTION, world.token(*OUTSIDER)),
        (f"key {FAKE_KEY_ID} please", world.token(*INSIDER)),
        ("Reach me at jordan.example@customer.example about the on-call page", world.token(*INSIDER)),
        (QUESTION, world.token("alice.moreau@gmail.com", ["eng"])),
    ]
    for question, tok in calls:
        world.post(question, tok)
    records = world.sink.records
    assert len(records) == len(calls)
    schema = schema_document()
    for record in records:
        jsonschema.validate(record, schema)
    answered = [r for r in records if r["decision"] == "answered"]
    assert answered
    for r in answered:
        assert r["prompt_template"]["id"] == "answer" and r["prompt_template"]["version"] == 1
        assert r["context_sources"] and r["model"]["id"] and r["output"]
    assert [r["decision"] for r in records] == ["answered", "fallback", "blocked", "answered", "refused"]
    # the outsider is in the general cohort, which is served nothing yet
    assert [(r["cohort"] or {}).get("name") for r in records] == ["internal", "general", "internal", "internal", None]
    assert records[1]["cohort"]["variant"] == "off"
    log = "\n".join(json.dumps(r) for r in records)
    assert FAKE_KEY_ID not in log
    assert "jordan.example@customer.example" not in log
    assert "alice.moreau" not in log  # subjects are pseudonyms
    assert bundle_redactor(world.bundle.workflow.data_boundaries).scan(log) == []
