"""What a detector is: one kind of forbidden input, its RE2 pattern, locator, validator and
allowlist; the categories; the redaction placeholder; and the helpers the catalogue builds
detectors with."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import re2

__all__ = ["CATEGORIES", "PLACEHOLDER_PREFIX", "Detector", "Validator", "compile_pattern", "placeholder"]

CATEGORIES = (
    "credentials",
    "customer-data",
    "incident-details",
    "unreleased-financials",
    "regulated-data",
    "network-addresses",
)

PLACEHOLDER_PREFIX = "[REDACTED:"

# Validators see the candidate value (the secret group) and the whole match (for context such as
# the key name of an assignment) and return how many leading characters of the value are the
# finding: 0 rejects, len(value) accepts it whole, anything between trims a greedy over-match
# (an IBAN followed by a BIC, a phone number followed by another number).
Validator = Callable[[str, str], int]

_UTF8_CONTINUATION = bytes(range(0x80, 0xC0))
_AUTOMATON_MAX_MEM = 32 << 20  # RE2 program + DFA cache per combined automaton
_SHARED_PROGRAM_SIZE = 200  # a bundle pattern this small (RE2 instructions) joins the main pass


def compile_pattern(regex: str, *, max_mem: int | None = None, never_capture: bool = False) -> Any:
    """Compile with google-re2 (UTF-8, Perl syntax, quiet); ``re2.error`` if RE2 rejects it."""
    options = re2.Options()
    options.log_errors = False
    options.never_capture = never_capture
    if max_mem is not None:
        options.max_mem = max_mem
    return re2.compile(regex, options)


def placeholder(detector_id: str) -> str:
    """The typed placeholder a finding of ``detector_id`` is replaced with."""
    return f"{PLACEHOLDER_PREFIX}{detector_id}]"


def _re2_message(exc: Exception) -> str:
    message = exc.args[0] if exc.args else exc
    if isinstance(message, bytes):
        return message.decode("utf-8", "replace")
    return str(message)


def _allow(*regexes: str) -> Any:
    return compile_pattern("|".join(f"(?:{r})" for r in regexes)) if regexes else None


@dataclass(frozen=True)
class Detector:
    """One kind of forbidden input.

    ``id`` is the finding type written to audit records and placeholders (kebab-case, unique
    among builtins: one detector covers every form of its kind, and callers dedupe by id).
    ``pattern`` is compiled with google-re2; ``secret_group`` is the capturing group that is the
    value (0: the whole match), or a tuple of groups of which the first that took part is.

    ``keywords`` are lowercase literals one of which every match starts with (gitleaks'
    keywords, anchored): a cheap pre-filter before the pattern runs. ``locator`` is an RE2
    source that matches at least where every match starts (a prefix such as ``ghp_``); the
    scanner searches for locators and confirms each candidate with ``pattern``; empty means the
    pattern is its own locator. ``validator`` and ``allowlist`` (RE2, searched in the value:
    documented example keys, placeholders) confirm a candidate. ``source`` is ``builtin`` or
    ``pattern`` (declared by the bundle); ``automaton`` names the scanner pass it joins.
    """

    id: str
    category: str
    pattern: Any
    description: str = ""
    secret_group: int | tuple[int, ...] = 0
    validator: Validator | None = None
    keywords: tuple[str, ...] = ()
    allowlist: Any = None
    locator: str = ""
    source: str = "builtin"
    automaton: str = "main"

    @property
    def ref(self) -> str:
        return f"{'builtin' if self.source == 'builtin' else 'pattern'}:{self.id}"

    def accept(self, value: str, match: str) -> int:
        """How many leading characters of ``value`` are a finding (0: not a finding)."""
        keep = self.validator(value, match) if self.validator is not None else len(value)
        if keep <= 0:
            return 0
        if self.allowlist is not None and self.allowlist.search(value[:keep]) is not None:
            return 0
        return keep


def _d(
    id: str,
    category: str,
    regex: str,
    description: str,
    *,
    group: int | tuple[int, ...] = 0,
    validator: Validator | None = None,
    keywords: Sequence[str] = (),
    allow: Sequence[str] = (),
    locate: str = "",
    automaton: str = "main",
) -> Detector:
    return Detector(
        id=id,
        category=category,
        pattern=compile_pattern(regex),
        description=description,
        secret_group=group,
        validator=validator,
        keywords=tuple(keywords),
        allowlist=_allow(*allow),
        locator=locate,
        automaton=automaton,
    )


def _ascii_class(exclude: str) -> str:
    """A positive character class of printable ASCII minus ``exclude``, written as ranges.

    Positive ASCII classes compile to a handful of RE2 instructions; a negated class in UTF-8 mode
    expands to every multi-byte sequence, which inside a counted repetition bloats the automaton.
    """
    keep = [c for c in map(chr, range(0x21, 0x7F)) if c not in exclude]
    ranges: list[tuple[str, str]] = []
    for c in keep:
        if ranges and ord(c) == ord(ranges[-1][1]) + 1:
            ranges[-1] = (ranges[-1][0], c)
        else:
            ranges.append((c, c))

    def esc(c: str) -> str:
        return "\\" + c if c in "\\]^-[" else c

    return "[" + "".join(esc(a) if a == b else f"{esc(a)}-{esc(b)}" for a, b in ranges) + "]"


# Building blocks. Repetitions are bounded wherever the pattern's own start could occur inside
# its run again (so a hostile run of repeated prefixes costs a bounded amount per start); runs
