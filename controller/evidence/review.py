"""The weekly review (``rollout review``): what happened in a window, and whether the evidence
behind it verifies. Pure: ``ReviewEvidence`` in (``controller.evidence.collect.collect_review``
gathers it), a ``WeeklyReview`` and an exit code out.

What a review says, for a window (``--since 7d``): usage by day and cohort (and the release it
was served); near-misses (forbidden input found, by category, blocked or let through redacted);
fallbacks; policy violations (blocked requests, refused identities, forbidden input that was
answered anyway); golden-set regressions (a case that passed in the previous eval that ran it and
fails in a later one); personal-account exceptions and their expiry; and the control-plane
actions (promote, rollback, kill...) from the audit chain.

Its exit code (``review_exit_code``): 1 when evidence does not verify or cannot be read (eval
results that do not verify, a broken audit chain, an unreadable control plane, an audit record
whose time has no time zone), else 0. The request log's queries are ``controller.evidence.request_log``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from controller.core.timefmt import iso, parse_time
from controller.evidence.facts import ChainAction, EvalRun, ReviewEvidence
from controller.evidence.request_log import Window

__all__ = [
    "EXPIRY_WARNING_DAYS",
    "ExceptionStatus",
    "Regression",
    "WeeklyReview",
    "build_review",
    "exception_status",
    "golden_regressions",
    "review_exit_code",
    "review_of",
    "review_problems",
]

EXPIRY_WARNING_DAYS = 14


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
        generated_at=iso(generated_at),
        usage=_plain(rows.get("usage", ())),
        near_misses=tuple(r for r in findings if r["location"] == "prompt"),
        near_miss_detectors=tuple(r for r in detectors if r["location"] == "prompt"),
        redactions=tuple(r for r in findings if r["location"] != "prompt"),
        fallbacks=_plain(rows.get("fallbacks", ())),
        refusals=_plain(rows.get("refusals", ())),
        regressions=tuple(golden_regressions(eval_runs, window)),
        exceptions=tuple(exception_status(exceptions, generated_at.astimezone(dt.UTC).date(), warn_days)),
        changes=tuple(c for c in chain if _time_problem(c) is None and window.contains(c.time)),
        kill_switch=dict(kill_switch) if kill_switch is not None else None,
        problems=tuple(problems),
        sources=dict(sources or {}),
    )


# --- the review's decision: its problems and exit code ------------------------------------------


def _time_problem(action: ChainAction) -> str | None:
    """Why an audit record's time cannot place it in a window (no time zone, not a time), or None."""
    try:
        parse_time(action.time)
    except ValueError as exc:
        return f"audit record seq {action.seq} cannot be placed in the window: its time {exc}"
    return None


def _problems_and_verified(ev: ReviewEvidence) -> tuple[list[str], bool]:
    problems = list(ev.bundle_problems)
    verified = True
    if ev.evals_error:
        problems.append(f"eval results do not verify: {ev.evals_error}")
        verified = False
    if ev.chain is not None:
        if not ev.chain.ok:
            problems.append(f"the audit chain is BROKEN at seq {ev.chain.first_bad_seq}: {ev.chain.reason}")
        problems += ev.chain.problems
        times = [p for a in ev.chain.actions if (p := _time_problem(a)) is not None]
        problems += times
        verified = verified and ev.chain.verified and not times
    unreadable = ev.chain_error or ev.state_error
    if unreadable:
        problems.append(f"the control plane cannot be read: {unreadable}")
        verified = False
    return problems, verified


def review_problems(ev: ReviewEvidence) -> list[str]:
    """What the review reports as problems: the bundle's, then any evidence that does not verify."""
    return _problems_and_verified(ev)[0]


def review_exit_code(ev: ReviewEvidence) -> int:
    """1 when some evidence does not verify or cannot be read, else 0 (findings are not failures)."""
    return 0 if _problems_and_verified(ev)[1] else 1


def review_of(ev: ReviewEvidence, warn_days: int = EXPIRY_WARNING_DAYS) -> WeeklyReview:
    """The review of ``ev.window``. A control plane that cannot be read shows no kill switch, and
    an unreadable chain no actions."""
    unreadable = ev.chain_error or ev.state_error
    return build_review(
        workflow=ev.workflow,
        window=ev.window,
        generated_at=ev.generated_at,
        rows=ev.rows,
        eval_runs=ev.evals,
        exceptions=ev.exceptions,
        chain=ev.chain.actions if ev.chain is not None else (),
        kill_switch=None if unreadable else ev.kill_switch,
        problems=review_problems(ev),
        sources=ev.sources,
        warn_days=warn_days,
    )
