"""The redactor: applies a bundle's data boundaries to one piece of text.

``Redactor(detectors, actions)`` scans with the detectors of ``boundaries.py``, resolves
overlapping hits into non-overlapping findings, replaces each with a typed placeholder
``[REDACTED:<detector-id>]`` and decides whether the text is refused: a finding whose category's
action is ``block`` refuses the request, naming the categories and never the value. Blocked
findings are redacted as well, so the text can still be logged.

A finding never carries the matched value: only its type (the detector id), category and offsets
in the original text. ``summarize`` turns findings into the type -> count map written to audit
records.

Guarantees (tested in ``tests/test_redaction.py``): the redacted text contains no finding, a second
redaction is the identity, and no input (binary, invalid UTF-8, lone surrogates, a 10 MB single
line) raises.
"""

from __future__ import annotations

import bisect
import string
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from controller.boundaries.catalogue import builtin_detectors
from controller.boundaries.detector import Detector, placeholder
from controller.boundaries.scanner import Scanner
from controller.boundaries.selection import bundle_detectors

__all__ = [
    "Action",
    "Finding",
    "RedactionResult",
    "Redactor",
    "bundle_redactor",
    "decode_input",
    "summarize",
]

# Redaction can only create a new match by joining text around a placeholder (a token that was
# glued to a secret gets a word boundary). Each round redacts what the previous one exposed;
# builtins converge in one extra round, the bound stops a pathological bundle pattern.
_MAX_ROUNDS = 4


class Action(StrEnum):
    BLOCK = "block"
    REDACT = "redact"


@dataclass(frozen=True, slots=True)
class Finding:
    """One redacted span: ``[start, end)`` in the original text. Never holds the value."""

    type: str
    category: str
    start: int
    end: int

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "category": self.category, "start": self.start, "end": self.end}


@dataclass(frozen=True)
class RedactionResult:
    """The redacted text, its findings, and whether the request must be refused."""

    text: str
    findings: tuple[Finding, ...]
    blocked: bool
    blocked_categories: tuple[str, ...]

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "findings": [f.to_dict() for f in self.findings],
            "blocked": self.blocked,
            "blocked_categories": list(self.blocked_categories),
        }

    @property
    def summary(self) -> dict[str, int]:
        return summarize(self.findings)


def bundle_redactor(data_boundaries: Any) -> Redactor:
    """The redactor a bundle's data boundaries define: its detectors, its action per category.

    The gateway, ``rollout redact``, the redaction Lambda and the evidence reports all enforce
    the bundle through this one constructor.
    """
    actions = {str(f.category): f.action for f in data_boundaries.forbidden}
    return Redactor(bundle_detectors(data_boundaries), actions)


def summarize(findings: Iterable[Finding]) -> dict[str, int]:
    """Finding type -> count, sorted by type: what an audit record keeps of the findings."""
    return dict(sorted(Counter(f.type for f in findings).items()))


def decode_input(data: bytes | bytearray | memoryview) -> str:
    """Bytes from a file, stdin or a log object as text; never raises.

    UTF-8 (a BOM is dropped) with U+FFFD for every invalid sequence. UTF-16 when the bytes say so
    (a UTF-16 byte-order mark, or every other byte NUL as in ASCII text saved as UTF-16) and
    decode strictly as UTF-16: read as UTF-8, such text would hide every token between NULs.
    NUL bytes and other controls are kept: the detectors see what the model or the log would.
    """
    raw = bytes(data)
    if raw.startswith(b"\xef\xbb\xbf"):
        return raw[3:].decode("utf-8", errors="replace")
    codec = _utf16_codec(raw)
    if codec is not None:
        try:
            return raw.decode(codec).lstrip("\ufeff")
        except UnicodeDecodeError:
            pass
    return raw.decode("utf-8", errors="replace")


def _utf16_codec(raw: bytes) -> str | None:
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    half = len(raw) // 2
    if half < 4 or len(raw) % 2:
        return None
    even_nuls, odd_nuls = raw[0::2].count(0), raw[1::2].count(0)
    if odd_nuls > 0.4 * half and even_nuls < 0.05 * half:
        return "utf-16-le"
    if even_nuls > 0.4 * half and odd_nuls < 0.05 * half:
        return "utf-16-be"
    return None


