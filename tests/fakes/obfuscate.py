"""Obfuscating transformations an attacker (or a careless paste) applies to a value, for the
obfuscation tests and the redaction benchmark's obfuscation matrix.

Each form maps a value (a key, an e-mail, a card number) to a string that still reads as the
value to a person or a model: invisible characters inside, look-alike letters, escapes, encodings,
a line break in the middle, spaced-out characters.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Callable

__all__ = ["FORMS", "obfuscate"]

_CYRILLIC = {"A": "\u0410", "B": "\u0412", "C": "\u0421", "E": "\u0415", "H": "\u041d", "K": "\u041a",
             "M": "\u041c", "O": "\u041e", "P": "\u0420", "T": "\u0422", "X": "\u0425", "a": "\u0430",
             "c": "\u0441", "e": "\u0435", "o": "\u043e", "p": "\u0440", "x": "\u0445", "y": "\u0443"}  # fmt: skip
_GREEK = {"A": "\u0391", "B": "\u0392", "E": "\u0395", "H": "\u0397", "I": "\u0399", "K": "\u039a",
          "M": "\u039c", "N": "\u039d", "O": "\u039f", "P": "\u03a1", "T": "\u03a4", "X": "\u03a7",
          "Z": "\u0396", "o": "\u03bf"}  # fmt: skip


def _every(step: int, insert: str) -> Callable[[str], str]:
    def form(value: str) -> str:
        return insert.join(value[i : i + step] for i in range(0, len(value), step))

    return form


def _fullwidth(value: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in value)


def _table(table: dict[str, str]) -> Callable[[str], str]:
    return lambda value: "".join(table.get(c, c) for c in value)


def _middle(insert: str) -> Callable[[str], str]:
    return lambda value: value[: len(value) // 2] + insert + value[len(value) // 2 :]


FORMS: dict[str, Callable[[str], str]] = {
    "zero-width-space": _every(3, "\u200b"),
    "zero-width-joiner": _every(5, "\u200d"),
    "soft-hyphen": _every(4, "\u00ad"),
    "bidi-control": _middle("\u202e"),
    "word-joiner-each": _every(1, "\u2060"),
    "fullwidth": _fullwidth,
    "cyrillic-homoglyphs": _table(_CYRILLIC),
    "greek-homoglyphs": _table(_GREEK),
    "line-break-middle": _middle("\n"),
    "crlf-middle": _middle("\r\n"),
    "escaped-newline-middle": _middle("\\n"),
    "unicode-escape-first": lambda v: f"\\u{ord(v[0]):04x}" + v[1:],
    "unicode-escape-all": lambda v: "".join(f"\\u{ord(c):04x}" for c in v),
    "hex-escape-all": lambda v: "".join(f"\\x{ord(c):02x}" for c in v if ord(c) < 256),
    "percent-encoding": lambda v: "".join(f"%{b:02X}" for b in v.encode()),
    "base64": lambda v: base64.b64encode(v.encode()).decode(),
    "base64url": lambda v: base64.urlsafe_b64encode(v.encode()).decode().rstrip("="),
    "hex": lambda v: v.encode().hex(),
    "base64-twice": lambda v: base64.b64encode(base64.b64encode(v.encode())).decode(),
    "base64-of-zero-width": lambda v: base64.b64encode(_every(3, "\u200b")(v).encode()).decode(),
    "spaced": lambda v: " ".join(v),
}


def obfuscate(value: str, form: str, rng: random.Random | None = None) -> str:
    """``value`` in the named form."""
    return FORMS[form](value)
