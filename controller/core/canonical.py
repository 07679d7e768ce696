"""The one byte encoding that is hashed everywhere: releases, eval results, audit records, state.

Sorted keys, no whitespace, UTF-8, no NaN/Infinity: one encoding per value, so a hash names
content, not formatting.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from controller.errors import InvalidInput

__all__ = ["canonical_json", "sha256_hex"]


def canonical_json(value: Any) -> bytes:
    try:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        return text.encode("utf-8")
    except (TypeError, ValueError) as exc:  # UnicodeEncodeError (lone surrogates) is a ValueError
        raise InvalidInput(f"Value is not canonical JSON data: {exc}.") from exc


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
