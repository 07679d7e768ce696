"""The request log and the SQL that reads it: one text of each query for two engines.

The review and the audit report read the gateway's request records (``<state>/requests/*.jsonl``
locally, ``s3://<audit bucket>/requests/`` in AWS) through the queries in ``controller/sql/``:

- ``queries/*.sql`` are the queries. They use only what DuckDB and Athena (Trino) share, over
  two relations and one function: ``requests`` (one row per record, plus ``day``),
  ``request_findings`` (one row per record, location and detector) and
  ``from_iso8601_timestamp``. Parameters are positional ``?``: since day, until day, since,
  until (``Window.params``).
- ``duckdb/requests.sql`` defines those over the local JSONL files (``RequestLog``, the
  embedded default); ``athena/requests.sql`` and ``athena/request_findings.sql`` define them
  over the audit bucket (``athena_script`` renders the whole Athena script, queries included).
- ``detector_categories.sql``: the bundle's detector id -> category and action, because a
  record holds detector ids only (``controller.boundaries.resolve_detectors``).

``RequestLog`` is the only I/O here (DuckDB, imported lazily); the rest is pure text.
"""

from __future__ import annotations

import datetime as dt
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controller.core.timefmt import is_aware, iso, parse_time
from controller.errors import InvalidInput

__all__ = [
    "QUERIES",
    "REPORT_QUERIES",
    "REVIEW_QUERIES",
    "SQL_DIR",
    "RequestLog",
    "Window",
    "athena_script",
    "bind_literals",
    "detector_categories",
    "query_text",
]

SQL_DIR = Path(__file__).parents[1] / "sql"
# Every query in queries/, in the order a script lists them.
QUERIES = (
    "usage",
    "decisions",
    "models",
    "near_misses",
    "near_miss_detectors",
    "fallbacks",
    "refusals",
    "texts",
)
# The queries a review runs, and those the audit report runs (besides ``texts``, which it re-scans).
REVIEW_QUERIES = ("usage", "near_misses", "near_miss_detectors", "fallbacks", "refusals")
REPORT_QUERIES = ("decisions", "models", "near_misses", "refusals")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def _sql(relative: str) -> str:
    return (SQL_DIR / relative).read_text(encoding="utf-8")


def query_text(name: str) -> str:
    """The text of ``queries/<name>.sql``, as both engines run it."""
    if name not in QUERIES:
        raise InvalidInput(f"unknown request-log query {name!r}; known: {', '.join(QUERIES)}.")
    return _sql(f"queries/{name}.sql")


# --- the window -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """Records with ``since <= time < until`` (aware datetimes, compared in UTC)."""

    since: dt.datetime
    until: dt.datetime

    def __post_init__(self) -> None:
        if not (is_aware(self.since) and is_aware(self.until)):
            raise ValueError("a review window needs timezone-aware datetimes")

    @classmethod
    def last(cls, duration: dt.timedelta, now: dt.datetime) -> Window:
        return cls(now - duration, now)

    @classmethod
    def everything(cls) -> Window:
        return cls(dt.datetime(1970, 1, 1, tzinfo=dt.UTC), dt.datetime(9999, 12, 31, tzinfo=dt.UTC))

    def params(self) -> list[str]:
        """The queries' four positional parameters, in order."""
        since, until = self.since.astimezone(dt.UTC), self.until.astimezone(dt.UTC)
        return [since.date().isoformat(), until.date().isoformat(), iso(since), iso(until)]

    def contains(self, when: str | dt.datetime) -> bool:
        """Whether ``when`` falls in the window; ``ValueError`` for a time without a time zone."""
        return self.since <= (parse_time(when) if isinstance(when, str) else when) < self.until

    def to_dict(self) -> dict[str, str]:
        return {"since": iso(self.since), "until": iso(self.until)}


# --- the bundle's detector map ---------------------------------------------------------------


def detector_categories(workflow: Any) -> list[tuple[str, str, str]]:
    """``(detector id, category, action)`` for every detector the bundle selects, first wins.

    The category is the detector's own; the action is the bundle's for that category."""
    from controller.boundaries import bundle_detectors
    from controller.boundaries.redactor import Action

    db = workflow.data_boundaries
    actions = {f.category.value: f.action.value for f in db.forbidden}
    # A detector whose category the bundle does not declare blocks, as the Redactor does.
    return [(d.id, str(d.category), actions.get(str(d.category), Action.BLOCK.value)) for d in bundle_detectors(db)]


