"""Request limits and the bounded JSON parse: what a hostile body can cost the gateway (pure).

Every limit answers with a JSON error (``HttpError``) and a status from the README's table;
nothing here reads a socket. The ASGI app applies them while it reads the body
(``controller.gateway.asgi``), the HTTP protocol applies the header limits while it parses
(``controller.gateway.protocol``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = ["HttpError", "Limits", "error_body", "parse_json"]


@dataclass(frozen=True)
class Limits:
    """The server's bounds; one instance per server, defaults as documented in the README."""

    max_body_bytes: int = 64 * 1024
    max_header_bytes: int = 16 * 1024  # all request-line and header bytes together
    max_headers: int = 100
    max_question_chars: int = 16_000
    max_messages: int = 64
    max_json_depth: int = 32
    max_number_chars: int = 64
    header_timeout_s: float = 10.0  # from connection (or previous response) to complete headers
    body_timeout_s: float = 10.0  # from complete headers to complete body
    keep_alive_s: float = 5.0
    max_inflight: int = 64  # requests being answered at once (per worker); more get 503
    max_connections: int = 1024  # open connections per worker; more are answered 503 and closed
    retry_after_s: int = 1


class HttpError(Exception):
    """An HTTP error with its OpenAI-style JSON body (the one error shape of every route)."""

    def __init__(self, status: int, message: str, *, type_: str = "invalid_request_error", code: str | None = None,
                 param: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.code, self.param = status, message, type_, code, param
        self.headers = headers or {}

    def body(self) -> bytes:
        return error_body(self.message, type_=self.type, code=self.code, param=self.param)


def error_body(message: str, *, type_: str = "invalid_request_error", code: str | None = None,
               param: str | None = None) -> bytes:
    """``{"error": {"message", "type", "param", "code"}}``: what OpenAI's SDKs parse."""
    payload = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return json.dumps(payload, ensure_ascii=True).encode("ascii")


def parse_json(body: bytes, limits: Limits) -> Any:
    """Parse a request body with bounded depth and number size; any violation is a 400.

    The body is already bounded in bytes (``max_body_bytes``), so the C scanner's work is
    bounded too; what remains is depth (the scanner recurses: RecursionError) and numbers
    (int() of a 5000-digit literal is slow and then refused by CPython's digit limit)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise HttpError(400, "body is not valid UTF-8", code="invalid_json") from None

    def number(literal: str) -> Any:
        if len(literal) > limits.max_number_chars:
            raise HttpError(400, f"a number in the body is longer than {limits.max_number_chars} characters",
                            code="invalid_json")
        return float(literal) if any(c in literal for c in ".eE") else int(literal)

    def constant(name: str) -> Any:
        raise HttpError(400, f"{name} is not JSON", code="invalid_json")

    try:
        value = json.loads(text, parse_int=number, parse_float=number, parse_constant=constant)
    except HttpError:
        raise
    except RecursionError:
        raise HttpError(400, f"body nests deeper than {limits.max_json_depth} levels", code="invalid_json") from None
    except ValueError as exc:
        raise HttpError(400, f"body is not JSON ({str(exc)[:100]})", code="invalid_json") from None
    if _depth_exceeds(value, limits.max_json_depth):
        raise HttpError(400, f"body nests deeper than {limits.max_json_depth} levels", code="invalid_json")
    return value


def _depth_exceeds(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False
