"""Alphabets and random-string helpers for generating obviously fake secrets at run time.

Key markers and key words are assembled (``DASHES``, ``PW``) so that no secret scanner flags
the repository; the tests and the redaction benchmark generate every secret from a seeded RNG.
"""

from __future__ import annotations

import random
import string

__all__ = ["ALNUM", "B64", "DASHES", "HEX", "PW", "TOKEN", "UPPER27", "chars", "mixed"]

ALNUM = string.ascii_letters + string.digits
B64 = ALNUM + "+/"
TOKEN = ALNUM + "_-"
HEX = "0123456789abcdef"
UPPER27 = string.ascii_uppercase + "234567"
DASHES = "-" * 5
PW = "pass" + "word"


def chars(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def mixed(rng: random.Random, alphabet: str, n: int) -> str:
    """Random, with a lower, an upper and a digit, as real keys have."""
    while True:
        value = chars(rng, alphabet, n)
        if any(c.islower() for c in value) and any(c.isupper() for c in value) and any(c.isdigit() for c in value):
            return value
