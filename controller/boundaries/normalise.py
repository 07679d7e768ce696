"""The normalised view: the text a person would read, with a map back to the text as sent.

Obfuscation hides a value from a pattern without hiding it from a reader (or a model): zero-width
characters inside a key, fullwidth or Cyrillic look-alike letters, a line break in the middle of a
token, characters spaced apart, ``\\u0041`` or ``%41`` escapes. The view undoes each of these:

- Unicode NFKC (fullwidth and mathematical forms, ligatures, non-ASCII spaces);
- format characters (category Cf: zero-width spaces and joiners, bidi controls, soft hyphens) and
  other default-ignorable fillers removed;
- confusables folded to their ASCII look-alike (Unicode TR39 data, from the maintained
  ``confusable-homoglyphs`` package), preferring a letter of the same case;
- ``\\uXXXX``, ``\\xXX`` and ``%XX`` escapes replaced by the character they encode;
- soft breaks inside a token joined (``AKIA1234`` newline ``ABCD``: a token run with a digit on
  one side of a line break or an escaped ``\\n``);
- letter-spaced runs (``A K I A 1 2 ...``: eight or more single token characters each followed by
  one space, or three between spaced-out words) closed up.

Every edit is a *piece*: a span of the original replaced by a (possibly empty) string. The view
keeps its pieces in order, so :meth:`View.to_original` maps any view span back to the original
span it came from, invisible characters included: the redactor removes what was sent, not what
was read.

Sites are found with RE2 (linear) and each costs O(1) Python work; pure-ASCII text without escapes,
line-broken digit tokens or spaced runs has no sites and skips the view entirely (the fast path).
"""

from __future__ import annotations

import bisect
import functools
import unicodedata
from dataclasses import dataclass

from controller.boundaries.detector import compile_pattern
from controller.boundaries.re2spans import find_all

__all__ = ["View", "fold_char", "normalised_view"]

_TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=_-")
_TOKEN = r"[A-Za-z0-9+/=_@.-]"
# One alternation; the group that took part says which kind of site it is.
# A line break, raw or JSON-escaped, with the next line starting at its first column (a hard wrap;
# an indented next line is code or a list, not a token cut in two).
_BREAK = r"(?:\r?\n|\\r\\n|\\n)"
_SITES = compile_pattern(
    r"([^\x00-\x7f]+)"  # 1: non-ASCII run
    # 2: escapes of printable characters: \\uXXXX (not a C0 control), \\xXX, and %XX in a run of
    # two or more or glued to a letter or digit ("%2d" in a format string is not an escape)
    r"|((?:\\u(?:00[2-7][0-9A-Fa-f]|0[0-9A-Fa-f][89A-Fa-f][0-9A-Fa-f]|0?[1-9A-Fa-f][0-9A-Fa-f]{2}|[1-9A-Fa-f][0-9A-Fa-f]{3})"
    r"|\\x[2-7][0-9A-Fa-f])+|(?:%[2-7][0-9A-Fa-f]){2,}|[A-Za-z0-9]%[2-7][0-9A-Fa-f])"
    # 3, 4: a line break inside a token: a digit on its left, or on its right
    # (unbounded runs: counted repetitions around a digit would blow up RE2's DFA)
    + r"|" + _TOKEN + r"*[0-9]" + _TOKEN + r"*(" + _BREAK + r")" + _TOKEN
    + r"|" + _TOKEN + r"{4}" + _TOKEN + r"*(" + _BREAK + r")" + _TOKEN + r"*[0-9]"
    # 5: a letter-spaced run; three spaces stand for one between spaced-out words
    + r"|(?:^|[^A-Za-z0-9+/=_-])((?:" + _TOKEN + r" (?:  )?){7,}" + _TOKEN + r")(?:[^A-Za-z0-9+/=_-]|$)"
    + r"|[A-Z0-9]{8}[A-Z0-9]*(" + _BREAK + r")[A-Z0-9]{4}"  # 6: a break inside an upper-case key
)
_MIN_JOINED = 8  # token characters left of a break before it counts as inside a token
# A spaced-out run longer than this is not closed up (a spaced-out private key is about 3,500
# characters): closing up costs Python work per character, and "1 2 3 ..." for megabytes is not
# a secret.
_MAX_SPACED = 8192
# Invisible characters outside category Cf that render as nothing.
_IGNORABLE = frozenset("\u034f\u115f\u1160\u17b4\u17b5\u180b\u180c\u180d\u180f\u3164\uffa0") | frozenset(
    chr(c) for c in range(0xFE00, 0xFE10)
)


