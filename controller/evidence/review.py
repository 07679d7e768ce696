"""The weekly review, and the request-log queries it (and the audit report) run.

What a review says, for a window (``--since 7d``): usage by day and cohort (and the release it was served); near-misses
(forbidden input found, by category, blocked or let through redacted); fallbacks; policy
violations (blocked requests, refused identities, forbidden input that was answered anyway);
golden-set regressions (a case that passed in the previous eval that ran it and fails in a
later one); personal-account exceptions and their expiry; and the control-plane actions
(promote, rollback, kill...) from the audit chain.

The request log is queried with SQL, one text for two engines (``controller/sql/``):

- ``queries/*.sql`` are the queries. They use only what DuckDB and Athena (Trino) share, over
  two relations and one function: ``requests`` (one row per record, plus ``day``),
  ``request_findings`` (one row per record, location and detector) and
  ``from_iso8601_timestamp``. Parameters are positional ``?``: since day, until day, since,
  until (``Window.params``).
- ``duckdb/requests.sql`` defines those over the local JSONL files (``RequestLog``, the
  embedded default); ``athena/requests.sql`` and ``athena/request_findings.sql`` define them
  over the audit bucket (``athena_script`` renders the whole Athena script, queries included).
- ``detector_categories.sql``: the bundle's detector id -> category and action, because a
  record holds detector ids only (``controller.boundaries.detectors.resolve_detectors``).

``build_review`` is pure: query rows, eval runs, exceptions and chain actions in, a ``WeeklyReview``
out. ``RequestLog`` is the only I/O here (DuckDB, imported lazily).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from controller.errors import InvalidInput

__all__ = [
    "EXPIRY_WARNING_DAYS",
    "QUERIES",
    "REVIEW_QUERIES",
    "SQL_DIR",
    "ChainAction",
    "EvalRun",
    "ExceptionStatus",
    "Regression",
    "RequestLog",
    "WeeklyReview",
    "Window",
    "athena_script",
    "bind_literals",
    "build_review",
    "detector_categories",
    "exception_status",
    "golden_regressions",
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
# The queries a review runs (decisions, models and texts serve the audit report).
REVIEW_QUERIES = ("usage", "near_misses", "near_miss_detectors", "fallbacks", "refusals")
EXPIRY_WARNING_DAYS = 14
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def _sql(relative: str) -> str:
    return (SQL_DIR / relative).read_text(encoding="utf-8")


def query_text(name: str) -> str:
    """The text of ``queries/<name>.sql``, as both engines run it."""
    if name not in QUERIES:
        raise InvalidInput(f"unknown request-log query {name!r}; known: {', '.join(QUERIES)}.")
    return _sql(f"queries/{name}.sql")


# --- the window -------------------------------------------------------------------------------


def _iso(t: dt.datetime) -> str:
    if t.tzinfo is None:
        raise ValueError("review times must be timezone-aware")
    return t.astimezone(dt.UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class Window:
    """Records with ``since <= time < until`` (aware datetimes, compared in UTC)."""

    since: dt.datetime
    until: dt.datetime

    def __post_init__(self) -> None:
        if self.since.tzinfo is None or self.until.tzinfo is None:
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
        return [since.date().isoformat(), until.date().isoformat(), _iso(since), _iso(until)]

    def contains(self, when: str | dt.datetime) -> bool:
        t = _parse_time(when) if isinstance(when, str) else when
        return t is not None and self.since <= t < self.until

    def to_dict(self) -> dict[str, str]:
        return {"since": _iso(self.since), "until": _iso(self.until)}


def _parse_time(text: str) -> dt.datetime | None:
    try:
        t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (TypeError, ValueError):
        return None
    return t if t.tzinfo is not None else t.replace(tzinfo=dt.UTC)


# --- the bundle's detector map ---------------------------------------------------------------


def detector_categories(workflow: Any) -> list[tuple[str, str, str]]:
    """``(detector id, category, action)`` for every detector the bundle selects, first wins.

    The category is the detector's own; the action is the bundle's for that category."""
    from controller.boundaries.detectors import bundle_detectors
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


# --- evidence the review reads besides the request log -----------------------------------------


@dataclass(frozen=True)
class EvalRun:
    """One verified eval result, reduced to what the review and the audit report use."""

    digest: str
    key: str
    finished_at: str
    verdict: str
    content_hash: str
    rates: dict[str, float]
    model: str
    operator: str
    cases: tuple[tuple[str, str, bool], ...]  # (case id, category, passed), in golden-set order

    @classmethod
    def from_result(cls, result: Any) -> EvalRun:
        model = result.model
        return cls(
            digest=result.digest,
            key=result.key,
            finished_at=_iso(result.finished_at),
            verdict=str(getattr(result.verdict, "value", result.verdict)),
            content_hash=result.content_hash,
            rates=dict(result.rates),
            model=f"{model.get('adapter')}: {model.get('id')}",
            operator=result.operator,
            # A case the model or a dependency could not serve did not run: it is no regression.
            cases=tuple(
                (str(c["id"]), str(c["category"]), bool(c["passed"])) for c in result.cases if not c.get("unavailable")
            ),
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["cases"] = [{"id": i, "category": c, "passed": p} for i, c, p in self.cases]
        return data


@dataclass(frozen=True)
class Regression:
    """A golden case that passed in the previous eval that ran it and fails in this one."""

    case_id: str
    category: str
    passed_release: str
    passed_eval: str  # content hash
    passed_at: str
    failed_release: str
    failed_eval: str
    failed_at: str

    @property
    def same_release(self) -> bool:
        """The release did not change: the model or endpoint behind it did."""
        return self.passed_release == self.failed_release

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "same_release": self.same_release}


def golden_regressions(runs: Iterable[EvalRun], window: Window) -> list[Regression]:
    """Every failing case of an eval finished inside ``window`` whose previous run passed. Pure.

    "Previous" is the latest eval, of any release, finished before this one that ran the case,
    so a case that keeps failing is reported once, where it broke."""
    ordered = sorted(runs, key=lambda r: (r.finished_at, r.key))
    last: dict[str, tuple[EvalRun, bool]] = {}
    found: list[Regression] = []
    for run in ordered:
        for case_id, category, passed in run.cases:
            previous = last.get(case_id)
            if not passed and previous is not None and previous[1] and window.contains(run.finished_at):
                before = previous[0]
                found.append(
                    Regression(
                        case_id,
                        category,
                        before.digest,
                        before.content_hash,
                        before.finished_at,
                        run.digest,
                        run.content_hash,
                        run.finished_at,
                    )
                )
            last[case_id] = (run, passed)
    return found


@dataclass(frozen=True)
class ExceptionStatus:
    subject: str
    owner: str
    reason: str
    expires: str
    days_left: int
    status: str  # expired | expiring | ok

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def exception_status(
    exceptions: Iterable[Any], today: dt.date, warn_days: int = EXPIRY_WARNING_DAYS
) -> list[ExceptionStatus]:
    """Each personal-account exception with the days it has left: ``expired`` once past its
    date, ``expiring`` within ``warn_days``. Pure."""
    out = []
    for e in exceptions:
        expires = e.expires if isinstance(e.expires, dt.date) else dt.date.fromisoformat(str(e.expires))
        left = (expires - today).days
        status = "expired" if left < 0 else "expiring" if left <= warn_days else "ok"
        out.append(ExceptionStatus(e.subject, e.owner, e.reason, expires.isoformat(), left, status))
    return sorted(out, key=lambda s: (s.days_left, s.subject))


@dataclass(frozen=True)
class ChainAction:
    """One readable control-plane audit record."""

    seq: int
    time: str
    operator: str
    action: str
    release: str | None
    reason: str | None
    evidence: Any = None

    @classmethod
    def from_record(cls, record: Any) -> ChainAction:
        return cls(
            record.seq, record.time, record.operator, record.action, record.release, record.reason, record.evidence
        )

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "evidence"}


# --- the review -------------------------------------------------------------------------------

USAGE_COUNTS = ("requests", "answered", "fallback", "blocked", "disabled", "refused")


@dataclass(frozen=True)
class WeeklyReview:
    workflow: str
    window: Window
    generated_at: str
    usage: tuple[dict[str, Any], ...]
    near_misses: tuple[dict[str, Any], ...]  # prompt findings by category and decision
    near_miss_detectors: tuple[dict[str, Any], ...]
    redactions: tuple[dict[str, Any], ...]  # context and output findings
    fallbacks: tuple[dict[str, Any], ...]
    refusals: tuple[dict[str, Any], ...]
    regressions: tuple[Regression, ...]
    exceptions: tuple[ExceptionStatus, ...]
    changes: tuple[ChainAction, ...]
    kill_switch: dict[str, Any] | None
    problems: tuple[str, ...] = ()
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def totals(self) -> dict[str, int]:
        return {k: sum(int(r[k]) for r in self.usage) for k in USAGE_COUNTS}

    @property
    def by_category(self) -> dict[str, dict[str, Any]]:
        """Prompt findings per category: requests blocked, let through (redacted), values found."""
        out: dict[str, dict[str, Any]] = {}
        for r in self.near_misses:
            row = out.setdefault(r["category"], {"action": r["action"], "blocked": 0, "let_through": 0, "findings": 0})
            row["blocked" if r["decision"] == "blocked" else "let_through"] += int(r["requests"])
            row["findings"] += int(r["findings"])
        return dict(sorted(out.items()))

    @property
    def blocked(self) -> dict[str, int]:
        """Policy violations stopped: requests blocked, by the category that was found."""
        return {c: v["blocked"] for c, v in self.by_category.items() if v["blocked"]}

    @property
    def answered_with_forbidden_input(self) -> dict[str, int]:
        """Requests let through although a ``block`` category was found in the question: an
        enforcement failure (the serving release's boundaries differ from the bundle's)."""
        return {c: v["let_through"] for c, v in self.by_category.items() if v["action"] == "block" and v["let_through"]}

    @property
    def expiring_exceptions(self) -> tuple[ExceptionStatus, ...]:
        return tuple(e for e in self.exceptions if e.status != "ok")

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": "ai-rollout.review/v1",
            "workflow": self.workflow,
            "window": self.window.to_dict(),
            "generated_at": self.generated_at,
            "usage": {"totals": self.totals, "by_day_and_cohort": list(self.usage)},
            "near_misses": {
                "by_category": self.by_category,
                "rows": list(self.near_misses),
                "by_detector": list(self.near_miss_detectors),
            },
            "redactions_in_context_and_output": list(self.redactions),
            "fallbacks": list(self.fallbacks),
            "policy_violations": {
                "blocked": self.blocked,
                "refused_identities": list(self.refusals),
                "answered_with_forbidden_input": self.answered_with_forbidden_input,
            },
            "golden_set_regressions": [r.to_dict() for r in self.regressions],
            "exceptions": [e.to_dict() for e in self.exceptions],
            "control_plane": {
                "actions": [c.to_dict() for c in self.changes],
                "kill_switch": self.kill_switch,
            },
            "problems": list(self.problems),
            "sources": self.sources,
        }


def _plain(rows: Iterable[Mapping[str, Any]]) -> tuple[dict[str, Any], ...]:
    """Query rows as JSON-ready dicts (DuckDB returns Decimal/int for sums)."""
    return tuple(
        json.loads(json.dumps(dict(r), default=lambda v: int(v) if hasattr(v, "__int__") else str(v))) for r in rows
    )


def build_review(
    *,
    workflow: str,
    window: Window,
    generated_at: dt.datetime,
    rows: Mapping[str, Sequence[Mapping[str, Any]]],
    eval_runs: Iterable[EvalRun] = (),
    exceptions: Iterable[Any] = (),
    chain: Iterable[ChainAction] = (),
    kill_switch: Mapping[str, Any] | None = None,
    problems: Iterable[str] = (),
    sources: Mapping[str, str] | None = None,
    warn_days: int = EXPIRY_WARNING_DAYS,
) -> WeeklyReview:
    """The review for ``window`` from the queries' rows (``usage``, ``near_misses``,
    ``near_miss_detectors``, ``fallbacks``, ``refusals``) and the other evidence. Pure."""
    findings = _plain(rows.get("near_misses", ()))
    detectors = _plain(rows.get("near_miss_detectors", ()))
    return WeeklyReview(
        workflow=workflow,
        window=window,
        generated_at=_iso(generated_at),
        usage=_plain(rows.get("usage", ())),
        near_misses=tuple(r for r in findings if r["location"] == "prompt"),
        near_miss_detectors=tuple(r for r in detectors if r["location"] == "prompt"),
        redactions=tuple(r for r in findings if r["location"] != "prompt"),
        fallbacks=_plain(rows.get("fallbacks", ())),
        refusals=_plain(rows.get("refusals", ())),
        regressions=tuple(golden_regressions(eval_runs, window)),
        exceptions=tuple(exception_status(exceptions, generated_at.astimezone(dt.UTC).date(), warn_days)),
        changes=tuple(c for c in chain if window.contains(c.time)),
        kill_switch=dict(kill_switch) if kill_switch is not None else None,
        problems=tuple(problems),
        sources=dict(sources or {}),
    )

