"""Any OpenAI-compatible chat endpoint (vLLM, Ollama, LiteLLM, Azure OpenAI's v1 API), via httpx.

``POST {base_url}/v1/chat/completions`` with the standard body, on one pooled keep-alive
``httpx.Client`` per adapter (a TCP connection per request cost the gateway ~1.8 ms), with
connect/read/write/pool timeouts. ``stream()`` asks for ``stream: true`` and yields the
content deltas of the server-sent events as they arrive. Throttling and overload
(429, 502, 503, 504) are retried a bounded number of times with full-jitter exponential
backoff, honouring ``Retry-After``; anything else, and what is left after the retries, maps
onto the model port (429 -> ``ModelThrottled``, the rest -> ``ModelUnavailable``). The API
key is read from an environment variable named by the operator at call time, so a rotated
key is picked up without a restart; it never comes from the bundle.
"""

from __future__ import annotations

import email.utils
import json
import os
import random
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Literal

import httpx

from controller.models.base import (
    ModelError,
    ModelRequest,
    ModelResponse,
    ModelThrottled,
    ModelUnavailable,
)

__all__ = ["DEFAULT_API_KEY_ENV", "RETRY_STATUSES", "OpenAICompatibleAdapter"]

DEFAULT_API_KEY_ENV = "ROLLOUT_MODEL_API_KEY"
RETRY_STATUSES = frozenset({429, 502, 503, 504})


