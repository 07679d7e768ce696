"""Local HTTP servers that speak the Bedrock Converse and OpenAI chat-completions wire formats.

moto does not implement Converse, so the adapters are tested against these instead: real
boto3 serialization, SigV4 signing, retries and urllib run unchanged against 127.0.0.1.
Each server records every request and answers from a script of ``Reply`` objects (then its
default success reply), so a test can say "throttle twice, then answer" and check what was
sent.
"""

from __future__ import annotations

import json
import socket
import threading
import urllib.parse
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

__all__ = [
    "FakeBedrockServer",
    "FakeModelServer",
    "FakeOpenAIServer",
    "Reply",
    "SeenRequest",
    "no_proxy",
    "unused_port",
]

_PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


@pytest.fixture
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make sure urllib and botocore talk to 127.0.0.1 directly, whatever the shell set."""
    for name in _PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


def unused_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Reply:
    """One scripted answer. ``body``: a dict (sent as JSON), bytes, or None for the default."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


@dataclass(frozen=True)
class SeenRequest:
    method: str
    path: str  # percent-decoded
    raw_path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class FakeModelServer:
    """A ThreadingHTTPServer on 127.0.0.1 in a daemon thread; use it as a context manager."""

    def __init__(self) -> None:
        self.requests: list[SeenRequest] = []
        self._script: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                owner._handle(self)

            def do_GET(self) -> None:  # noqa: N802
                owner._handle(self)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def enqueue(self, *replies: Reply) -> FakeModelServer:
        with self._lock:
            self._script.extend(replies)
        return self

    def __enter__(self) -> FakeModelServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    # --- what subclasses define -----------------------------------------------------------

    def matches(self, seen: SeenRequest) -> bool:
        raise NotImplementedError

    def success(self, seen: SeenRequest) -> dict[str, Any]:
        raise NotImplementedError

    def not_found(self, seen: SeenRequest) -> Reply:
        return Reply(404, {"message": f"no route for {seen.method} {seen.raw_path}"})

    stream_content_type = "text/event-stream"

    def stream_events(self, seen: SeenRequest) -> bytes | None:
        """A streamed success reply (server-sent events), or None for a plain JSON one."""
        return None

    # --- plumbing ---------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        parsed = urllib.parse.urlsplit(handler.path)
        seen = SeenRequest(
            method=handler.command,
            path=urllib.parse.unquote(parsed.path),
            raw_path=parsed.path,
            query=urllib.parse.parse_qs(parsed.query),
            headers={k.lower(): v for k, v in handler.headers.items()},
            body=body,
        )
        with self._lock:
            self.requests.append(seen)
            scripted = self._script.popleft() if self._script else None
        reply = (scripted or Reply()) if self.matches(seen) else self.not_found(seen)
        if reply.delay_s and self._stopping.wait(reply.delay_s):
            return
        payload = reply.body if reply.body is not None else self.success(seen)
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        ctype = "application/json"
        events = self.stream_events(seen) if reply.body is None and reply.status == 200 else None
        if events is not None:
            data, ctype = events, self.stream_content_type
        try:
            handler.send_response(reply.status)
            handler.send_header("Content-Type", ctype)
            handler.send_header("Content-Length", str(len(data)))
            for name, value in reply.headers.items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up first (a timeout test)


