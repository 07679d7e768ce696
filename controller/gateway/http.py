"""The gateway's HTTP exchange for the AWS Lambda entry point (no sockets here).

``rollout serve`` runs the ASGI app (``controller.gateway.asgi``); API Gateway hands the Lambda a
whole request, so ``handle`` applies the same limits, bounded JSON parse and error bodies to
one already-read exchange. ``POST /v1/ask`` with ``Authorization: Bearer <OIDC JWT>`` and
``{"question": "..."}``; JSON out. Status codes as in the README's table.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from controller.gateway.limits import HttpError, Limits, parse_json

__all__ = ["MAX_BODY_BYTES", "handle"]

LIMITS = Limits()
MAX_BODY_BYTES = LIMITS.max_body_bytes
_HEADERS = {"Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store"}


def handle(
    gateway: Any, method: str, path: str, headers: Mapping[str, str], body: bytes
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP exchange, as pure as the gateway allows."""
    route = path.split("?", 1)[0]
    try:
        if route == "/healthz" and method == "GET":
            return 200, dict(_HEADERS), b'{"ok": true}'
        if route != "/v1/ask":
            raise HttpError(404, "not found", code="not_found")
        if method != "POST":
            raise HttpError(405, "use POST", code="method_not_allowed")
        if len(body) > LIMITS.max_body_bytes:
            raise HttpError(413, f"request body larger than {LIMITS.max_body_bytes} bytes", code="body_too_large")
        payload = parse_json(body, LIMITS)
        question = payload.get("question") if isinstance(payload, dict) else None
        if not isinstance(question, str) or not question.strip():
            raise HttpError(400, "field 'question' must be a non-empty string", param="question")
        if len(question) > LIMITS.max_question_chars:
            raise HttpError(413, f"question longer than {LIMITS.max_question_chars} characters", param="question")
    except HttpError as exc:
        return exc.status, dict(_HEADERS), exc.body()
    lowered = {k.lower(): v for k, v in headers.items()}
    auth = lowered.get("authorization", "")
    token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
    response = gateway.ask(question, token)
    return response.status, dict(_HEADERS), json.dumps(response.to_dict(), ensure_ascii=False).encode("utf-8")
