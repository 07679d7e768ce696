"""Output redaction on a stream: a holdback window so no secret split across chunks is emitted.

A model streams its answer in arbitrary pieces; a credential may arrive as ``AKIA`` in one chunk
and the rest in the next. ``StreamRedactor`` keeps the last ``holdback`` characters of the raw
text unemitted and never emits a prefix that ends inside a finding of the text seen so far.
Guarantee: any match of at most ``holdback`` characters is wholly inside the window when its
first character would otherwise be emitted, so it is redacted (or, for a blocking category, the
stream stops) before any of it leaves. ``DEFAULT_HOLDBACK`` (4096) covers the builtin detectors'
matches, including an RSA-4096 PEM private key block and the encoded (base64, percent, escaped)
forms the decoding layers see; a release that needs more sets it higher. Pure: no I/O.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

__all__ = ["DEFAULT_HOLDBACK", "StreamRedactor"]

DEFAULT_HOLDBACK = 4096


class StreamRedactor:
    """Feed raw deltas, get redacted text that is safe to emit; ``close()`` flushes the window.

    ``blocked`` turns true as soon as a blocking category appears anywhere in the unemitted text;
    from then on nothing more is emitted (the caller ends the stream with a policy message).
    """

    def __init__(self, redactor: Any, holdback: int = DEFAULT_HOLDBACK):
        if holdback < 1:
            raise ValueError("holdback must be at least one character")
        self.redactor = redactor
        self.holdback = holdback
        self.blocked = False
        self.blocked_categories: set[str] = set()
        self.findings: Counter[str] = Counter()
        self.emitted: list[str] = []
        self._raw = ""
        self._done = 0  # raw characters already emitted (as their redacted form)

    @property
    def text(self) -> str:
        """Everything emitted so far (redacted)."""
        return "".join(self.emitted)

    def feed(self, delta: str) -> str:
        self._raw += delta
        return self._emit(final=False)

    def close(self) -> str:
        return self._emit(final=True)

    def _emit(self, *, final: bool) -> str:
        if self.blocked:
            return ""
        segment = self._raw[self._done :]
        if not segment:
            return ""
        cut = len(segment) if final else len(segment) - self.holdback
        if cut <= 0:
            return ""
        scanned = self.redactor.apply(segment)
        if scanned.blocked:
            self._block(scanned.blocked_categories)
            return ""
        for f in scanned.findings:
            if f.start < cut < f.end:
                cut = f.start  # never emit a prefix that ends inside a finding
        if cut <= 0:
            return ""
        part = self.redactor.apply(segment[:cut])
        if part.blocked:
            self._block(part.blocked_categories)
            return ""
        self.findings.update(f.type for f in part.findings)
        self._done += cut
        self.emitted.append(part.text)
        return part.text

    def _block(self, categories: Any) -> None:
        self.blocked = True
        self.blocked_categories.update(categories)
