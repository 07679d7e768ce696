"""The data-boundary detectors: what a credential, customer data or a bundle-declared record looks
like, and the scanner that finds them in untrusted text.

Everything here runs on hostile input (prompts, retrieved context, model output, raw invocation
logs), so every pattern is compiled with google-re2, whose matching time is linear in the input:
no stdlib ``re`` ever runs on user text.

How a scan works, and why it is fast and linear:

- Every detector has a *locator*: the literal or keyword its matches start with (``ghp_``,
  ``-----BEGIN``, ``password=``), or the pattern itself when it has none (e-mail addresses, digit
  shapes). Locators are compiled into a few RE2 alternations (``Detector.automaton``); one DFA pass
  per alternation finds the next place where any locator matches. Searching again from the next
  character (not from the end of the match) enumerates every candidate start, so a weak match can
  never hide a stronger one that starts inside it.
- At each candidate start, the detectors whose first byte and keywords fit are matched there,
  anchored, each with its own small program, in specificity order, and confirmed: the validator
  (Luhn, mod-97, Shannon entropy, a decodable JWT header...) and the allowlist (documented example
  keys, ``${VAR}`` and ``{{ }}`` placeholders, UUIDs, git SHAs, version strings).
- The text is encoded to UTF-8 once and RE2 runs on those bytes with ``pos``/``endpos`` (the
  binding's ``str`` path re-encodes the whole text on every call); offsets are mapped back to
  ``str`` indices.
- Work is bounded per candidate: a search looks at most 64 KiB ahead, a confirmation reads at most
  64 KiB, and builtin repetitions are bounded wherever a pattern's start could recur inside its
  own match. A scan stays linear on adversarial input, bundle patterns included
  (``benchmarks/redaction.py`` measures the doubling ratio of every pattern).

Overlap resolution, actions and the ``[REDACTED:<id>]`` placeholders live in ``redactor.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import re2

from controller.boundaries.detector import Detector, compile_pattern
from controller.boundaries.layers import scan_layers
from controller.boundaries.re2spans import Spans, _char_offsets, _raw_matchers

__all__ = ["Hit", "Scanner"]

_AUTOMATON_MAX_MEM = 32 << 20  # RE2 program + DFA cache per combined automaton


# A search looks at most _WINDOW bytes ahead, and a locator match is trusted only if it starts at
# least _LOCATOR_SPAN before the window's end (a longer match starting earlier could have been cut
# off). A confirmation reads at most _MAX_MATCH bytes from its start. Together they bound the
# work per candidate whatever the patterns, so a bundle pattern with an unbounded repetition
# cannot make a scan quadratic.
_WINDOW = 1 << 16
_LOCATOR_SPAN = 1 << 12
_MAX_MATCH = 1 << 16


@dataclass(frozen=True, slots=True)
class Hit:
    """One confirmed match of one detector: ``[start, end)`` in ``str`` indices of the scanned
    text. Hits of different detectors may overlap; ``redaction.Redactor`` resolves that."""

    detector: Detector
    start: int
    end: int


def _first_bytes(det: Detector) -> frozenset[int] | None:
    """Bytes a match of ``det`` can start with, or None if RE2 cannot bound them."""
    try:
        low, high = det.pattern.possiblematchrange(4)
    except re2.error:
        return None
    if not low or not high:
        return None
    return frozenset(range(low[0], high[0] + 1))


class _Automaton:
    """One RE2 alternation of locators, used only to find where candidates start. At each start
    the detectors whose first byte and keyword fit are matched there, anchored, in order; the
    first one confirmed is the hit. Each detector's own small program extracts its groups."""

    def __init__(self, detectors: Sequence[Detector], members: Sequence[int]):
        self.members = tuple(members)  # scanner-wide detector index of each alternative
        self.detectors = tuple(detectors[i] for i in members)
        source = "|".join(f"(?:{d.locator or d.pattern.pattern})" for d in self.detectors)
        self.regex = compile_pattern(source, max_mem=_AUTOMATON_MAX_MEM, never_capture=True)
        self.search = _raw_matchers(self.regex)[0]
        self.matchers = tuple(_raw_matchers(d.pattern)[1] for d in self.detectors)
        starts = [_first_bytes(d) for d in self.detectors]
        self.candidates = tuple(tuple(k for k, s in enumerate(starts) if s is None or byte in s) for byte in range(256))
        self.keywords = tuple(tuple(kw.encode() for kw in d.keywords) for d in self.detectors)

    def scan(self, data: bytes, out: list[tuple[int, int, int]]) -> None:
        search, matchers, confirm = self.search, self.matchers, self._confirm
        candidates, keywords = self.candidates, self.keywords
        n = len(data)
        pos = 0
        while pos <= n:
            limit = n if n - pos <= _WINDOW else pos + _WINDOW
            spans = search(data, pos, limit)
            if limit < n and (spans is None or spans[0][0] >= limit - _LOCATOR_SPAN):
                pos = limit - _LOCATOR_SPAN
                continue
            if spans is None:
                return
            start = spans[0][0]
            head = None
            stop = n if n - start <= _MAX_MATCH else start + _MAX_MATCH
            for k in candidates[data[start]]:
                if keywords[k]:
                    if head is None:
                        head = data[start : start + 32].lower()
                    if not head.startswith(keywords[k]):
                        continue
                found = matchers[k](data, start, stop)
                if found is not None and found[0][1] > start:
                    hit = confirm(k, found, data)
                    if hit is not None:
                        out.append(hit)
                        break
            # Resume at the next character, not at the match end: a candidate that starts
            # inside this one must still be seen.
            pos = start + 1
            while pos < n and 0x80 <= data[pos] < 0xC0:
                pos += 1

    def _confirm(self, k: int, spans: Spans, data: bytes) -> tuple[int, int, int] | None:
        det = self.detectors[k]
        ms, me = spans[0]
        group = det.secret_group
        if isinstance(group, tuple):
            group = next((g for g in group if spans[g][0] >= 0), 0)
        vs, ve = spans[group]
        if vs < 0 or ve <= vs:
            return None
        value = data[vs:ve].decode("utf-8", "surrogatepass")
        whole = value if (ms, me) == (vs, ve) else data[ms:me].decode("utf-8", "surrogatepass")
        keep = det.accept(value, whole)
        if keep <= 0:
            return None
        if keep < len(value):
            ve = vs + len(value[:keep].encode("utf-8", "surrogatepass"))
        return self.members[k], vs, ve


