"""The gateway's ASGI application (Starlette), served by ``rollout serve`` on uvicorn.

Routes: ``POST /v1/ask`` (the gateway's own shape), ``POST /v1/chat/completions`` and
``GET /v1/models`` (OpenAI-compatible, see ``openai_api``), ``GET /healthz``, ``GET /readyz``,
``GET /metrics``. Every status the app produces has an OpenAI-style JSON error body
(``limits.error_body``). Limits are enforced while reading: a declared Content-Length over the
limit is refused before a byte of the body is read, a chunked body is counted as it arrives,
the body must arrive within ``body_timeout_s`` (408), and at most ``max_inflight`` requests
are answered at once (503 + ``Retry-After``). The request handler (``Gateway.ask``) runs in a
worker thread; the Lambda entry point calls the same handler through ``http.handle``.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from controller.gateway import openai_api
from controller.gateway.handler import AnswerStream, AskResponse
from controller.gateway.limits import HttpError, Limits, parse_json
from controller.gateway.metrics import CONTENT_TYPE_LATEST, GatewayMetrics, ObservedSink

__all__ = ["create_app"]

_JSON = "application/json"
_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT"})
_END = object()


def _json(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    return Response(body, status, headers={"cache-control": "no-store", **(headers or {})}, media_type=_JSON)


def _error(exc: HttpError) -> Response:
    return Response(exc.body(), exc.status, headers={"cache-control": "no-store", **exc.headers}, media_type=_JSON)


class _Guard:
    """Pure-ASGI front: method and header-size checks, and the in-flight cap, before routing."""

    def __init__(self, app: Any, limits: Limits, metrics: GatewayMetrics, paths: dict[str, tuple[str, ...]]):
        self.app, self.limits, self.metrics, self.paths = app, limits, metrics, paths
        self.inflight = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problem = self._check(scope)
        if problem is not None:
            self.metrics.rejected.labels(str(problem.status)).inc()
            await _error(problem)(scope, receive, send)
            return
        if self.inflight >= self.limits.max_inflight:
            self.metrics.rejected.labels("overload").inc()
            busy = HttpError(503, "the gateway is at its concurrency limit; retry shortly", type_="server_error",
                             code="overloaded", headers={"retry-after": str(self.limits.retry_after_s)})
            await _error(busy)(scope, receive, send)
            return
        self.inflight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.inflight -= 1

    def _check(self, scope: Any) -> HttpError | None:
        headers = scope.get("headers") or []
        size = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
        size += sum(len(k) + len(v) + 4 for k, v in headers)
        if size > self.limits.max_header_bytes or len(headers) > self.limits.max_headers:
            return HttpError(431, f"request headers larger than {self.limits.max_header_bytes} bytes "
                                  f"or more than {self.limits.max_headers} fields", code="headers_too_large")
        method = scope["method"]
        if method not in _KNOWN_METHODS:
            return HttpError(501, f"method {method[:20]!r} is not implemented", code="not_implemented")
        allowed = self.paths.get(scope["path"])
        if allowed is None:
            return HttpError(404, f"no route {scope['path'][:200]!r}", code="not_found")
        if method not in allowed:
            return HttpError(405, f"use {' or '.join(allowed)}", code="method_not_allowed",
                             headers={"allow": ", ".join(allowed)})
        return None


async def _read_body(request: Request, limits: Limits) -> bytes:
    """The body, bounded in bytes and time; refuses what cannot be a JSON request."""
    headers = request.headers
    length = headers.get("content-length")
    chunked = "chunked" in headers.get("transfer-encoding", "").lower()
    if length is None and not chunked:
        raise HttpError(411, "a Content-Length (or a chunked body) is required", code="length_required")
    if length is not None:
        if not length.isdigit():
            raise HttpError(400, "Content-Length must be a non-negative integer", code="bad_content_length")
        if int(length) > limits.max_body_bytes:
            raise HttpError(413, f"request body larger than {limits.max_body_bytes} bytes", code="body_too_large")
    ctype = headers.get("content-type")
    if ctype is not None and ctype.split(";", 1)[0].strip().lower() != _JSON:
        raise HttpError(415, "send the body as application/json", code="unsupported_media_type")
    parts: list[bytes] = []
    total = 0
    try:
        with anyio.fail_after(limits.body_timeout_s):
            async for part in request.stream():
                total += len(part)
                if total > limits.max_body_bytes:
                    raise HttpError(413, f"request body larger than {limits.max_body_bytes} bytes",
                                    code="body_too_large", headers={"connection": "close"})
                parts.append(part)
    except TimeoutError:
        raise HttpError(408, f"the body did not arrive within {limits.body_timeout_s:g} s", code="timeout",
                        headers={"connection": "close"}) from None
    except ClientDisconnect:
        raise HttpError(400, "the client went away before the body ended", code="client_disconnect") from None
    return b"".join(parts)


def _bearer(request: Request) -> str:
    auth = request.headers.get("authorization", "")
    # A missing token still goes through the gateway: identity refuses it (401) and audits it.
    return auth[7:].strip() if auth[:7].lower() == "bearer " else ""


def create_app(gateway: Any, limits: Limits | None = None, *, flags_path: Any = None) -> Any:
    """The ASGI app for ``gateway``; wraps its sink so every audit record also feeds /metrics.
    ``flags_path`` (the live flag document) lets /readyz check that every served release loads."""
    limits = limits or Limits()
    metrics = GatewayMetrics()
    if not isinstance(gateway.sink, ObservedSink):
        gateway.sink = ObservedSink(gateway.sink, metrics)
    else:
        metrics = gateway.sink.metrics
    wf = gateway.workflow
    allowed_models = (wf.id, *(m.id for m in wf.surface.models))
    threads = anyio.CapacityLimiter(limits.max_inflight)

    async def in_thread(fn: Any, *args: Any, **kwargs: Any) -> Any:
        return await anyio.to_thread.run_sync(lambda: fn(*args, **kwargs), limiter=threads)

    def reply(route: str, response: Response) -> Response:
        metrics.responses.labels(route, str(response.status_code)).inc()
        return response

    async def ask(request: Request) -> Response:
        try:
            payload = parse_json(await _read_body(request, limits), limits)
            question = payload.get("question") if isinstance(payload, dict) else None
            if not isinstance(question, str) or not question.strip():
                raise HttpError(400, "field 'question' must be a non-empty string", param="question")
            if len(question) > limits.max_question_chars:
                raise HttpError(413, f"question longer than {limits.max_question_chars} characters", param="question")
        except HttpError as exc:
            return reply("ask", _error(exc))
        response: AskResponse = await in_thread(gateway.ask, question, _bearer(request))
        return reply("ask", _json(response.status, response.to_dict(), _decision_headers(response)))

    async def chat(request: Request) -> Response:
        try:
            body = parse_json(await _read_body(request, limits), limits)
            chat_request = openai_api.parse_chat(body, allowed_models, limits)
        except HttpError as exc:
            return reply("chat", _error(exc))
        token = _bearer(request)
        if not chat_request.stream:
            response = await in_thread(gateway.ask, chat_request.question, token, history=chat_request.history)
            return reply("chat", _chat_response(response, chat_request.model))
        result = await in_thread(gateway.ask_stream, chat_request.question, token, history=chat_request.history)
        if isinstance(result, AskResponse):
            problem = openai_api.refusal_error(result)
            if problem is not None:
                return reply("chat", _with_headers(_error(problem), result))
            return reply("chat", _sse(_single(result, chat_request.model), _decision_headers(result)))
        headers = {"x-request-id": result.request_id, "x-rollout-decision": "streaming"}
        return reply("chat", _sse(_stream(result, chat_request.model, in_thread), headers))

    async def models(request: Request) -> Response:
        return reply("models", _json(200, openai_api.models_list((wf.id,))))

    async def healthz(request: Request) -> Response:
        return _json(200, {"ok": True})

    async def readyz(request: Request) -> Response:
        problems = await in_thread(_readiness, gateway, flags_path)
        return _json(503 if problems else 200, {"ok": not problems, "problems": problems})

    async def metrics_route(request: Request) -> Response:
        return Response(metrics.render(), 200, media_type=CONTENT_TYPE_LATEST)

    async def http_error(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 500)
        return _error(HttpError(status, str(getattr(exc, "detail", "error")), code=str(status)))

    async def server_error(request: Request, exc: Exception) -> Response:
        # Reached only if the handler itself could not run or record (e.g. the audit sink failed).
        metrics.upstream_errors.labels(type(exc).__name__).inc()
        return _error(HttpError(500, f"internal error ({type(exc).__name__})", type_="server_error", code="error"))

    routes = [
        Route("/v1/ask", ask, methods=["POST"]),
        Route("/v1/chat/completions", chat, methods=["POST"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_route, methods=["GET"]),
    ]
    paths = {r.path: tuple(m for m in sorted(r.methods or ()) if m != "HEAD") for r in routes}
    app = Starlette(routes=routes, exception_handlers={HTTPException: http_error, Exception: server_error})
    guard = _Guard(app, limits, metrics, paths)
    guard.metrics = metrics  # type: ignore[attr-defined]
    guard.gateway = gateway  # type: ignore[attr-defined]
    return guard


def _decision_headers(response: AskResponse) -> dict[str, str]:
    return {"x-request-id": response.request_id, "x-rollout-decision": response.decision.value}


def _with_headers(response: Response, result: AskResponse) -> Response:
    response.headers.update(_decision_headers(result))
    return response


def _chat_response(response: AskResponse, model: str) -> Response:
    problem = openai_api.refusal_error(response)
    if problem is not None:
        return _with_headers(_error(problem), response)
    return _json(200, openai_api.completion(response, model), _decision_headers(response))


def _sse(body: AsyncIterator[bytes], headers: dict[str, str]) -> Response:
    return StreamingResponse(body, 200, headers={"cache-control": "no-store", **headers},
                             media_type="text/event-stream")


async def _single(response: AskResponse, model: str) -> AsyncIterator[bytes]:
    created = int(time.time())
    rid = response.request_id
    yield openai_api.chunk(rid, model, created, {"role": "assistant", "content": response.answer})
    yield openai_api.chunk(rid, model, created, {}, openai_api.finish_reason(response), openai_api.rollout_of(response))
    yield b"data: [DONE]\n\n"


async def _stream(stream: AnswerStream, model: str, in_thread: Any) -> AsyncIterator[bytes]:
    """The answer's deltas as SSE chunks; the stream (and so its audit record) is closed however
    this ends: finished, failed, or cancelled because the client went away."""
    created = int(time.time())
    rid = stream.request_id
    deltas = iter(stream)
    try:
        yield openai_api.chunk(rid, model, created, {"role": "assistant", "content": ""})
        while True:
            delta = await in_thread(next, deltas, _END)
            if delta is _END:
                break
            yield openai_api.chunk(rid, model, created, {"content": delta})
        final = stream.response
        finish = openai_api.finish_reason(final) if final else "stop"
        if final is not None and final.reason == "model output contained forbidden content":
            finish = "content_filter"
        rollout = openai_api.rollout_of(final) if final else None
        yield openai_api.chunk(rid, model, created, {}, finish, rollout)
        yield b"data: [DONE]\n\n"
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(stream.close)


def _readiness(gateway: Any, path: Any) -> list[str]:
    """Why the gateway cannot serve now: flags not READY, a served release not loadable."""
    problems = []
    flags = gateway.flags
    ready = getattr(flags, "ready", None)
    if ready is not None and not ready():
        problems.append("flag provider not READY (flag document missing, unreadable or stale)")
    release_flag = gateway.workflow.rollout.release_flag
    if path is not None and not problems:
        try:
            doc = json.loads(path.read_bytes())
            variants = doc["flags"][release_flag]["variants"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            return [f"flag document unreadable ({type(exc).__name__})"]
        for digest in sorted({v for v in variants.values() if isinstance(v, str) and v != "off"}):
            try:
                gateway.release(digest)
            except Exception as exc:  # noqa: BLE001 - reported, never raised
                problems.append(f"release {digest[:16]} not loadable ({type(exc).__name__})")
    return problems
