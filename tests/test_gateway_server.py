"""The production server over real sockets on 127.0.0.1: uvicorn + the ASGI app, the official
``openai`` SDK (sync, async, streaming) as the client, a fake OpenAI-compatible upstream that
streams, hostile HTTP, slowloris, the concurrency cap, and one audit record per request."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from pathlib import Path
from typing import Any

import openai
import pytest

from controller.adapters.devidp import DevIdp
from controller.adapters.flag_file import write_flag_document
from controller.adapters.request_sinks import MemorySink
from controller.bundle.models import load_bundle
from controller.core.flags import render_flag_document
from controller.core.release import create_release, model_choice
from controller.gateway.asgi import create_app
from controller.gateway.limits import Limits
from controller.gateway.server import BackgroundServer
from controller.models.openai import OpenAICompatibleAdapter
from controller.service.compose import StatePaths, build_gateway, open_local_store
from tests.fakes.model_servers import FakeOpenAIServer, Reply

FAKE_KEY_ID = "AKIA" + "FAKE2TESTKEY7DOC"  # obviously fake, assembled so no scanner trips on the file
ANSWER = "The primary on-call acknowledges within 15 minutes. [oncall-escalation]"
QUESTION = "How quickly must the primary on-call acknowledge a page?"
INSIDER = ("alice.moreau@corp.example", ["eng", "ai-pilot"])
LIMITS = Limits(header_timeout_s=1.0, body_timeout_s=1.0, max_inflight=4)


@pytest.fixture
def world(project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    bundle = load_bundle(project)
    state = tmp_path / "state"
    store = open_local_store(state)
    digest, _ = create_release(store, bundle, model_choice(bundle.workflow, "local"))
    paths = StatePaths(state)
    flags_path = paths.flags(bundle.id)
    write_flag_document(flags_path, render_flag_document(bundle.workflow, {"internal": digest}, killed=False))
    sink = MemorySink()
    upstream = FakeOpenAIServer(text=ANSWER).__enter__()

    def adapters(release: Any, retriever: Any) -> Any:
        return OpenAICompatibleAdapter(base_url=upstream.url, api_key_env=None, max_attempts=1, timeout_s=5)

    gateway = build_gateway(bundle, state, poll_ms=50, sink=sink, adapter_factory=adapters)
    server = BackgroundServer(create_app(gateway, LIMITS, flags_path=flags_path), LIMITS).__enter__()
    idp = DevIdp(paths.idp)
    idp.ensure()
    sso = bundle.workflow.sso.idp

    class World:
        pass

    w = World()
    w.bundle, w.sink, w.url, w.port, w.flags_path, w.upstream, w.digest = (
        bundle, sink, server.url, server.port, flags_path, upstream, digest,
    )
    w.token = lambda email, groups, **kw: idp.mint(email, groups, issuer=sso.issuer, audience=sso.audience, **kw)
    w.client = lambda tok: openai.OpenAI(base_url=f"{server.url}/v1", api_key=tok, max_retries=0, timeout=10)
    yield w
    server.__exit__()
    upstream.__exit__()
    gateway.flags.close()


def _user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def raw(port: int, data: bytes, timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    """Send bytes, read the whole reply (the server closes after an error)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        while True:
            try:
                part = s.recv(65536)
            except ConnectionResetError:
                break
            if not part:
                break
            chunks.append(part)
            reply = b"".join(chunks)
            if b"\r\n\r\n" in reply:
                head, _, body = reply.partition(b"\r\n\r\n")
                length = [ln for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length:")]
                if length and len(body) >= int(length[0].split(b":")[1]):
                    break
    reply = b"".join(chunks)
    head, _, body = reply.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    return status, headers, body


def post(path: str, body: bytes, headers: dict[str, str] | None = None) -> bytes:
    head = {"Host": "127.0.0.1", "Content-Type": "application/json", "Content-Length": str(len(body)),
            "Connection": "close", **(headers or {})}
    lines = "".join(f"{k}: {v}\r\n" for k, v in head.items() if v is not None)
    return f"POST {path} HTTP/1.1\r\n{lines}\r\n".encode("latin-1") + body


# --- the official SDK as the client ---------------------------------------------------------


def test_sync_sdk_gets_an_answer_with_the_gateway_fields(world: Any) -> None:
    client = world.client(world.token(*INSIDER))
    reply = client.chat.completions.create(model=world.bundle.id, messages=_user(QUESTION))
    assert reply.choices[0].message.content == ANSWER
    assert reply.choices[0].finish_reason == "stop"
    rollout = reply.model_extra["rollout"]
    assert rollout["decision"] == "answered" and rollout["citations"] == ["oncall-escalation"]
    assert [m.id for m in client.models.list()] == [world.bundle.id]
    assert [r["decision"] for r in world.sink.records] == ["answered"]


def test_async_sdk_concurrent_requests_each_leave_one_record(world: Any) -> None:
    async def main() -> list[str]:
        client = openai.AsyncOpenAI(base_url=f"{world.url}/v1", api_key=world.token(*INSIDER), max_retries=0)
        replies = await asyncio.gather(*[
            client.chat.completions.create(model=world.bundle.id, messages=_user(QUESTION)) for _ in range(LIMITS.max_inflight)
        ])
        await client.close()
        return [r.choices[0].message.content for r in replies]

    assert asyncio.run(main()) == [ANSWER] * LIMITS.max_inflight
    assert [r["decision"] for r in world.sink.records] == ["answered"] * LIMITS.max_inflight


def test_streaming_sdk_receives_the_upstream_deltas(world: Any) -> None:
    world.upstream.chunks = ["The primary on-call ", "acknowledges within 15 minutes. ", "[oncall-escalation]"]
    client = world.client(world.token(*INSIDER))
    stream = client.chat.completions.create(model=world.bundle.id, messages=_user(QUESTION), stream=True)
    parts = []
    finish = None
    for event in stream:
        if event.choices and event.choices[0].delta.content:
            parts.append(event.choices[0].delta.content)
        if event.choices and event.choices[0].finish_reason:
            finish = event.choices[0].finish_reason
    assert "".join(parts) == ANSWER
    assert finish == "stop"
    assert world.upstream.requests[-1].json()["stream"] is True
    [record] = world.sink.records
    assert record["decision"] == "answered" and record["output"] == ANSWER


def test_policy_messages_reach_a_stock_client(world: Any) -> None:
    client = world.client(world.token(*INSIDER))
    blocked = client.chat.completions.create(model=world.bundle.id, messages=_user(f"my key {FAKE_KEY_ID} fails"))
    assert blocked.choices[0].finish_reason == "content_filter"
    assert "blocked" in blocked.choices[0].message.content and FAKE_KEY_ID not in blocked.model_dump_json()
    assert world.upstream.requests == []  # nothing was sent to the model
    earlier = [{"role": "user", "content": f"key {FAKE_KEY_ID}"}, {"role": "assistant", "content": "ok"},
               {"role": "user", "content": QUESTION}]
    assert client.chat.completions.create(model=world.bundle.id, messages=earlier).choices[0].finish_reason == (
        "content_filter")
    with pytest.raises(openai.AuthenticationError):
        world.client("not-a-token").chat.completions.create(model=world.bundle.id, messages=_user(QUESTION))
    with pytest.raises(openai.PermissionDeniedError):
        world.client(world.token("alice.moreau@gmail.com", ["eng", "ai-pilot"])).chat.completions.create(
            model=world.bundle.id, messages=_user(QUESTION))
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="gpt-4o", messages=_user(QUESTION))
    assert world.bundle.id in str(caught.value)
    write_flag_document(world.flags_path, render_flag_document(world.bundle.workflow, {"internal": world.digest},
                                                               killed=True))
    deadline = time.monotonic() + 5
    while True:
        reply = client.chat.completions.create(model=world.bundle.id, messages=_user(QUESTION), stream=True)
        text = "".join(e.choices[0].delta.content or "" for e in reply if e.choices)
        if world.bundle.workflow.fallback.contact in text or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert world.bundle.workflow.fallback.contact in text
    assert world.sink.records[-1]["decision"] == "disabled"
    decisions = [r["decision"] for r in world.sink.records]
    assert decisions[:4] == ["blocked", "blocked", "refused", "refused"]  # the bad model never reached the handler


