"""The OpenAI Chat Completions shapes the gateway speaks, and how its decisions map onto them (pure).

``POST /v1/chat/completions``: the last ``user`` message is the question; every other message
passes the same data boundaries (a forbidden value anywhere blocks the request) but the model
sees only the release's prompt template. ``model`` must be the workflow id or one of the
bundle's sanctioned models. Sampling parameters are the release's, not the client's.

Decisions, chosen so that a stock client (the SDKs, IDE assistants, Open WebUI, LibreChat)
shows the user the policy message:

==========  ======  ==================================================================
answered    200     assistant message, ``finish_reason: "stop"``
fallback    200     assistant message with the bundle's fallback text
disabled    200     assistant message with the fallback text (kill switch / flags)
blocked     200     assistant message with the block notice, ``finish_reason: "content_filter"``
refused     401/403 error object, type ``authentication_error`` / ``permission_error``
error       500     error object, type ``server_error``
==========  ======  ==================================================================

Every response carries ``x-rollout-decision`` and ``x-request-id``; the body's ``rollout``
member has the gateway's own fields (decision, citations, release, reason).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from controller.gateway.handler import AskResponse, Decision
from controller.gateway.limits import HttpError, Limits

__all__ = ["ChatRequest", "chunk", "completion", "models_list", "parse_chat", "refusal_error"]


@dataclass(frozen=True)
class ChatRequest:
    model: str
    question: str
    history: tuple[str, ...]
    stream: bool


def _content(message: Any, index: int) -> str:
    if not isinstance(message, dict):
        raise HttpError(400, f"messages[{index}] must be an object", param=f"messages[{index}]")
    content = message.get("content")
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise HttpError(400, f"messages[{index}].content: only text parts are accepted",
                                param=f"messages[{index}].content")
            parts.append(part["text"])
        return "\n".join(parts)
    raise HttpError(400, f"messages[{index}].content must be a string or a list of text parts",
                    param=f"messages[{index}].content")


def parse_chat(payload: Any, allowed_models: tuple[str, ...], limits: Limits) -> ChatRequest:
    """Validate a chat completions body; every problem is a 400 naming the field."""
    if not isinstance(payload, dict):
        raise HttpError(400, "body must be a JSON object")
    model = payload.get("model")
    if model not in allowed_models:
        raise HttpError(400, f"model {str(model)[:80]!r} is not served here; use one of: {', '.join(allowed_models)}",
                        param="model", code="model_not_found")
    messages = payload.get("messages")
    if not isinstance(messages, list) or not messages:
        raise HttpError(400, "messages must be a non-empty list", param="messages")
    if len(messages) > limits.max_messages:
        raise HttpError(400, f"at most {limits.max_messages} messages", param="messages")
    texts = [_content(m, i) for i, m in enumerate(messages)]
    users = [i for i, m in enumerate(messages) if m.get("role") == "user"]
    if not users or not texts[users[-1]].strip():
        raise HttpError(400, "the last user message must have text content", param="messages")
    last = users[-1]
    if sum(len(t) for t in texts) > limits.max_question_chars:
        raise HttpError(413, f"messages longer than {limits.max_question_chars} characters", param="messages")
    stream = payload.get("stream", False)
    if not isinstance(stream, bool):
        raise HttpError(400, "stream must be true or false", param="stream")
    history = tuple(t for i, t in enumerate(texts) if i != last and t)
    return ChatRequest(model, texts[last], history, stream)


def _rollout(response: AskResponse) -> dict[str, Any]:
    data = response.to_dict()
    data.pop("answer")
    return data


def finish_reason(response: AskResponse) -> str:
    return "content_filter" if response.decision is Decision.BLOCKED else "stop"


def refusal_error(response: AskResponse) -> HttpError | None:
    """The error object for decisions a client must see as an HTTP error, else None."""
    if response.decision is Decision.REFUSED:
        kind = "permission_error" if response.status == 403 else "authentication_error"
        return HttpError(response.status, response.answer, type_=kind, code=response.decision.value)
    if response.decision is Decision.ERROR:
        return HttpError(500, f"internal error; request {response.request_id} was recorded", type_="server_error",
                         code="error")
    return None


def completion(response: AskResponse, model: str) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{response.request_id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": response.answer},
            "finish_reason": finish_reason(response),
        }],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        "rollout": _rollout(response),
    }


def chunk(request_id: str, model: str, created: int, delta: dict[str, Any], finish: str | None = None,
          rollout: dict[str, Any] | None = None) -> bytes:
    """One server-sent event in OpenAI's ``chat.completion.chunk`` format."""
    body: dict[str, Any] = {
        "id": f"chatcmpl-{request_id}",
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    if rollout is not None:
        body["rollout"] = rollout
    return b"data: " + json.dumps(body, ensure_ascii=False).encode("utf-8") + b"\n\n"


def rollout_of(response: AskResponse) -> dict[str, Any]:
    return _rollout(response)


def models_list(model_ids: tuple[str, ...]) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [{"id": m, "object": "model", "created": 0, "owned_by": "ai-rollout"} for m in model_ids],
    }
