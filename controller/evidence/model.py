"""The auditor's report as data: verdicts, checks, the Definition-of-Done items, tables.

A check is one verdict on one piece of evidence, naming where that evidence came from; an item
is a list of checks; the report is the five items plus the evidence they were judged on. The
verdict rule is written once, in ``combine``: FAIL beats UNKNOWN beats PASS, and nothing at all
is UNKNOWN (missing evidence never passes).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = [
    "BUNDLE",
    "CHAIN",
    "EVALS",
    "FLAGS",
    "REPORT_SCHEMA",
    "REQUESTS",
    "STACK",
    "STATE",
    "Check",
    "Item",
    "Report",
    "Status",
    "Table",
    "combine",
    "failed",
    "passed",
    "unknown",
]

REPORT_SCHEMA = "ai-rollout.audit-report/v1"


class Status(StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"
    UNKNOWN = "UNKNOWN"


# Where a check's evidence came from (shown with every check).
BUNDLE = "bundle"
FLAGS = "flag document"
STATE = "rollout state"
EVALS = "eval results"
CHAIN = "audit chain"
REQUESTS = "request log"
STACK = "stack export"


@dataclass(frozen=True)
class Check:
    status: Status
    source: str
    summary: str

    def to_dict(self) -> dict[str, str]:
        return {"status": self.status.value, "source": self.source, "summary": self.summary}


def passed(source: str, summary: str) -> Check:
    return Check(Status.PASS, source, summary)


def failed(source: str, summary: str) -> Check:
    return Check(Status.FAIL, source, summary)


def unknown(source: str, summary: str) -> Check:
    return Check(Status.UNKNOWN, source, summary)


def combine(statuses: Iterable[Status]) -> Status:
    """FAIL if any is FAIL, else UNKNOWN if any is UNKNOWN (or there is nothing), else PASS."""
    seen = set(statuses)
    if Status.FAIL in seen:
        return Status.FAIL
    if Status.UNKNOWN in seen or not seen:
        return Status.UNKNOWN
    return Status.PASS


@dataclass(frozen=True)
class Item:
    number: int
    key: str
    title: str
    checks: tuple[Check, ...]

    @property
    def status(self) -> Status:
        return combine(c.status for c in self.checks)

    @property
    def rationale(self) -> str:
        """Which evidence decided the verdict: the failing checks, else the unknown ones, else
        every source that passed."""
        status = self.status
        if status is Status.PASS:
            sources = list(dict.fromkeys(c.source for c in self.checks))
            return f"every check passed, on evidence from: {', '.join(sources)}."
        deciding = [c for c in self.checks if c.status is status]
        prefix = "failed" if status is Status.FAIL else "no evidence"
        return f"{prefix}: " + " ".join(f"[{c.source}] {c.summary}" for c in deciding)

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "key": self.key,
            "title": self.title,
            "status": self.status.value,
            "rationale": self.rationale,
            "checks": [c.to_dict() for c in self.checks],
        }


@dataclass(frozen=True)
class Table:
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    note: str = ""


@dataclass(frozen=True)
class Report:
    workflow: str
    generated_at: str
    items: tuple[Item, ...]
    evidence: Mapping[str, Any]  # JSON-ready facts, by source (controller.evidence.report)
    tables: tuple[Table, ...]  # the same facts as tables, for md/html (controller.evidence.tables)

    @property
    def status(self) -> Status:
        return combine(i.status for i in self.items)

    @property
    def counts(self) -> dict[str, int]:
        return {s.value: sum(1 for i in self.items if i.status is s) for s in Status}

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": REPORT_SCHEMA,
            "workflow": self.workflow,
            "generated_at": self.generated_at,
            "overall": self.status.value,
            "counts": self.counts,
            "items": [i.to_dict() for i in self.items],
            "evidence": self.evidence,
        }