@pytest.mark.parametrize("stream", [False, True])
def test_a_secret_split_across_upstream_chunks_never_reaches_client_or_log(world: Any, stream: bool) -> None:
    email = "jordan.example" + "@customer.example"
    world.upstream.text = f"Mail {email} or use {FAKE_KEY_ID}. [oncall-escalation]"
    world.upstream.chunks = ["Mail jordan.exa", "mple@customer.example or use AKIA", "FAKE2TESTKEY7DOC. [oncall-escalation]"]
    client = world.client(world.token(*INSIDER))
    if stream:
        events = client.chat.completions.create(model=world.bundle.id, messages=_user(QUESTION), stream=True)
        seen = "".join(e.choices[0].delta.content or "" for e in events if e.choices)
    else:
        seen = client.chat.completions.create(model=world.bundle.id, messages=_user(QUESTION)).choices[0].message.content
    log = json.dumps(world.sink.records)
    for secret in (FAKE_KEY_ID, email, "FAKE2TESTKEY7DOC", "jordan.exa"):
        assert secret not in seen
        assert secret not in log
    assert len(world.sink.records) == 1
    assert world.sink.records[0]["findings"]["output"] or world.sink.records[0]["decision"] == "fallback"


# --- hostile HTTP ---------------------------------------------------------------------------

