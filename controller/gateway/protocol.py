"""uvicorn's httptools protocol with the gateway's connection-level limits and JSON errors.

uvicorn bounds neither the time a client may take to send its headers (slowloris) nor their
size, and answers parse errors with a plain-text 400. This subclass adds, per connection:
a header deadline (``header_timeout_s``, answered 408 then closed), a header byte/field cap
while parsing (431), a connection cap (``max_connections``: 503 + ``Retry-After``, closed),
and an OpenAI-style JSON body for every error it sends (400 malformed request, e.g. a bogus
or negative Content-Length; 501 an unknown or lower-case method).
"""

from __future__ import annotations

import asyncio
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from controller.gateway.limits import Limits, error_body

__all__ = ["protocol_class"]

_REASONS = {400: b"Bad Request", 408: b"Request Timeout", 431: b"Request Header Fields Too Large",
            501: b"Not Implemented", 503: b"Service Unavailable"}


class _Reject(Exception):
    def __init__(self, status: int, message: str, code: str):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


class GatewayHttpProtocol(HttpToolsProtocol):
    limits: Limits = Limits()

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._header_bytes = 0
        self._header_count = 0
        self._reject: _Reject | None = None
        self._header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            self._send_error(_Reject(503, "the gateway has too many open connections; retry shortly", "overloaded"))
            return
        self._arm_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        if self._header_deadline is None and (self.cycle is None or self.cycle.response_complete):
            self._arm_deadline()  # a new request on a kept-alive connection
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._send_error(_Reject(400, "protocol upgrades are not supported", "upgrade_not_supported"))
        except httptools.HttpParserError as exc:
            reject = self._reject or _classify(str(exc))
            self._send_error(reject)

    def send_400_response(self, msg: str) -> None:
        self._send_error(self._reject or _Reject(400, f"malformed HTTP request ({msg})", "bad_request"))

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = 0
        self._header_count = 0

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._disarm_deadline()
        super().on_headers_complete()

    # --- helpers ------------------------------------------------------------------------------

    def _count(self, n: int) -> None:
        self._header_bytes += n
        if self._header_bytes > self.limits.max_header_bytes or self._header_count > self.limits.max_headers:
            self._reject = _Reject(431, f"request headers larger than {self.limits.max_header_bytes} bytes or more "
                                        f"than {self.limits.max_headers} fields", "headers_too_large")
            raise self._reject  # httptools turns this into a parser error; data_received answers

    def _arm_deadline(self) -> None:
        self._disarm_deadline()
        self._header_deadline = self.loop.call_later(self.limits.header_timeout_s, self._header_timeout)

    def _disarm_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _header_timeout(self) -> None:
        self._header_deadline = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a request is being answered; the app bounds the body's time
        self._send_error(_Reject(408, f"request headers did not arrive within {self.limits.header_timeout_s:g} s",
                                 "timeout"))

    def _send_error(self, reject: _Reject) -> None:
        self._disarm_deadline()
        if self.transport.is_closing():
            return
        body = error_body(reject.message, code=reject.code)
        head = [b"HTTP/1.1 %d %s\r\n" % (reject.status, _REASONS.get(reject.status, b"Error")),
                b"content-type: application/json\r\n", b"content-length: %d\r\n" % len(body),
                b"connection: close\r\n"]
        if reject.status == 503:
            head.append(b"retry-after: %d\r\n" % self.limits.retry_after_s)
        self.transport.write(b"".join(head) + b"\r\n" + body)
        self.transport.close()


def _classify(message: str) -> _Reject:
    if "method" in message.lower():
        return _Reject(501, "method not implemented (methods are upper-case: GET, POST)", "not_implemented")
    return _Reject(400, f"malformed HTTP request ({message[:120]})", "bad_request")


def protocol_class(limits: Limits) -> type[GatewayHttpProtocol]:
    """The protocol class uvicorn instantiates per connection, bound to ``limits``."""
    return type("BoundGatewayHttpProtocol", (GatewayHttpProtocol,), {"limits": limits})
