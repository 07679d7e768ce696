"""google-re2 over UTF-8 bytes: the fast calling convention every pass of the engine uses.

The binding's ``str`` API encodes the whole text again on every call (``finditer`` once per
match), which makes many matches in a long text quadratic; here a text is encoded once and RE2
runs on the bytes with ``pos``/``endpos``, offsets mapped back to ``str`` indices in one pass.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import re2

__all__ = ["Spans", "find_all"]

_UTF8_CONTINUATION = bytes(range(0x80, 0xC0))

Spans = Sequence[tuple[int, int]]


def _raw_matchers(regex: Any) -> tuple[Callable[..., Spans | None], Callable[..., Spans | None]]:
    """(search, anchored match) over ``bytes`` with ``pos``/``endpos``, returning the group spans
    or None. google-re2's public ``search`` wraps each call in a generator and a Match object,
    about a microsecond of Python; the scanner makes tens of thousands of calls per MB of dense
    input, so it calls the binding's ``Match`` directly when it is there (google-re2 >= 1.0) and
    falls back to the public API otherwise."""
    raw = getattr(regex, "_regexp", None)
    anchors = getattr(re2, "_Anchor", None)
    if raw is not None and anchors is not None and hasattr(raw, "Match"):
        native = raw.Match
        unanchored, anchor_start = anchors.UNANCHORED, anchors.ANCHOR_START

        def search(data: bytes, pos: int, endpos: int) -> Spans | None:
            spans = native(unanchored, data, pos, endpos)
            return spans if spans[0][0] >= 0 else None

        def match(data: bytes, pos: int, endpos: int) -> Spans | None:
            spans = native(anchor_start, data, pos, endpos)
            return spans if spans[0][0] >= 0 else None

        return search, match
    return _public_matcher(regex.search, regex.groups), _public_matcher(regex.match, regex.groups)


def _public_matcher(method: Callable[..., Any], groups: int) -> Callable[..., Spans | None]:
    def call(data: bytes, pos: int, endpos: int) -> Spans | None:
        m = method(data, pos, endpos)
        return None if m is None else [m.span(g) for g in range(groups + 1)]

    return call


def _char_offsets(data: bytes, offsets: set[int]) -> dict[int, int]:
    """Map UTF-8 byte offsets to ``str`` indices in one pass (a character is one non-continuation
    byte; ``surrogatepass`` keeps lone surrogates at three bytes, one character)."""
    out = {}
    prev_byte = prev_char = 0
    for b in sorted(offsets):
        chunk = data[prev_byte:b]
        prev_char += len(chunk.translate(None, _UTF8_CONTINUATION))
        out[b] = prev_char
        prev_byte = b
    return out


def find_all(regex: Any, text: str) -> list[list[tuple[int, int]]]:
    """Every non-overlapping match of ``regex`` in ``text`` (leftmost first, like ``finditer``), as
    the spans of all its groups in ``str`` indices ((-1, -1) for a group that did not take part)."""
    data = text.encode("utf-8", "surrogatepass")
    search = _raw_matchers(regex)[0]
    out: list[list[tuple[int, int]]] = []
    pos, n = 0, len(data)
    while pos <= n:
        spans = search(data, pos, n)
        if spans is None:
            break
        out.append([tuple(sp) for sp in spans])
        start, end = spans[0]
        pos = end if end > start else end + 1
    if out and len(data) != len(text):
        to_char = _char_offsets(data, {o for m in out for sp in m for o in sp if o >= 0})
        to_char[-1] = -1
        out = [[(to_char[a], to_char[b]) for a, b in m] for m in out]
    return out
