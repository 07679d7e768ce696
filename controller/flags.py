"""The flagd flag document: its shape, and the checks a document must pass.

flagd's published JSON schema (https://flagd.dev/schema/v0/flags.json) defines a document as
``{"$schema"?, "$evaluators"?, "metadata"?, "flags": {key: flag}}`` where a flag has a
``state`` (ENABLED | DISABLED), ``variants`` whose values all share one type (boolean, string,
number or object), a ``defaultVariant`` (string or null) and optional ``targeting`` (JSON
Logic) and ``metadata`` (string/number/boolean values). ``flagd_problems`` implements those
rules plus the semantic one flagd enforces at load time: the default variant must exist.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "FLAGD_SCHEMA_URL",
    "flag_type",
    "flagd_problems",
    "load_flag_document",
]

FLAGD_SCHEMA_URL = "https://flagd.dev/schema/v0/flags.json"

_TOP_LEVEL = {"$schema", "$evaluators", "flags", "metadata"}
_FLAG_KEYS = {"state", "variants", "defaultVariant", "targeting", "metadata"}


def flag_type(flag: Mapping[str, Any]) -> str | None:
    """``boolean`` | ``string`` | ``number`` | ``object``, or None when variants are mixed."""
    kinds = {_value_type(v) for v in (flag.get("variants") or {}).values()}
    return kinds.pop() if len(kinds) == 1 else None


def _value_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _metadata_problems(meta: Any, field: str) -> list[tuple[str, str]]:
    if not isinstance(meta, dict):
        return [(field, "must be an object")]
    return [
        (f"{field}.{k}", "metadata values must be string, number or boolean")
        for k, v in meta.items()
        if not isinstance(v, str | int | float | bool)
    ]


def flagd_problems(doc: Any) -> list[tuple[str, str]]:
    """Every way ``doc`` violates the flagd flag-definition format, as (field, message)."""
    if not isinstance(doc, dict):
        return [("", "a flagd document must be a JSON object")]
    problems: list[tuple[str, str]] = []
    for key in sorted(set(doc) - _TOP_LEVEL):
        problems.append((key, "unknown top-level key"))
    if "metadata" in doc:
        problems += _metadata_problems(doc["metadata"], "metadata")
    if "$evaluators" in doc and not isinstance(doc["$evaluators"], dict):
        problems.append(("$evaluators", "must be an object"))
    flags = doc.get("flags")
    if not isinstance(flags, dict):
        return [*problems, ("flags", "required, and must be an object of flag definitions")]
    for key, flag in flags.items():
        field = f"flags.{key}"
        if not key:
            problems.append((field, "flag keys must not be empty"))
        if not isinstance(flag, dict):
            problems.append((field, "must be an object"))
            continue
        for extra in sorted(set(flag) - _FLAG_KEYS):
            problems.append((f"{field}.{extra}", "unknown flag property"))
        if flag.get("state") not in ("ENABLED", "DISABLED"):
            problems.append((f"{field}.state", "required, ENABLED or DISABLED"))
        variants = flag.get("variants")
        if not isinstance(variants, dict) or not variants:
            problems.append((f"{field}.variants", "required, a non-empty object"))
        elif flag_type(flag) is None or flag_type(flag) not in {"boolean", "string", "number", "object"}:
            problems.append((f"{field}.variants", "all variants must have one type"))
        default = flag.get("defaultVariant")
        if default is not None and not isinstance(default, str):
            problems.append((f"{field}.defaultVariant", "must be a string or null"))
        elif isinstance(variants, dict) and default is not None and default not in variants:
            problems.append((f"{field}.defaultVariant", f"{default!r} is not one of the variants"))
        if "targeting" in flag and not isinstance(flag["targeting"], dict):
            problems.append((f"{field}.targeting", "must be a JSON Logic object"))
        if "metadata" in flag:
            problems += _metadata_problems(flag["metadata"], f"{field}.metadata")
    return problems


def load_flag_document(path: Path) -> dict[str, Any]:
    """Read a flag document as JSON; ``ValueError`` with a one-line reason when unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON: {exc.msg} (line {exc.lineno})") from None
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None
