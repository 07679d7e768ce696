"""Bounded decoding layers: runs of base64, base64url and hex that decode to text.

A secret encoded once (or twice) is still the secret: ``echo $KEY | base64`` pasted into a prompt
reaches the model, which decodes it happily. The scanner decodes candidate runs and scans the
result; a hit redacts the whole encoded run in the original. (``%XX``, ``\\uXXXX`` and ``\\xXX``
escapes are undone character by character in the normalised view instead, so their spans map back
exactly.)

Bounds, and why they keep a scan linear:

- a candidate is a maximal run of base64/base64url characters at least ``MIN_RUN`` long that
  holds a digit (or 24 letters): RE2 finds them in one linear pass; runs never overlap, so each
  input character is decoded at most once per layer;
- a run longer than ``MAX_RUN`` characters is decoded only up to that length;
- what a run decodes to is scanned only if it is valid UTF-8 and mostly printable text;
- depth: the decoded text may itself hold one more encoded layer (``MAX_DEPTH`` = 2); decoded text
  is shorter than its encoding (3/4 for base64, 1/2 for hex), so all layers together read less
  than 1.75 times the input;
- a budget of decoded characters per scan (``budget_for``: twice the input plus 64 KiB) stops a
  pathological input anyway.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator

from controller.boundaries.detector import compile_pattern
from controller.boundaries.re2spans import find_all

__all__ = ["MAX_DEPTH", "MAX_RUN", "MIN_RUN", "budget_for", "decoded_runs"]

MIN_RUN = 16
MAX_RUN = 1 << 16
MAX_DEPTH = 2
_PRINTABLE_SHARE = 0.9

# A maximal run of base64/base64url characters; decoded_runs keeps the runs that hold a digit, or
# 24 letters with no '_' or '-' (base64 of digits and spaces has no digit), so identifiers
# (snake_case, CamelCase, kebab-case) are never decoded. (An RE2 pattern that demands the digit
# itself is ten times slower: its DFA multiplies the counting states.)
_RUNS = compile_pattern(r"[A-Za-z0-9+/_-]{16,}={0,2}")  # {MIN_RUN,}
_DROP_DIGITS = str.maketrans("", "", "0123456789")
_HEX_DIGITS = "0123456789abcdefABCDEF"


def budget_for(text: str) -> int:
    """Decoded characters a scan of ``text`` may produce over all its layers."""
    return 2 * len(text) + (1 << 16)


def _texty(decoded: bytes) -> str | None:
    if len(decoded) < 8:
        return None
    try:
        text = decoded.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if text.isprintable():
        return text
    # Controls and replacement characters mark binary; format characters (zero-width) are text
    # that hides something, so they count as text.
    binary = sum(1 for c in text if (c < " " and c not in "\n\r\t") or c in "\x7f\ufffd")
    return text if binary <= (1 - _PRINTABLE_SHARE) * len(text) else None


def _decode(run: str) -> str | None:
    body = run.rstrip("=")
    if len(body) % 2 == 0 and not body.strip(_HEX_DIGITS):
        try:
            return _texty(binascii.unhexlify(body))
        except (binascii.Error, ValueError):
            return None
    if body.isdigit() or body.islower() or body.isupper() or (len(body) < 24 and body.isalpha()):
        return None  # numbers, one-case identifiers, CamelCase names: not base64 of text
    url = "-" in body or "_" in body
    if url and not any(c.isdigit() for c in body):
        return None  # snake_case and kebab-case identifiers
    if url and ("+" in body or "/" in body):
        return None
    if len(body) % 4 == 1:
        return None
    padded = body + "=" * (-len(body) % 4)
    try:
        raw = base64.urlsafe_b64decode(padded) if url else base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        return None
    return _texty(raw)


def decoded_runs(text: str) -> Iterator[tuple[int, int, str]]:
    """``(start, end, decoded text)`` of each encoded run of ``text`` that decodes to text."""
    for m in find_all(_RUNS, text):
        start, end = m[0]
        run = text[start : min(end, start + MAX_RUN)]
        no_digit = len(run.translate(_DROP_DIGITS)) == len(run)
        if no_digit and (len(run) < 24 or not run.rstrip("=").replace("+", "").replace("/", "").isalpha()):
            continue
        decoded = _decode(run)
        if decoded is not None:
            yield start, end, decoded
