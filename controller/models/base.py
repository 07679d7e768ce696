"""The model port: one request/response shape, one Protocol, and the failures adapters raise.

Every adapter (Bedrock, OpenAI-compatible, the offline local baseline, the in-memory test
adapters) takes a ``ModelRequest`` and returns a ``ModelResponse`` or raises a ``ModelError``.
Model failures are operational, not the user's fault, so the hierarchy hangs under
``BackendUnavailable`` (CLI exit 5); the gateway catches ``ModelError`` and answers with the
bundle's documented fallback::

    BackendUnavailable (controller.errors, exit 5)
    └── ModelError                 any failure to get an answer from a model
        ├── ModelUnavailable       endpoint down, refused, 5xx, timeout, malformed reply
        └── ModelThrottled         429 / ThrottlingException after the adapter's retries
"""

from __future__ import annotations

from dataclasses import dataclass

from controller.core.retrieval import Passage
from controller.errors import BackendUnavailable
from controller.ports import ModelAdapter

__all__ = [
    "ModelAdapter",
    "ModelError",
    "ModelRequest",
    "ModelResponse",
    "ModelThrottled",
    "ModelUnavailable",
]


@dataclass(frozen=True)
class ModelRequest:
    """One completion: the rendered prompt plus what it was rendered from.

    ``system`` and ``prompt`` are what a remote model sees (the template already rendered with
    the context and the redacted question). ``question`` and ``passages`` are the same material
    unrendered, for adapters that do not read prompts (the local extractive baseline).
    ``passages`` is ``None`` when the caller did not retrieve, and ``()`` when it retrieved and
    found nothing relevant: the local adapter then answers "not in the docs".
    """

    model_id: str
    system: str
    prompt: str
    max_tokens: int = 800
    temperature: float = 0.0
    passages: tuple[Passage, ...] | None = None
    question: str = ""


@dataclass(frozen=True)
class ModelResponse:
    """What the model said, which model said it, and what it cost."""

    text: str
    model_id: str
    input_tokens: int
    output_tokens: int
    latency_ms: float
    # e.g. "end_turn", "max_tokens", "guardrail_intervened" (Bedrock) or "stop" (OpenAI).
    stop_reason: str | None = None


class ModelError(BackendUnavailable):
    """A model could not produce an answer; ``code`` is the endpoint's error code or status."""

    def __init__(self, message: str, *, code: str | None = None):
        super().__init__(message)
        self.code = code


class ModelUnavailable(ModelError):
    """The endpoint is down, refused the call, timed out, failed (5xx) or replied nonsense."""


class ModelThrottled(ModelError):
    """The endpoint kept throttling (HTTP 429 / ThrottlingException) through every retry."""