@functools.cache
def _confusable_table() -> dict[str, str]:
    """Non-ASCII character -> its ASCII look-alike, from the TR39 data the library ships."""
    from confusable_homoglyphs import confusables  # loads its JSON once

    data = confusables.confusables_data
    options: dict[str, set[str]] = {}
    for key, glyphs in data.items():
        if len(key) != 1:
            continue
        for glyph in glyphs:
            c = glyph.get("c", "")
            if len(c) != 1:
                continue
            if key.isascii() and not c.isascii():
                options.setdefault(c, set()).add(key)
            elif c.isascii() and not key.isascii():
                options.setdefault(key, set()).add(c)
    table = {}
    for ch, asciis in options.items():
        printable = sorted(a for a in asciis if "!" <= a <= "~")
        if not printable:
            continue
        if ch.isupper():
            ranked = [a for a in printable if a.isupper()] or printable
        elif ch.islower():
            ranked = [a for a in printable if a.islower()] or printable
        elif ch.isdigit():
            ranked = [a for a in printable if a.isdigit()] or printable
        else:
            ranked = printable
        # TR39 folds I to l; in a key, a look-alike capital I is an I.
        table[ch] = "I" if ch.isupper() and ranked[0] == "l" else ranked[0]
    return table


@functools.lru_cache(maxsize=8192)
def fold_char(ch: str) -> str:
    """What one non-ASCII character reads as: '' for an invisible one, else its NFKC form with each
    character folded to its ASCII look-alike where it has one."""
    if ch in _IGNORABLE or unicodedata.category(ch) == "Cf":
        return ""
    table = _confusable_table()
    out = []
    for c in unicodedata.normalize("NFKC", ch):
        if c.isascii():
            out.append(c)
        elif unicodedata.category(c) == "Cf":
            continue
        else:
            out.append(table.get(c, c))
    return "".join(out)


@dataclass(frozen=True)
class View:
    """The normalised text and its pieces: ``(view start, view end, original start, original end)``
    of every edit, in order. Outside pieces the two texts agree character for character."""

    text: str
    pieces: tuple[tuple[int, int, int, int], ...]
    vends: tuple[int, ...] = ()  # each piece's view end, for bisecting

    def to_original(self, start: int, end: int) -> tuple[int, int]:
        """The original span a view span ``[start, end)`` was read from (a piece the span touches
        is included whole)."""
        return self._map(start, False), self._map(end, True)

    def _map(self, v: int, is_end: bool) -> int:
        pieces, vends = self.pieces, self.vends
        n = len(pieces)
        if is_end:
            k = bisect.bisect_left(vends, v)
            if k < n and vends[k] == v and pieces[k][0] < v:
                k += 1
            if k < n and pieces[k][0] <= v - 1 < pieces[k][1]:
                return pieces[k][3]
        else:
            k = bisect.bisect_right(vends, v)
            if k < n and pieces[k][0] <= v < pieces[k][1]:
                return pieces[k][2]
        if k == 0:
            return v
        _, ve, _, oe = pieces[k - 1]
        return oe + (v - ve)


def _decode_escape(esc: str) -> str:
    code = int(esc[2:], 16) if esc[0] == "\\" else int(esc[1:], 16)
    if 0xD800 <= code <= 0xDFFF:
        return esc  # a lone surrogate escape: leave it as written
    ch = chr(code)
    folded = fold_char(ch) if not ch.isascii() else ch
    return folded


def normalised_view(text: str) -> View | None:
    """The view of ``text``, or None when reading it normalised changes nothing (the fast path)."""
    pieces: list[tuple[int, int, int, int]] = []
    parts: list[str] = []
    prev = 0  # original offset copied up to
    vpos = 0  # view length so far
    for m in find_all(_SITES, text):
        edits: list[tuple[int, int, str]] = []
        (s1, e1), (s2, e2), (s3, e3), (s4, e4), (s5, e5), (s6, e6) = m[1:7]
        if s1 >= 0:
            for i in range(s1, e1):
                folded = fold_char(text[i])
                if folded != text[i]:
                    edits.append((i, i + 1, folded))
        elif s2 >= 0:
            if text[s2] not in "\\%":
                s2 += 1  # the letter an escape is glued to
            i = s2
            while i < e2:
                size = 6 if text[i + 1 : i + 2] == "u" else 4 if text[i] == "\\" else 3
                edits.append((i, i + size, _decode_escape(text[i : i + size])))
                i += size
        elif s3 >= 0:
            if s3 - m[0][0] >= _MIN_JOINED:
                edits.append((s3, e3, ""))
        elif s4 >= 0:
            edits.append((s4, e4, ""))
        elif s6 >= 0:
            edits.append((s6, e6, ""))
        elif s5 >= 0 and e5 - s5 <= _MAX_SPACED:
            i = s5 + 1
            while i < e5:
                if text[i : i + 3] == "   ":
                    edits.append((i, i + 2, ""))
                    i += 4
                else:
                    edits.append((i, i + 1, ""))
                    i += 2
        for os_, oe, new in edits:
            if os_ < prev:
                continue
            parts.append(text[prev:os_])
            vpos += os_ - prev
            parts.append(new)
            pieces.append((vpos, vpos + len(new), os_, oe))
            vpos += len(new)
            prev = oe
    if not pieces:
        return None
    parts.append(text[prev:])
    return View("".join(parts), tuple(pieces), tuple(p[1] for p in pieces))
