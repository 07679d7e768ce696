"""The gateway's HTTP surface, shared by ``rollout serve`` and the AWS Lambda entry point.

``POST /v1/ask`` with ``Authorization: Bearer <OIDC JWT>`` and ``{"question": "..."}``;
JSON out. Status codes: 200 answered or fallback, 400 malformed request, 401/403 identity
refused, 404 unknown path, 405 wrong method, 413 body too large, 422 blocked by a data
boundary, 503 workflow disabled (kill switch or unreadable flags).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["MAX_BODY_BYTES", "handle", "make_server"]

MAX_BODY_BYTES = 64 * 1024
MAX_QUESTION_CHARS = 16_000


def _json(status: int, payload: Mapping[str, Any]) -> tuple[int, dict[str, str], bytes]:
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    return status, {"Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store"}, body


def _error(status: int, message: str) -> tuple[int, dict[str, str], bytes]:
    return _json(status, {"error": message})


def handle(
    gateway: Any, method: str, path: str, headers: Mapping[str, str], body: bytes
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP exchange, as pure as the gateway allows: no sockets here."""
    if path.split("?", 1)[0] == "/healthz" and method == "GET":
        return _json(200, {"ok": True})
    if path.split("?", 1)[0] != "/v1/ask":
        return _error(404, "not found")
    if method != "POST":
        return _error(405, "use POST")
    if len(body) > MAX_BODY_BYTES:
        return _error(413, f"request body larger than {MAX_BODY_BYTES} bytes")
    lowered = {k.lower(): v for k, v in headers.items()}
    auth = lowered.get("authorization", "")
    # A missing token still goes through the gateway: identity refuses it (401) and audits it.
    token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return _error(400, "body must be JSON: {\"question\": \"...\"}")
    question = payload.get("question") if isinstance(payload, dict) else None
    if not isinstance(question, str) or not question.strip():
        return _error(400, "field 'question' must be a non-empty string")
    if len(question) > MAX_QUESTION_CHARS:
        return _error(413, f"question longer than {MAX_QUESTION_CHARS} characters")
    response = gateway.ask(question, token)
    return _json(response.status, response.to_dict())


class _Handler(BaseHTTPRequestHandler):
    gateway: Any = None
    server_version = "ai-rollout"

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            status, headers, body = _error(413, f"request body larger than {MAX_BODY_BYTES} bytes")
            self.close_connection = True
        else:
            raw = self.rfile.read(length) if length else b""
            status, headers, body = handle(self.gateway, method, self.path, dict(self.headers), raw)
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        self._serve("POST")

    def do_GET(self) -> None:  # noqa: N802
        self._serve("GET")

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass  # the audit record is the log; no question text on stderr


def make_server(gateway: Any, host: str = "127.0.0.1", port: int = 8080) -> ThreadingHTTPServer:
    handler = type("GatewayHandler", (_Handler,), {"gateway": gateway})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def serve_in_thread(gateway: Any, host: str = "127.0.0.1", port: int = 0) -> tuple[ThreadingHTTPServer, str]:
    """Start a server on a background thread; returns it and its base URL (tests, demos)."""
    server = make_server(gateway, host, port)
    threading.Thread(target=server.serve_forever, daemon=True, name="rollout-serve").start()
    return server, f"http://{host}:{server.server_address[1]}"