class Redactor:
    """Applies detectors and per-category actions to text. Build once per bundle release; it is
    immutable and safe to share between threads and requests.

    ``actions`` maps a category to ``block`` or ``redact``. A detector whose category has no
    action blocks: an unconfigured boundary fails closed.
    """

    def __init__(self, detectors: Iterable[Detector], actions: Mapping[str, Action | str] | None = None):
        self.detectors = tuple(detectors)
        self.actions = {_text(k): Action(_text(v)) for k, v in (actions or {}).items()}
        self._scanner = Scanner(self.detectors)
        # Overlap ranking per detector index: a blocking category first (an overlapping match
        # must never hide a credential behind a redact-only type), then the more specific
        # detector: builtins in their specificity order, then bundle patterns as given.
        order = {d.id: i for i, d in enumerate(builtin_detectors())}
        self._rank = tuple(
            (
                0 if self.action_for(d.category) is Action.BLOCK else 1,
                order.get(d.id, len(order)) if d.source == "builtin" else len(order),
                i,
            )
            for i, d in enumerate(self.detectors)
        )

    def action_for(self, category: str) -> Action:
        return self.actions.get(category, Action.BLOCK)

    def scan(self, text: str) -> list[Finding]:
        """Non-overlapping findings sorted by position. Overlapping hits are merged into one
        finding spanning all of them, typed after the winner: a blocking category first, then
        the more specific detector, then the longest hit."""
        return self._resolve(self._scanner.scan_indices(text))

    def apply(self, text: str) -> RedactionResult:
        """Redact every finding; refuse if any finding's category blocks."""
        findings = self.scan(text)
        redacted, spans = _redact(text, findings)
        if _may_expose(text, findings):
            for _ in range(_MAX_ROUNDS):
                exposed = self.scan(redacted)
                if not exposed:
                    break
                findings = self._merge(findings, _to_original(exposed, spans))
                redacted, spans = _redact(text, findings)
        blocked = sorted({f.category for f in findings if self.action_for(f.category) is Action.BLOCK})
        return RedactionResult(redacted, tuple(findings), bool(blocked), tuple(blocked))

    def redact(self, text: str) -> str:
        return self.apply(text).text

    # --- overlap resolution -------------------------------------------------------------------

    def _resolve(self, hits: list[tuple[int, int, int]]) -> list[Finding]:
        if not hits:
            return []
        hits.sort(key=_start)
        detectors, rank = self.detectors, self._rank
        findings: list[Finding] = []
        append = findings.append
        i, n = 0, len(hits)
        while i < n:
            best = hits[i]
            cluster_start, cluster_end = best[1], best[2]
            j = i + 1
            while j < n and hits[j][1] < cluster_end:
                hit = hits[j]
                if hit[2] > cluster_end:
                    cluster_end = hit[2]
                if (rank[hit[0]], hit[1] - hit[2]) < (rank[best[0]], best[1] - best[2]):
                    best = hit
                j += 1
            det = detectors[best[0]]
            append(Finding(det.id, det.category, cluster_start, cluster_end))
            i = j
        return findings

    def _merge(self, old: Sequence[Finding], new: Sequence[Finding]) -> list[Finding]:
        """Union of two finding lists; overlapping ones merge, a blocking category names them."""
        out: list[Finding] = []
        for f in sorted([*old, *new], key=lambda f: (f.start, -f.end)):
            if out and f.start < out[-1].end:
                prev = out[-1]
                keep = prev
                if self.action_for(f.category) is Action.BLOCK and (self.action_for(prev.category) is not Action.BLOCK):
                    keep = f
                out[-1] = Finding(keep.type, keep.category, prev.start, max(prev.end, f.end))
            else:
                out.append(f)
        return out


def _text(value: Any) -> str:
    """A category or action given as a str, a StrEnum or any Enum, as its string value."""
    return str(getattr(value, "value", value))


def _start(hit: tuple[int, int, int]) -> int:
    return hit[1]


# Characters that join a token with its neighbour: ASCII word characters and base64 symbols.
_JOINING = frozenset(string.ascii_letters + string.digits + "_+/")
_JOINING_EDGE = _JOINING | {"="}


def _may_expose(text: str, findings: Sequence[Finding]) -> bool:
    """Whether replacing the findings can expose a new match. The detectors look at most one
    character beyond a match (word boundaries, "not base64" edges), so a placeholder can only
    create a match where it replaced a finding that was glued to a neighbouring token: its
    ``[`` / ``]`` then separates what was joined. Delimited findings (spaces, quotes, ``=``,
    ``:``) cannot, so the common case skips the second scan."""
    n = len(text)
    for f in findings:
        if f.start > 0 and text[f.start - 1] in _JOINING and text[f.start] in _JOINING_EDGE:
            return True
        if f.end < n and text[f.end] in _JOINING and text[f.end - 1] in _JOINING_EDGE:
            return True
    return False


def _redact(text: str, findings: Sequence[Finding]) -> tuple[str, list[tuple[int, int, int, int]]]:
    """The text with each finding replaced, and each placeholder's span in the original and in
    the redacted text (to map later findings back)."""
    parts: list[str] = []
    spans: list[tuple[int, int, int, int]] = []
    prev = 0
    out_len = 0
    for f in findings:
        parts.append(text[prev : f.start])
        out_len += f.start - prev
        token = placeholder(f.type)
        parts.append(token)
        spans.append((f.start, f.end, out_len, out_len + len(token)))
        out_len += len(token)
        prev = f.end
    parts.append(text[prev:])
    return "".join(parts), spans


def _to_original(findings: Sequence[Finding], spans: Sequence[tuple[int, int, int, int]]) -> list[Finding]:
    """Map findings in redacted text back to the original text. A boundary inside a placeholder
    widens to that placeholder's whole original span."""
    starts = [r_start for _, _, r_start, _ in spans]

    def original(pos: int, is_end: bool) -> int:
        k = bisect.bisect_right(starts, pos - 1 if is_end else pos) - 1
        if k < 0:
            return pos
        o_start, o_end, r_start, r_end = spans[k]
        if pos < r_end or (is_end and pos == r_end):
            return o_end if is_end else o_start
        return pos + (o_end - r_end)

    return [Finding(f.type, f.category, original(f.start, False), original(f.end, True)) for f in findings]