def _quote(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _detector_sql(rows: Sequence[tuple[str, str, str]], *, temp: bool) -> str:
    if not rows:  # VALUES needs a row; this one matches no finding
        rows = [("", "(none)", "(none)")]
    values = ",\n".join(f"    ({_quote(d)}, {_quote(c)}, {_quote(a)})" for d, c, a in rows)
    text = _sql("detector_categories.sql")
    return text.replace("{{temp}}", "TEMP " if temp else "").replace("{{rows}}", values)


# --- binding ----------------------------------------------------------------------------------


def bind_literals(sql: str, params: Sequence[str]) -> str:
    """``sql`` with each ``?`` parameter replaced, in order, by a quoted string literal.

    For the Athena console (which would otherwise prompt for each); ``?`` inside string
    literals, quoted identifiers and ``--`` comments is left alone."""
    out: list[str] = []
    values = iter(params)
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch in ("'", '"'):
            end = i + 1
            while end < n:
                if sql[end] == ch:
                    if end + 1 < n and sql[end + 1] == ch:  # doubled quote inside the literal
                        end += 2
                        continue
                    break
                end += 1
            out.append(sql[i : end + 1])
            i = end + 1
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            end = n if end == -1 else end
            out.append(sql[i:end])
            i = end
        elif ch == "?":
            try:
                out.append(_quote(next(values)))
            except StopIteration:
                raise ValueError("fewer parameters than ? placeholders") from None
            i += 1
        else:
            out.append(ch)
            i += 1
    if next(values, None) is not None:
        raise ValueError("more parameters than ? placeholders")
    return "".join(out)


def athena_script(bucket: str, detectors: Sequence[tuple[str, str, str]], window: Window | None = None) -> str:
    """The whole Athena script for the audit bucket ``bucket``: the table, the two views and
    every query of ``queries/`` (with the window's literals bound, when one is given).

    Statements are separated by ``;`` lines; the Athena console runs one at a time."""
    if not _BUCKET.match(bucket):
        raise InvalidInput(f"{bucket!r} is not an S3 bucket name (give the audit bucket's name, not a URL).")
    parts = [
        ("the table over s3://BUCKET/requests/", _sql("athena/requests.sql").replace("{{bucket}}", bucket)),
        ("one row per finding", _sql("athena/request_findings.sql")),
        ("the bundle's detector categories", _detector_sql(detectors, temp=False)),
    ]
    for name in QUERIES:
        text = query_text(name)
        parts.append((f"query {name}", bind_literals(text, window.params()) if window else text))
    return "\n\n".join(f"-- ===== {title} =====\n{sql.strip().rstrip(';')};" for title, sql in parts) + "\n"


# --- the DuckDB adapter -----------------------------------------------------------------------


class RequestLog:
    """The local request log (``<state>/requests/*.jsonl``) behind the shared queries, in DuckDB.

    Use as a context manager. A directory without records gives empty results, not an error;
    ``files`` says which files were read."""

    def __init__(self, directory: Path, detectors: Sequence[tuple[str, str, str]] = ()) -> None:
        try:
            import duckdb
        except ImportError as exc:  # pragma: no cover - a dependency of the package
            raise InvalidInput(f"the request-log queries need duckdb ({exc}).") from None
        self.directory = Path(directory)
        self.files = tuple(sorted(self.directory.glob("*.jsonl"))) if self.directory.is_dir() else ()
        self._tmp: Any = None
        sources = list(self.files)
        if not sources:  # read_json needs a file; an empty one has no records
            self._tmp = tempfile.TemporaryDirectory(prefix="rollout-requests-")
            empty = Path(self._tmp.name) / "empty.jsonl"
            empty.write_bytes(b"")
            sources = [empty]
        files = "[" + ", ".join(_quote(str(p)) for p in sources) + "]"
        self._con = duckdb.connect(":memory:")
        try:
            for statement in _statements(_sql("duckdb/requests.sql").replace("@files@", files)):
                self._con.execute(statement)
            self._con.execute(_detector_sql(detectors, temp=True))
        except Exception:
            self.close()
            raise

    def query(self, name: str, window: Window) -> list[dict[str, Any]]:
        """Rows of ``queries/<name>.sql`` over ``window``, as dicts keyed by column name.

        Unreadable records (malformed JSON, wrong types) raise ``InvalidInput`` naming the log."""
        return self.sql(query_text(name), window.params())

    def sql(self, text: str, params: Sequence[Any] | None = None) -> list[dict[str, Any]]:
        """Rows of any statement over the relations the queries use."""
        import duckdb

        try:
            cursor = self._con.execute(text, list(params) if params is not None else None)
            columns = [d[0] for d in cursor.description]
            return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
        except duckdb.Error as exc:
            raise InvalidInput(f"the request log in {self.directory} cannot be read: {exc}") from None

    def close(self) -> None:
        con, self._con = getattr(self, "_con", None), None
        if con is not None:
            con.close()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> RequestLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _statements(script: str) -> list[str]:
    """Split a script of our own on ``;`` at line ends (our files never put one elsewhere)."""
    body = "\n".join(line for line in script.splitlines() if not line.lstrip().startswith("--"))
    return [s.strip() for s in re.split(r";\s*(?:\n|$)", body) if s.strip()]