class OpenAICompatibleAdapter:
    """Chat completions against ``base_url``; safe to share between threads (httpx's pool is).

    ``auth`` is ``"bearer"`` (``Authorization: Bearer KEY``) or ``"api-key"`` (Azure's
    ``api-key: KEY`` header); ``api_version`` adds Azure's ``?api-version=`` query. When the
    variable ``api_key_env`` is unset or empty no credential is sent (local vLLM or Ollama).
    ``sleep`` and ``rng`` are injectable so tests need not wait.
    """

    name = "openai-compatible"

    def __init__(
        self,
        *,
        base_url: str,
        api_key_env: str | None = DEFAULT_API_KEY_ENV,
        auth: Literal["bearer", "api-key"] = "bearer",
        api_version: str | None = None,
        timeout_s: float = 30.0,
        max_attempts: int = 3,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 8.0,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        environ: Mapping[str, str] | None = None,
        pool_size: int = 64,
    ):
        self.url = base_url.rstrip("/") + "/v1/chat/completions"
        if api_version:
            self.url += "?" + urllib.parse.urlencode({"api-version": api_version})
        self.api_key_env = api_key_env
        self.auth = auth
        self.timeout_s = timeout_s
        self.max_attempts = max(1, max_attempts)
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._environ = os.environ if environ is None else environ
        self.pool_size = pool_size
        self._http: httpx.Client | None = None
        self._client()  # built once, here: lazily, two threads could race to build two pools

    def body(self, request: ModelRequest) -> dict[str, Any]:
        """The JSON body for ``request`` (pure)."""
        messages = []
        if request.system:
            messages.append({"role": "system", "content": request.system})
        messages.append({"role": "user", "content": request.prompt})
        return {
            "model": request.model_id,
            "messages": messages,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
        }

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        key = self._environ.get(self.api_key_env, "") if self.api_key_env else ""
        if key:
            if self.auth == "api-key":
                headers["api-key"] = key
            else:
                headers["Authorization"] = f"Bearer {key}"
        return headers

    def _client(self) -> httpx.Client:
        if self._http is None:
            limits = httpx.Limits(max_connections=self.pool_size, max_keepalive_connections=self.pool_size,
                                  keepalive_expiry=30.0)
            timeout = httpx.Timeout(self.timeout_s, connect=min(self.timeout_s, 5.0))
            # trust_env=False: a model endpoint is named by the bundle, never by a shell's proxy variables
            self._http = httpx.Client(timeout=timeout, limits=limits, trust_env=False)
        return self._http

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def complete(self, request: ModelRequest) -> ModelResponse:
        started = time.perf_counter()
        data = json.dumps(self.body(request)).encode("utf-8")
        payload = self._send(request, data, stream=False)
        return self._parse(request, payload, (time.perf_counter() - started) * 1000)

    def stream(self, request: ModelRequest) -> Iterator[str]:
        """The answer's content deltas as the endpoint streams them (retries only before the first)."""
        data = json.dumps({**self.body(request), "stream": True}).encode("utf-8")
        response = self._send(request, data, stream=True)
        assert isinstance(response, httpx.Response)
        try:
            for line in response.iter_lines():
                if not line.startswith("data:"):
                    continue
                item = line[5:].strip()
                if item == "[DONE]":
                    break
                try:
                    choice = (json.loads(item).get("choices") or [{}])[0]
                    delta = (choice.get("delta") or {}).get("content")
                except (ValueError, AttributeError, IndexError, TypeError) as exc:
                    raise ModelUnavailable(f"{self.url} streamed a malformed event for {request.model_id}",
                                           code="MalformedResponse") from exc
                if delta:
                    yield delta
        except httpx.HTTPError as exc:
            raise ModelUnavailable(f"{self.url} broke off the stream for {request.model_id}: {exc}",
                                   code="timeout" if isinstance(exc, httpx.TimeoutException) else "connection") from exc
        finally:
            response.close()

    def _send(self, request: ModelRequest, data: bytes, *, stream: bool) -> Any:
        """POST with bounded retries; the body (or, for a stream, the open response) on success."""
        headers = self._headers()
        client = self._client()
        for attempt in range(1, self.max_attempts + 1):
            try:
                call = client.build_request("POST", self.url, content=data, headers=headers)
                reply = client.send(call, stream=stream)
            except httpx.HTTPError as exc:  # connect errors, timeouts, resets
                raise ModelUnavailable(
                    f"{self.url} is unreachable for {request.model_id}: {exc!r}",
                    code="timeout" if isinstance(exc, httpx.TimeoutException) else "connection",
                ) from exc
            if reply.status_code < 400:
                if stream:
                    return reply
                try:
                    return reply.content
                finally:
                    reply.close()
            detail = reply.read()[:2048].decode("utf-8", "replace").strip()
            reply.close()
            delay = self._retry_delay(reply.status_code, reply.headers.get("Retry-After"), attempt)
            if delay is None:
                raise self._error(request, reply.status_code, detail)
            self._sleep(delay)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _retry_delay(self, status: int, retry_after_header: str | None, attempt: int) -> float | None:
        """Seconds to wait before the next attempt, or None to give up now."""
        if status not in RETRY_STATUSES or attempt >= self.max_attempts:
            return None
        ceiling = min(self.backoff_max_s, self.backoff_base_s * 2 ** (attempt - 1))
        delay = self._rng.uniform(0, ceiling)
        retry_after = _retry_after_s(retry_after_header)
        if retry_after is not None:
            if retry_after > self.backoff_max_s:
                return None  # the server asks for longer than a request may wait
            delay = retry_after + delay * 0.1
        return delay

    def _error(self, request: ModelRequest, status: int, detail: str) -> ModelError:
        message = f"{self.url} answered HTTP {status} for {request.model_id}: {detail[:300]}"
        if status in (401, 403) and self.api_key_env:
            message += f" (the API key is read from ${self.api_key_env})"
        if status == 429:
            return ModelThrottled(message, code="429")
        return ModelUnavailable(message, code=str(status))

    def _parse(self, request: ModelRequest, payload: bytes, latency_ms: float) -> ModelResponse:
        try:
            reply = json.loads(payload)
            choice = reply["choices"][0]
            text = choice["message"]["content"] or ""
            usage = reply.get("usage") or {}
            return ModelResponse(
                text=text,
                model_id=str(reply.get("model") or request.model_id),
                input_tokens=int(usage.get("prompt_tokens", 0)),
                output_tokens=int(usage.get("completion_tokens", 0)),
                latency_ms=latency_ms,
                stop_reason=choice.get("finish_reason"),
            )
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise ModelUnavailable(
                f"{self.url} returned a reply without a completion for {request.model_id}: {exc!r}",
                code="MalformedResponse",
            ) from exc


def _retry_after_s(value: str | None) -> float | None:
    """``Retry-After`` as seconds: either delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())
