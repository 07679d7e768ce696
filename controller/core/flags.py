"""The flagd flag document: its shape, and the checks a document must pass.

flagd's published JSON schema (https://flagd.dev/schema/v0/flags.json) defines a document as
``{"$schema"?, "$evaluators"?, "metadata"?, "flags": {key: flag}}`` where a flag has a
``state`` (ENABLED | DISABLED), ``variants`` whose values all share one type (boolean, string,
number or object), a ``defaultVariant`` (string or null) and optional ``targeting`` (JSON
Logic) and ``metadata`` (string/number/boolean values). ``flagd_problems`` implements those
rules plus the semantic one flagd enforces at load time: the default variant must exist.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

__all__ = [
    "FLAGD_SCHEMA_URL",
    "flag_type",
    "flagd_problems",
    "encode_flag_document",
    "kill_engaged",
    "publish_hold",
    "render_flag_document",
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


def _member_of(groups: list[str]) -> dict[str, Any]:
    return {"or": [{"in": [g, {"var": "groups"}]} for g in groups]}


def _allowed_domain(domains: list[str]) -> dict[str, Any]:
    # flagd's `in` on strings is a substring test; `ends_with` on "@domain" is exact.
    return {"or": [{"ends_with": [{"var": "email"}, f"@{d.lower()}"]} for d in domains]}


def render_flag_document(
    workflow: Any, served: Mapping[str, str], *, killed: bool, version: int = 0, engaged_at: str | None = None
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
    kill_switch: dict[str, Any] = {
        "state": "ENABLED",
        "variants": {"engaged": True, "released": False},
        "defaultVariant": "engaged" if killed else "released",
    }
    if killed and engaged_at:
        # Which kill this is: only a release recorded after it may replace it (``publish_hold``).
        kill_switch["metadata"] = {"engagedAt": engaged_at}
    return {
        "$schema": FLAGD_SCHEMA_URL,
        "metadata": {"flagSetId": workflow.id, "version": str(version)},
        "flags": {
            rollout.kill_switch_flag: kill_switch,
            rollout.release_flag: {
                "state": "ENABLED",
                "variants": variants,
                "defaultVariant": "off",
                "targeting": targeting,
            },
        },
    }


def encode_flag_document(doc: Mapping[str, Any]) -> bytes:
    """The one byte encoding of a flag document: what every sink holds and every compare uses."""
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode("utf-8")


# --- publishing (pure) ------------------------------------------------------------------------


def kill_engaged(document: bytes | None, kill_switch_flag: str) -> bool:
    """Whether a flagd document serves its kill switch's ``true`` variant by default."""
    return _kill_flag(document, kill_switch_flag) is not None


def _kill_flag(document: bytes | None, kill_switch_flag: str) -> dict[str, Any] | None:
    """The kill switch flag of ``document`` when it is engaged, else None."""
    if not document:
        return None
    try:
        flag = json.loads(document)["flags"][kill_switch_flag]
        return flag if flag["variants"][flag["defaultVariant"]] is True else None
    except (ValueError, KeyError, TypeError):
        return None


def _released_after(kill_flag: Mapping[str, Any], released_at: str | None) -> bool:
    """Whether a release recorded at ``released_at`` is later than the live kill's engagement."""
    meta = kill_flag.get("metadata")
    engaged_at = meta.get("engagedAt") if isinstance(meta, Mapping) else None
    if not released_at or not isinstance(engaged_at, str):
        return False
    try:
        return dt.datetime.fromisoformat(engaged_at) <= dt.datetime.fromisoformat(released_at)
    except (ValueError, TypeError):
        return False


def publish_hold(
    live: bytes | None,
    rendered: bytes,
    kill_switch_flag: str,
    *,
    releasing_kill: bool = False,
    released_at: str | None = None,
) -> str | None:
    """Why ``rendered`` must not replace ``live`` in a sink, or None when it may.

    The never-un-kill rule: a live document with the kill switch engaged is replaced by one
    without only by an explicit release: the release command itself (``releasing_kill``), or a
    release the state recorded (``released_at``) after the live kill was engaged (its
    ``engagedAt``), e.g. when a release crashed between saving the state and writing the flags.
    Anything else that would release it (an operator's fail-safe kill that reached the flags but
    not the state, a kill pulled by hand in one sink) leaves the live document engaged."""
    live_kill = _kill_flag(live, kill_switch_flag)
    if releasing_kill or live_kill is None or kill_engaged(rendered, kill_switch_flag):
        return None
    if _released_after(live_kill, released_at):
        return None
    return (
        "the live flag document has the kill switch engaged but the state does not: left engaged; "
        "record the kill (`rollout kill`) or release it (`rollout kill --release --reason TEXT`)"
    )