class Scanner:
    """Finds every confirmed hit of a fixed set of detectors. Build once, scan many times: the
    compiled automata and their DFA caches are reused; safe to share between threads.

    Detectors are grouped into a few automata (``Detector.automaton``): one for everything that
    starts with a literal or a keyword (tokens, key blocks, assignments, digit shapes), one each
    for shapes that can start at any word (e-mail addresses, bare 40-character keys) and one for
    the bundle's patterns. Mixing shapes that start anywhere multiplies DFA states (every word
    keeps an e-mail local part and a base64 run alive at once); a few small automata cost a few
    cheap passes instead.
    """

    def __init__(self, detectors: Iterable[Detector]):
        self.detectors: tuple[Detector, ...] = tuple(detectors)
        members: dict[str, list[int]] = {}
        for i, det in enumerate(self.detectors):
            members.setdefault(det.automaton, []).append(i)
        self._automata = tuple(_Automaton(self.detectors, m) for m in members.values())

    def scan(self, text: str) -> list[Hit]:
        """Every confirmed hit in ``text`` (ordered by automaton, then position)."""
        return [Hit(self.detectors[i], s, e) for i, s, e in self.scan_indices(text)]

    def scan_indices(self, text: str) -> list[tuple[int, int, int]]:
        """Every confirmed hit as ``(detector index, start, end)`` in ``str`` indices of ``text``:
        in the text as sent, in its normalised view and in its decoded runs (``layers.py``)."""
        if not text or not self._automata:
            return []
        return scan_layers(self.scan_plain, text)

    def scan_plain(self, text: str) -> list[tuple[int, int, int]]:
        """The hits in ``text`` exactly as given: no view, no decoding."""
        if not text or not self._automata:
            return []
        data = text.encode("utf-8", "surrogatepass")
        raw: list[tuple[int, int, int]] = []
        for automaton in self._automata:
            automaton.scan(data, raw)
        if not raw or len(data) == len(text):  # ASCII: byte offsets are str offsets
            return raw
        to_char = _char_offsets(data, {o for _, s, e in raw for o in (s, e)})
        return [(i, to_char[s], to_char[e]) for i, s, e in raw]
