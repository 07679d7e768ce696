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
    "render_flag_document",
    "write_flag_document",
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


def _member_of(groups: list[str]) -> dict[str, Any]:
    return {"or": [{"in": [g, {"var": "groups"}]} for g in groups]}


def _allowed_domain(domains: list[str]) -> dict[str, Any]:
    # flagd's `in` on strings is a substring test; `ends_with` on "@domain" is exact.
    return {"or": [{"ends_with": [{"var": "email"}, f"@{d.lower()}"]} for d in domains]}


def render_flag_document(
    workflow: Any, served: Mapping[str, str], *, killed: bool, version: int = 0
) -> dict[str, Any]:
    """The flagd document for ``served`` (cohort name -> release digest or "off").

    The release flag's variants are named after the cohorts and valued with the digest each is
    served, so an evaluation says both which cohort the user is in (the variant) and which
    release they get (the value); ``off`` is no cohort. Cohorts are tried in order (internal,
    limited, general); a user matches the first whose groups they hold, and a percentage cohort
    splits its members deterministically by targeting key (flagd ``fractional``) between itself
    and the next cohort. Anyone outside the allowed email domains gets ``off``; the kill switch
    overrides everything.
    """
    rollout = workflow.rollout
    cohorts = list(rollout.cohorts)
    variants = {"off": "off", **{c.name: served.get(c.name, "off") for c in cohorts}}

    def variant(name: str) -> str:
        return name

    # Build from the last cohort backwards: each branch falls through to the next.
    rest: Any = variant(cohorts[-1].name) if not cohorts[-1].groups else "off"
    for index in range(len(cohorts) - 1, -1, -1):
        cohort = cohorts[index]
        if not cohort.groups and cohort.percentage is None:
            rest = variant(cohort.name)
            continue
        fall_through = rest
        chosen: Any = variant(cohort.name)
        if cohort.percentage is not None:
            below = variant(cohorts[index + 1].name) if index + 1 < len(cohorts) else "off"
            chosen = {
                "fractional": [
                    {"cat": [{"var": "$flagd.flagKey"}, {"var": "targetingKey"}]},
                    [variant(cohort.name), cohort.percentage],
                    [below, 100 - cohort.percentage],
                ]
            }
            if not cohort.groups:
                rest = chosen
                continue
        rest = {"if": [_member_of(list(cohort.groups)), chosen, fall_through]}
    targeting = {"if": [_allowed_domain(list(workflow.sso.allowed_email_domains)), rest, "off"]}
    return {
        "$schema": FLAGD_SCHEMA_URL,
        "metadata": {"flagSetId": workflow.id, "version": str(version)},
        "flags": {
            rollout.kill_switch_flag: {
                "state": "ENABLED",
                "variants": {"engaged": True, "released": False},
                "defaultVariant": "engaged" if killed else "released",
            },
            rollout.release_flag: {
                "state": "ENABLED",
                "variants": variants,
                "defaultVariant": "off",
                "targeting": targeting,
            },
        },
    }


STALE_TEMP_SECONDS = 300


def _sweep_stale_temps(path: Path) -> None:
    """Remove temp files a writer killed before its rename left behind (never a live writer's)."""
    import time

    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        try:
            if time.time() - tmp.stat().st_mtime > STALE_TEMP_SECONDS:
                tmp.unlink()
        except FileNotFoundError:
            pass


def write_flag_document(path: Path, doc: Mapping[str, Any]) -> bytes:
    """Write atomically (temp file, fsync, rename, fsync dir) so the provider never reads half a file."""
    import os
    import tempfile

    data = (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    _sweep_stale_temps(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return data


# --- publishing (pure) ------------------------------------------------------------------------


def kill_engaged(document: bytes | None, kill_switch_flag: str) -> bool:
    """Whether a flagd document serves its kill switch's ``true`` variant by default."""
    if not document:
        return False
    try:
        flag = json.loads(document)["flags"][kill_switch_flag]
        return flag["variants"][flag["defaultVariant"]] is True
    except (ValueError, KeyError, TypeError):
        return False


def publish_hold(live: bytes | None, rendered: bytes, kill_switch_flag: str, *, releasing_kill: bool = False) -> str | None:
    """Why ``rendered`` must not replace ``live`` in a sink, or None when it may.

    The never-un-kill rule: a live document with the kill switch engaged is replaced by one
    without only when the command is the explicit release of the kill. Anything else that would
    release it (an operator's fail-safe kill that reached the flags but not the state, a kill
    pulled by hand in one sink) leaves the live document engaged."""
    if releasing_kill or not kill_engaged(live, kill_switch_flag) or kill_engaged(rendered, kill_switch_flag):
        return None
    return (
        "the live flag document has the kill switch engaged but the state does not: left engaged; "
        "record the kill (`rollout kill`) or release it (`rollout kill --release --reason TEXT`)"
    )
