"""In-memory model adapters: real implementations that double as test seams and bench stubs.

``CannedAdapter`` answers instantly (a fixed text, a function of the request, or by default a
sentence citing every passage it was given) and records each request; ``FailingAdapter``
always raises, to exercise the gateway's fallback path.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from controller.models.base import ModelError, ModelRequest, ModelResponse, ModelUnavailable

__all__ = ["CANNED_MODEL_ID", "CannedAdapter", "FailingAdapter"]

CANNED_MODEL_ID = "test-canned-v1"


def _cite_passages(request: ModelRequest) -> str:
    sources = list(dict.fromkeys(p.source_id for p in request.passages or ()))
    if not sources:
        return "This is not in the docs."
    return "Canned answer. " + " ".join(f"[{s}]" for s in sources)


class CannedAdapter:
    """Zero-latency adapter: no I/O, deterministic, thread-safe; keeps every request."""

    name = "canned"

    def __init__(
        self,
        reply: str | Callable[[ModelRequest], str] = _cite_passages,
        *,
        model_id: str | None = None,
    ):
        self._reply = reply
        self.model_id = model_id
        self.requests: list[ModelRequest] = []
        self._lock = threading.Lock()

    def complete(self, request: ModelRequest) -> ModelResponse:
        with self._lock:
            self.requests.append(request)
        text = self._reply if isinstance(self._reply, str) else self._reply(request)
        return ModelResponse(
            text=text,
            model_id=self.model_id or request.model_id,
            input_tokens=len(request.system.split()) + len(request.prompt.split()),
            output_tokens=len(text.split()),
            latency_ms=0.0,
            stop_reason="end_turn",
        )


class FailingAdapter:
    """Always raises ``error`` (``ModelUnavailable`` by default); counts the calls."""

    name = "failing"

    def __init__(self, error: ModelError | None = None):
        self.error = error or ModelUnavailable("model endpoint is down (FailingAdapter)", code="test")
        self.calls = 0
        self._lock = threading.Lock()

    def complete(self, request: ModelRequest) -> ModelResponse:
        with self._lock:
            self.calls += 1
        raise self.error
