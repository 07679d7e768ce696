"""Layered scanning: the text as sent, its normalised view, and what its encoded runs decode to.

``scan_layers(plain, text)`` runs the plain scanner (``plain``: text -> hits in its own offsets) on
the text, on its normalised view when there is one (``normalise.py``; only windows around the
view's edits, since elsewhere the view is the text), and on every run the
decoding layer turns into text (``decoding.py``), recursively up to ``decoding.MAX_DEPTH``. Every
hit comes back in offsets of the original text: a view hit through the view's piece map (so the
span includes the zero-width characters and escapes inside it), a decoded hit as the whole
encoded run.
"""

from __future__ import annotations

from collections.abc import Callable

from controller.boundaries.decoding import MAX_DEPTH, budget_for, decoded_runs
from controller.boundaries.normalise import normalised_view

__all__ = ["scan_layers"]

RawHit = tuple[int, int, int]
Plain = Callable[[str], list[RawHit]]


def scan_layers(plain: Plain, text: str) -> list[RawHit]:
    """Every hit of ``plain`` in ``text``, its normalised view and its decoded runs."""
    return _scan(plain, text, 0, [budget_for(text)])


# Outside the view's pieces the view is the original text, already scanned: only windows around
# the edits are scanned again. A window reaches _WINDOW characters either side of an edit, then on
# to the next whitespace (at most _WIDEN more), so a token cut by an edit is seen whole.
_WINDOW = 1024
_WIDEN = 4096
_WHITESPACE = frozenset(" \t\r\n")


def _scan_view(plain: Plain, view: str, pieces: tuple[tuple[int, int, int, int], ...]) -> list[RawHit]:
    n = len(view)
    windows: list[list[int]] = []
    for vs, ve, _, _ in pieces:
        start, end = max(0, vs - _WINDOW), min(n, ve + _WINDOW)
        if windows and start <= windows[-1][1]:
            windows[-1][1] = max(windows[-1][1], end)
        else:
            windows.append([start, end])
    if sum(e - s for s, e in windows) * 2 > n:
        return plain(view)
    out: list[RawHit] = []
    for start, end in windows:
        floor, ceiling = max(0, start - _WIDEN), min(n, end + _WIDEN)
        while start > floor and view[start - 1] not in _WHITESPACE:
            start -= 1
        while end < ceiling and view[end] not in _WHITESPACE:
            end += 1
        out.extend((i, s + start, e + start) for i, s, e in plain(view[start:end]))
    return out


def _scan(plain: Plain, text: str, depth: int, budget: list[int]) -> list[RawHit]:
    hits = plain(text)
    if not text.isascii():
        # RE2's str path encodes strictly: a lone surrogate becomes '?' (one character for one, so
        # offsets hold). The plain scan above saw the text as given.
        text = text.encode("utf-8", "replace").decode("utf-8")
    view = normalised_view(text)
    if view is not None:
        seen = set(hits)
        for i, s, e in _scan_view(plain, view.text, view.pieces):
            os_, oe = view.to_original(s, e)
            if (i, os_, oe) not in seen:
                seen.add((i, os_, oe))
                hits.append((i, os_, oe))
    if depth >= MAX_DEPTH:
        return hits
    base = view.text if view is not None else text
    for start, end, decoded in decoded_runs(base):
        budget[0] -= len(decoded)
        if budget[0] < 0:
            break
        inner = _scan(plain, decoded, depth + 1, budget)
        if not inner:
            continue
        os_, oe = view.to_original(start, end) if view is not None else (start, end)
        for i in sorted({i for i, _, _ in inner}):
            hits.append((i, os_, oe))
    return hits
