"""Time as this package writes and reads it: one format for every stored timestamp.

Stored evidence (state, audit records, eval results, request records) carries UTC timestamps with
microseconds and a ``Z`` suffix (``2026-12-02T18:30:00.000000Z``). Reading is strict: a value
without a time zone is refused (``ValueError``), never assumed to be UTC, because a timestamp an
auditor relies on must not change meaning with the reader's assumptions.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

__all__ = ["is_aware", "iso", "parse_time", "utcnow"]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def is_aware(t: Any) -> bool:
    return isinstance(t, dt.datetime) and t.tzinfo is not None and t.utcoffset() is not None


def iso(t: dt.datetime) -> str:
    """``t`` in UTC, microseconds, ``Z``; a naive ``t`` is refused."""
    if not is_aware(t):
        raise ValueError("timestamps must be timezone-aware")
    return t.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_time(value: Any) -> dt.datetime:
    """An ISO 8601 timestamp with a time zone, as an aware UTC datetime; ``ValueError`` otherwise."""
    if not isinstance(value, str):
        raise ValueError("not a timestamp")
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"not a timestamp ({value[:40]!r})") from None
    if not is_aware(parsed):
        raise ValueError(f"timestamp has no time zone ({value[:40]!r})")
    return parsed.astimezone(dt.UTC)