HOSTILE = [
    ("deep array", post("/v1/ask", b"[" * 2000), 400),
    ("deep object", post("/v1/ask", b'{"a":' * 5000), 400),
    ("huge integer", post("/v1/ask", b'{"question": "x", "n": ' + b"9" * 5000 + b"}"), 400),
    ("content-length abc", post("/v1/ask", b"{}", {"Content-Length": "abc"}), 400),
    ("content-length 1e3", post("/v1/ask", b"{}", {"Content-Length": "1e3"}), 400),
    ("content-length -1", post("/v1/ask", b"{}", {"Content-Length": "-1"}), 400),
    ("declared too large", post("/v1/ask", b"", {"Content-Length": str(48 << 20)}), 413),
    ("no content-length", post("/v1/ask", b"", {"Content-Length": None}), 411),
    ("text/plain", post("/v1/ask", b"{}", {"Content-Type": "text/plain"}), 415),
    ("not json", post("/v1/ask", b"not json"), 400),
    ("invalid utf-8", post("/v1/ask", b'{"question": "\xff\xfe"}'), 400),
    ("lowercase post", b"post /v1/ask HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}", 501),
    ("PROPFIND", b"PROPFIND /v1/ask HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 501),
    ("PUT", b"PUT /v1/ask HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", 405),
    ("DELETE", b"DELETE /v1/ask HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 405),
    ("PATCH", b"PATCH /v1/ask HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", 405),
    ("OPTIONS", b"OPTIONS /v1/ask HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 405),
    ("TRACE", b"TRACE /v1/ask HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 405),
    ("unknown path", b"GET /etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 404),
    ("60 KiB token", post("/v1/ask", b'{"question":"q"}', {"Authorization": "Bearer " + "a" * (60 << 10)}), 431),
    ("TLS hello", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64, 501),  # not a method
    ("header without colon", b"GET /healthz HTTP/1.1\r\nHost x\r\n\r\n", 400),
    ("chunked too large", b"POST /v1/ask HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                          b"Transfer-Encoding: chunked\r\n\r\n" + (b"8000\r\n" + b"a" * 0x8000 + b"\r\n") * 3
                          + b"0\r\n\r\n", 413),
]


def test_every_hostile_input_gets_a_json_error_and_the_server_stays_up(world: Any) -> None:
    for name, data, status in HOSTILE:
        got, headers, body = raw(world.port, data)
        assert got == status, (name, got, body[:200])
        assert headers.get("content-type", "").startswith("application/json"), name
        assert json.loads(body)["error"]["message"], name
    assert world.sink.records == []  # none of them reached the handler
    tok = world.token(*INSIDER)
    reply = world.client(tok).chat.completions.create(model=world.bundle.id, messages=_user(QUESTION))
    assert reply.choices[0].message.content == ANSWER


def test_a_lone_surrogate_is_sanitised_and_still_blocked_and_recorded(world: Any) -> None:
    body = ('{"question": "my key is ' + FAKE_KEY_ID + ' \\ud800"}').encode()
    status, _, reply = raw(world.port, post("/v1/ask", body, {"Authorization": f"Bearer {world.token(*INSIDER)}"}))
    assert status == 422 and json.loads(reply)["decision"] == "blocked"
    [record] = world.sink.records
    assert record["decision"] == "blocked"
    assert record["findings"]["sanitized"] == {"invalid_text": 1}
    assert FAKE_KEY_ID not in json.dumps(record)


def test_slowloris_connections_are_closed_while_normal_requests_are_served(world: Any) -> None:
    slow = []
    for _ in range(20):
        s = socket.create_connection(("127.0.0.1", world.port), timeout=5)
        s.sendall(b"POST /v1/ask HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        slow.append(s)
    reply = world.client(world.token(*INSIDER)).chat.completions.create(model=world.bundle.id, messages=_user(QUESTION))
    assert reply.choices[0].message.content == ANSWER
    started = time.monotonic()
    for s in slow:
        data = s.recv(4096)
        assert data == b"" or data.startswith(b"HTTP/1.1 408"), data[:100]
        s.close()
    assert time.monotonic() - started < 4  # closed by the 1 s header deadline, not by the client
    # a body that never finishes is cut off too
    with socket.create_connection(("127.0.0.1", world.port), timeout=5) as s:
        s.sendall(post("/v1/ask", b"")[:-4].replace(b"Content-Length: 0", b"Content-Length: 100") + b"\r\n\r\n{")
        assert s.recv(4096).startswith(b"HTTP/1.1 408")


def test_over_the_concurrency_cap_answers_503_with_retry_after(world: Any) -> None:
    world.upstream.enqueue(*[Reply(delay_s=1.0)] * LIMITS.max_inflight)
    tok = world.token(*INSIDER)
    body = json.dumps({"question": QUESTION}).encode()
    threads = [threading.Thread(target=raw, args=(world.port, post("/v1/ask", body, {"Authorization": f"Bearer {tok}"})))
               for _ in range(LIMITS.max_inflight)]
    for t in threads:
        t.start()
    time.sleep(0.4)
    status, headers, reply = raw(world.port, post("/v1/ask", body, {"Authorization": f"Bearer {tok}"}))
    for t in threads:
        t.join()
    assert status == 503 and headers["retry-after"] == "1"
    assert json.loads(reply)["error"]["code"] == "overloaded"
    assert len(world.sink.records) == LIMITS.max_inflight


def test_health_readiness_and_metrics_never_reveal_question_text(world: Any) -> None:
    import urllib.request

    secret_question = "What is the canary phrase zebra-quartz-91?"
    world.client(world.token(*INSIDER)).chat.completions.create(model=world.bundle.id, messages=_user(secret_question))
    with urllib.request.urlopen(f"{world.url}/healthz", timeout=5) as r:
        assert json.loads(r.read()) == {"ok": True}
    with urllib.request.urlopen(f"{world.url}/readyz", timeout=5) as r:
        assert json.loads(r.read())["ok"] is True
    with urllib.request.urlopen(f"{world.url}/metrics", timeout=5) as r:
        text = r.read().decode()
    assert 'rollout_requests_total{cohort="internal",decision="answered"} 1.0' in text
    assert 'rollout_stage_seconds_bucket{le="0.005",stage="identity"}' in text
    assert "zebra-quartz" not in text
    world.flags_path.unlink()
    deadline = time.monotonic() + 5
    status = 200
    while status == 200 and time.monotonic() < deadline:
        status, _, body = raw(world.port, b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        time.sleep(0.05)
    assert status == 503 and json.loads(body)["problems"]