class FakeBedrockServer(FakeModelServer):
    """``POST /model/{modelId}/converse`` answering with the Converse response shape."""

    def __init__(self, text: str = "The primary on-call has 15 minutes. [oncall-escalation]"):
        super().__init__()
        self.text = text

    stream_content_type = "application/vnd.amazon.eventstream"

    def matches(self, seen: SeenRequest) -> bool:
        parts = seen.path.split("/")
        return (seen.method == "POST" and len(parts) == 4 and parts[1] == "model"
                and parts[3] in ("converse", "converse-stream"))

    def stream_events(self, seen: SeenRequest) -> bytes | None:
        """``converse-stream``: the text in three ``contentBlockDelta`` events, AWS event-stream encoded."""
        if not seen.path.endswith("/converse-stream"):
            return None
        third = max(1, len(self.text) // 3)
        pieces = [self.text[:third], self.text[third : 2 * third], self.text[2 * third :]]
        events = [("messageStart", {"role": "assistant"})]
        events += [("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": p}}) for p in pieces]
        events += [("contentBlockStop", {"contentBlockIndex": 0}), ("messageStop", {"stopReason": "end_turn"})]
        return b"".join(_event_message(name, body) for name, body in events)

    def not_found(self, seen: SeenRequest) -> Reply:
        return Reply(
            404,
            {"message": f"Unknown operation {seen.raw_path}"},
            {"x-amzn-ErrorType": "UnknownOperationException"},
        )

    def model_ids(self) -> list[str]:
        return [r.path.split("/")[2] for r in self.requests]

    def success(self, seen: SeenRequest) -> dict[str, Any]:
        return {
            "output": {"message": {"role": "assistant", "content": [{"text": self.text}]}},
            "stopReason": "end_turn",
            "usage": {"inputTokens": 321, "outputTokens": 12, "totalTokens": 333},
            "metrics": {"latencyMs": 42},
        }

    @staticmethod
    def error(status: int, code: str, message: str = "", **headers: str) -> Reply:
        """An AWS rest-json error: the code travels in ``x-amzn-ErrorType``."""
        return Reply(
            status,
            {"message": message or code},
            {"x-amzn-ErrorType": f"{code}:http://internal.amazon.com/coral/com.amazon.bedrock/", **headers},
        )

    @classmethod
    def throttling(cls) -> Reply:
        return cls.error(429, "ThrottlingException", "Too many requests, please wait before trying again.")


def _event_message(event_type: str, body: dict[str, Any]) -> bytes:
    """One message of the AWS event-stream binary framing (what botocore's parser reads)."""
    import struct
    import zlib

    def header(name: str, value: str) -> bytes:
        n, v = name.encode(), value.encode()
        return struct.pack("!B", len(n)) + n + b"\x07" + struct.pack("!H", len(v)) + v

    headers = header(":event-type", event_type) + header(":content-type", "application/json") + header(
        ":message-type", "event")
    payload = json.dumps(body).encode()
    total = 12 + len(headers) + len(payload) + 4
    prelude = struct.pack("!II", total, len(headers))
    head = prelude + struct.pack("!I", zlib.crc32(prelude)) + headers + payload
    return head + struct.pack("!I", zlib.crc32(head))


class FakeOpenAIServer(FakeModelServer):
    """``POST /v1/chat/completions`` answering with the chat-completion response shape."""

    def __init__(
        self, text: str = "Release flags are removed within 30 days. [feature-flags]", chunks: list[str] | None = None
    ):
        super().__init__()
        self.text = text
        self.chunks = chunks  # how a streamed answer is cut (default: the text in three pieces)

    def matches(self, seen: SeenRequest) -> bool:
        return seen.method == "POST" and seen.path == "/v1/chat/completions"

    def stream_events(self, seen: SeenRequest) -> bytes | None:
        if not (seen.body and seen.json().get("stream")):
            return None
        third = max(1, len(self.text) // 3)
        pieces = self.chunks or [self.text[:third], self.text[third : 2 * third], self.text[2 * third :]]
        model = seen.json().get("model", "unknown")
        out = []
        for piece in [None, *pieces]:
            delta = {"role": "assistant", "content": ""} if piece is None else {"content": piece}
            event = {"id": "chatcmpl-fake-0001", "object": "chat.completion.chunk", "created": 1_700_000_000,
                     "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
            out.append(f"data: {json.dumps(event)}\n\n")
        out.append("data: [DONE]\n\n")
        return "".join(out).encode()

    def success(self, seen: SeenRequest) -> dict[str, Any]:
        model = seen.json().get("model", "unknown")
        return {
            "id": "chatcmpl-fake-0001",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": self.text},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 250, "completion_tokens": 11, "total_tokens": 261},
        }

    @staticmethod
    def error(status: int, message: str = "", **headers: str) -> Reply:
        body = {"error": {"message": message or f"HTTP {status}", "type": "server_error"}}
        return Reply(status, body, {k.replace("_", "-"): v for k, v in headers.items()})
