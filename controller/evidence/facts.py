"""The evidence the audit report and the weekly review judge, as plain data.

``Evidence`` (the report's) and ``ReviewEvidence`` (the review's) and their parts. The I/O that
fills them is ``controller.evidence.collect``; everything that reads them is pure. ``None``
means the evidence is missing, an ``error`` that it could not be read or did not verify: the
report turns the first into UNKNOWN and the second into FAIL; the review exits 1 on the second.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from controller.core.timefmt import iso
from controller.evidence.request_log import Window
from controller.evidence.stack_export import Provisioned

__all__ = [
    "ChainAction",
    "ChainFacts",
    "EvalRun",
    "Evidence",
    "FlagFacts",
    "ReleaseFacts",
    "RequestFacts",
    "ReviewEvidence",
    "StateFacts",
    "Unredacted",
]


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
            finished_at=iso(result.finished_at),
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


@dataclass(frozen=True)
class FlagFacts:
    """The live flag document the gateway reads."""

    path: str
    sha256: str | None = None
    error: str | None = None  # unreadable or not JSON
    kill_flag: Mapping[str, Any] | None = None
    release_flag: Mapping[str, Any] | None = None
    version: Any = None


@dataclass(frozen=True)
class StateFacts:
    stable: str | None
    candidate: str | None
    candidate_cohorts: tuple[str, ...]
    served: Mapping[str, str]
    kill_engaged: bool
    kill_by: str | None
    kill_at: str | None
    kill_reason: str | None
    revision: int
    off_reason: str | None = None
    kill_pending: bool = False


@dataclass(frozen=True)
class ChainFacts:
    ok: bool
    status: str
    checked: int
    first_bad_seq: int | None
    reason: str | None
    ahead: int
    head_seq: int | None
    head_hash: str | None
    problems: tuple[str, ...] = ()
    actions: tuple[ChainAction, ...] = ()

    @property
    def verified(self) -> bool:
        return self.ok and not self.problems


@dataclass(frozen=True)
class ReleaseFacts:
    """A stored release, re-verified against its digest: what model it names, what it sanctions."""

    digest: str
    adapter: str | None = None
    model_id: str | None = None
    endpoint_kind: str | None = None
    sanctioned_models: tuple[str, ...] = ()
    error: str | None = None


@dataclass(frozen=True)
class Unredacted:
    """A logged prompt or output in which the bundle's detectors still find a value."""

    request_id: str
    eval: bool
    release: str | None
    field: str
    detectors: tuple[str, ...]


@dataclass(frozen=True)
class RequestFacts:
    directory: str
    files: tuple[str, ...]
    decisions: tuple[Mapping[str, Any], ...] = ()  # queries/decisions.sql
    models: tuple[Mapping[str, Any], ...] = ()  # queries/models.sql
    near_misses: tuple[Mapping[str, Any], ...] = ()  # queries/near_misses.sql
    refusals: tuple[Mapping[str, Any], ...] = ()  # queries/refusals.sql
    scanned: int = 0  # logged prompts/outputs re-scanned
    unredacted: tuple[Unredacted, ...] = ()

    def count(self, *, is_eval: bool | None = None, decision: str | None = None, key: str = "records") -> int:
        return sum(
            int(r[key])
            for r in self.decisions
            if (is_eval is None or bool(r["is_eval"]) is is_eval) and (decision is None or r["decision"] == decision)
        )


@dataclass(frozen=True)
class Evidence:
    """Everything the report judges. ``None`` means the evidence is missing; ``*_error`` that it
    could not be read or did not verify."""

    workflow_id: str
    generated_at: str
    workflow: Any = None  # controller.bundle.models.Workflow; None: workflow.yaml unreadable
    bundle_path: str | None = None
    bundle_problems: tuple[str, ...] = ()
    documents: Mapping[str, bool] = field(default_factory=dict)  # referenced runbook -> exists
    flags: FlagFacts | None = None
    state: StateFacts | None = None
    state_error: str | None = None
    chain: ChainFacts | None = None
    chain_error: str | None = None
    evals: tuple[EvalRun, ...] | None = None
    evals_error: str | None = None
    releases: Mapping[str, ReleaseFacts] = field(default_factory=dict)
    requests: RequestFacts | None = None
    requests_error: str | None = None
    provisioned: Provisioned | None = None


@dataclass(frozen=True)
class ReviewEvidence:
    """Everything a weekly review judges (``controller.evidence.review.review_of``)."""

    workflow: str
    window: Window
    generated_at: dt.datetime
    rows: Mapping[str, Sequence[Mapping[str, Any]]]  # request-log query name -> rows
    sources: Mapping[str, str] = field(default_factory=dict)  # what was read, for the reader
    bundle_problems: tuple[str, ...] = ()
    exceptions: tuple[Any, ...] = ()  # the bundle's personal-account exceptions
    evals: tuple[EvalRun, ...] = ()
    evals_error: str | None = None
    chain: ChainFacts | None = None
    chain_error: str | None = None
    kill_switch: Mapping[str, Any] | None = None  # the state's kill switch; None: state unreadable
    state_error: str | None = None
