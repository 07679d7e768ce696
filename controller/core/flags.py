"""The flagd flag document: its shape, and the checks a document must pass.

flagd's published JSON schema (https://flagd.dev/schema/v0/flags.json) defines a document as
``{"$schema"?, "$evaluators"?, "metadata"?, "flags": {key: flag}}`` where a flag has a
``state`` (ENABLED | DISABLED), ``variants`` whose values all share one type (boolean, string,
number or object), a ``defaultVariant`` (string or null) and optional ``targeting`` (JSON
Logic) and ``metadata`` (string/number/boolean values). ``flagd_problems`` implements those
rules plus the semantic one flagd enforces at load time: the default variant must exist; the
official schema files themselves ship in ``controller/schemas/flagd/`` (tests validate every
rendered document against them).

**Cohort membership is computed by the gateway, not by the flag engine.** flagd's ``fractional``
hashes differently in different engines (the Python flagd-core hashes a CBOR encoding of the
bucket key, flagd's Go daemon and the JavaScript flagd-core the raw string), so the same user
could land in different cohorts depending on who evaluates the document. Instead the gateway
puts ``rolloutBucket`` = ``cohort_bucket(release_flag, subject)`` (0-99) in the evaluation context
(``evaluation_attributes``), and a percentage cohort is the numeric comparison
``rolloutBucket < percentage``: plain JSON Logic that every engine evaluates alike. A context
without the bucket is served ``off`` (fail closed). The bucket hashes what flagd's own
``fractional`` hashes by default (flag key + targeting key, murmur3 32-bit of the UTF-8 bytes,
scaled by ``(hash * 100) >> 32``), so a user keeps the cohort the Go and JavaScript engines would
have given them.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "BUCKET_ATTRIBUTE",
    "BUCKETS",
    "FLAGD_SCHEMA_URL",
    "cohort_bucket",
    "evaluation_attributes",
    "flag_type",
    "flagd_problems",
    "encode_flag_document",
    "kill_engaged",
    "publish_hold",
    "render_flag_document",
]

FLAGD_SCHEMA_URL = "https://flagd.dev/schema/v0/flags.json"
# The evaluation-context attribute that carries the user's cohort bucket, and how many there are.
BUCKET_ATTRIBUTE = "rolloutBucket"
BUCKETS = 100

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


def cohort_bucket(flag_key: str, subject: str) -> int:
    """The user's bucket (0 to ``BUCKETS - 1``) for the release flag ``flag_key``. Pure and stable:
    murmur3 (x86, 32-bit, seed 0) of the UTF-8 bytes of ``flag_key + subject``, scaled as flagd's
    ``fractional`` scales it."""
    import mmh3  # the gateway's dependency (via flagd-core); the Pulumi environment never calls this

    return (mmh3.hash((flag_key + subject).encode("utf-8"), seed=0, signed=False) * BUCKETS) >> 32


def evaluation_attributes(release_flag: str, subject: str, email: str, groups: Sequence[str]) -> dict[str, Any]:
    """The evaluation context's attributes for one user (the targeting key is ``subject``): what
    every rendered targeting rule reads, whichever engine evaluates it."""
    return {"email": email, "groups": list(groups), BUCKET_ATTRIBUTE: cohort_bucket(release_flag, subject)}


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
    takes the members whose ``rolloutBucket`` is below its percentage and passes the rest to the
    next cohort (module docstring). Anyone outside the allowed email domains, or without a
    bucket when a split needs one, gets ``off``; the kill switch overrides everything.
    """
    rollout = workflow.rollout
    cohorts = list(rollout.cohorts)
    variants = {"off": "off", **{c.name: served.get(c.name, "off") for c in cohorts}}

    def variant(name: str) -> str:
        return name

    # Build from the last cohort backwards: each branch falls through to the next.
    split = False
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
            split = True
            chosen = {"if": [{"<": [{"var": BUCKET_ATTRIBUTE}, cohort.percentage]}, variant(cohort.name), below]}
            if not cohort.groups:
                rest = chosen
                continue
        rest = {"if": [_member_of(list(cohort.groups)), chosen, fall_through]}
    targeting: dict[str, Any] = {"if": [_allowed_domain(list(workflow.sso.allowed_email_domains)), rest, "off"]}
    if split:
        # JavaScript's JSON Logic reads a missing number as 0 (inside every split), Python's raises:
        # the missing bucket is answered once, the same way everywhere.
        targeting = {"if": [{"missing": [BUCKET_ATTRIBUTE]}, "off", targeting]}
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
