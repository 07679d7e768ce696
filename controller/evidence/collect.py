"""The evidence collector: the only I/O of the audit report and the weekly review.

``collect_evidence`` gathers what ``rollout audit report`` judges and ``collect_review`` what
``rollout review`` judges, from one workflow's ``RolloutService`` (its store holds the state, the
audit chain, releases and eval results), the live flag document, the request log and, for the
report, a ``pulumi stack export`` file. Both read the same sources through the same readers
(``read_state``, ``read_chain``, ``read_evals``), so the two never disagree about what verifies.
Nothing is written anywhere. A source that cannot be read becomes an ``error`` in the evidence,
never an exception: deciding what that means is the pure code's job. Only bad user input (a
``--stack-export`` that is not one, an unreadable request log) raises ``InvalidInput``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from controller.errors import InvalidInput, RolloutError
from controller.evidence.facts import (
    ChainAction,
    ChainFacts,
    EvalRun,
    Evidence,
    FlagFacts,
    ReleaseFacts,
    RequestFacts,
    ReviewEvidence,
    StateFacts,
    Unredacted,
)
from controller.evidence.items.review_and_kill_switch import referenced_documents
from controller.evidence.report import jsonable
from controller.evidence.request_log import REPORT_QUERIES, REVIEW_QUERIES, RequestLog, Window, detector_categories
from controller.evidence.stack_export import Provisioned, read_stack_export
from controller.ports import Store

if TYPE_CHECKING:
    from controller.service.rollout import Loaded, RolloutService

__all__ = [
    "collect_evidence",
    "collect_review",
    "load_stack_export",
    "read_chain",
    "read_evals",
    "read_flags",
    "read_state",
]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_stack_export(path: Path) -> Provisioned:
    """Read and parse a ``pulumi stack export`` file; ``InvalidInput`` (exit 2) if it is not one."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InvalidInput(f"--stack-export {path}: cannot read it ({exc.strerror}).") from None
    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise InvalidInput(f"--stack-export {path}: not JSON ({exc}).") from None
    return read_stack_export(doc, source=str(path), sha256=_sha256(data))


# --- readers shared by the report and the review ------------------------------------------------


def read_state(service: RolloutService) -> tuple[Loaded | None, str | None]:
    """The stored rollout state as ``service.load(repair=False)`` returns it, or why it cannot be read."""
    try:
        return service.load(repair=False), None
    except RolloutError as exc:
        return None, str(exc)


def read_chain(service: RolloutService) -> tuple[ChainFacts | None, str | None]:
    """The control-plane audit chain, re-verified, with its records; or why it cannot be read."""
    from controller.core.audit import AuditRecord

    try:
        result, problems = service.verify()
        records = service.history()
    except RolloutError as exc:
        return None, str(exc)
    return (
        ChainFacts(
            ok=result.ok,
            status=str(result.status),
            checked=result.checked,
            first_bad_seq=result.first_bad_seq,
            reason=result.reason,
            ahead=result.ahead,
            head_seq=result.head.seq if result.head else None,
            head_hash=result.head.hash if result.head else None,
            problems=tuple(problems),
            actions=tuple(ChainAction.from_record(r) for r in records if isinstance(r, AuditRecord)),
        ),
        None,
    )


def read_evals(service: RolloutService) -> tuple[tuple[EvalRun, ...] | None, str | None]:
    """Every stored eval result, each verified against its content hash and, when the service
    has the evaluator's key (``signer``), its signature; or why they do not verify."""
    from controller.evals.results import list_all_results

    try:
        results = list_all_results(service.store, verifier=service.signer)
        return tuple(EvalRun.from_result(r) for r in results), None
    except RolloutError as exc:
        return None, str(exc)


def read_flags(path: Path, workflow: Any) -> FlagFacts:
    """The live flag document: its hash, the kill-switch and release flags, or why it cannot be read."""
    if not path.exists():
        return FlagFacts(str(path))
    try:
        data = path.read_bytes()
        doc = json.loads(data)
    except (OSError, ValueError) as exc:
        return FlagFacts(str(path), error=str(exc))
    flags = doc.get("flags") if isinstance(doc, Mapping) else None
    if not isinstance(flags, Mapping):
        return FlagFacts(str(path), _sha256(data), error="no `flags` object")
    kill = flags.get(workflow.rollout.kill_switch_flag) if workflow is not None else None
    release = flags.get(workflow.rollout.release_flag) if workflow is not None else None
    meta = doc.get("metadata") if isinstance(doc.get("metadata"), Mapping) else {}
    return FlagFacts(str(path), _sha256(data), None, kill, release, meta.get("version"))


# --- the audit report's evidence ------------------------------------------------------------------


def _documents(workflow: Any, bundle_path: Path | None) -> dict[str, bool]:
    """Each document the bundle references -> whether it exists beside the bundle."""
    if workflow is None or bundle_path is None:
        return {}
    return {rel: (bundle_path / rel).is_file() for rel in referenced_documents(workflow).values()}


def _state_facts(service: RolloutService, loaded: Loaded | None) -> StateFacts | None:
    """The state as the report shows it; None when nothing was ever stored."""
    if loaded is None:
        return None
    from controller.core.gates import served

    s = loaded.state
    if loaded.version is None and not s.revision:
        return None
    return StateFacts(
        stable=s.stable,
        candidate=s.candidate.release if s.candidate else None,
        candidate_cohorts=s.candidate.cohorts if s.candidate else (),
        served=served(s),
        kill_engaged=s.kill.engaged,
        kill_by=s.kill.by,
        kill_at=s.kill.at,
        kill_reason=s.kill.reason,
        revision=s.revision,
        off_reason=s.off_reason,
        kill_pending=service.kill_pending() is not None,
    )


def _release_facts(store: Store, digest: str) -> ReleaseFacts:
    from controller.core.release import load_release

    try:
        release = load_release(store, digest)
    except RolloutError as exc:
        return ReleaseFacts(digest, error=str(exc))
    model = release.model
    surface = release.workflow.surface
    return ReleaseFacts(
        digest, model.adapter, model.model_id, surface.endpoint.kind.value, tuple(m.id for m in surface.models)
    )


def _rescan(rows: Iterable[Mapping[str, Any]], workflow: Any) -> tuple[int, list[Unredacted]]:
    """Run the bundle's detectors over logged (already redacted) prompts and outputs."""
    from controller.boundaries.redactor import bundle_redactor

    redactor = bundle_redactor(workflow.data_boundaries)
    scanned, found = 0, []
    for row in rows:
        for name in ("prompt", "output"):
            text = row.get(name)
            if not text:
                continue
            scanned += 1
            findings = redactor.scan(str(text))
            if findings:
                found.append(
                    Unredacted(
                        str(row["request_id"]),
                        bool(row["is_eval"]),
                        row.get("release_digest"),
                        name,
                        tuple(sorted({f.type for f in findings})),
                    )
                )
    return scanned, found


def _request_facts(requests_dir: Path, workflow: Any) -> tuple[RequestFacts | None, str | None]:
    """The whole request log, summarised by the report's queries and re-scanned for values."""
    detectors = detector_categories(workflow) if workflow is not None else []
    try:
        with RequestLog(requests_dir, detectors) as log:
            everything = Window.everything()
            rows = {name: tuple(jsonable(log.query(name, everything))) for name in REPORT_QUERIES}
            scanned, unredacted = _rescan(log.query("texts", everything), workflow) if workflow is not None else (0, [])
            return (
                RequestFacts(
                    directory=str(requests_dir),
                    files=tuple(p.name for p in log.files),
                    decisions=rows["decisions"],
                    models=rows["models"],
                    near_misses=rows["near_misses"],
                    refusals=rows["refusals"],
                    scanned=scanned,
                    unredacted=tuple(unredacted),
                ),
                None,
            )
    except RolloutError as exc:
        return None, str(exc)


def collect_evidence(
    *,
    workflow_id: str,
    workflow: Any,
    bundle_path: Path | None,
    bundle_problems: Sequence[str],
    service: RolloutService,
    flags_path: Path,
    requests_dir: Path,
    stack_export: Path | None,
    now: dt.datetime,
) -> Evidence:
    """Gather the evidence for ``controller.evidence.report.build_report``."""
    store = service.store
    loaded, state_error = read_state(service)
    state = _state_facts(service, loaded)
    chain, chain_error = read_chain(service)
    evals, evals_error = read_evals(service)
    requests, requests_error = _request_facts(requests_dir, workflow)

    digests = set(state.served.values()) if state else set()
    digests |= {str(r["release_digest"]) for r in (requests.models if requests else ()) if r.get("release_digest")}
    releases = {d: _release_facts(store, d) for d in sorted(digests) if d and d != "off"}

    return Evidence(
        workflow_id=workflow_id,
        generated_at=now.astimezone(dt.UTC).isoformat(timespec="seconds"),
        workflow=workflow,
        bundle_path=str(bundle_path) if bundle_path is not None else None,
        bundle_problems=tuple(bundle_problems),
        documents=_documents(workflow, bundle_path),
        flags=read_flags(flags_path, workflow),
        state=state,
        state_error=state_error,
        chain=chain,
        chain_error=chain_error,
        evals=evals,
        evals_error=evals_error,
        releases=releases,
        requests=requests,
        requests_error=requests_error,
        provisioned=load_stack_export(stack_export) if stack_export is not None else None,
    )


# --- the weekly review's evidence -----------------------------------------------------------------


def collect_review(
    *,
    workflow: Any,
    bundle_path: Path,
    bundle_problems: Sequence[str],
    service: RolloutService,
    requests_dir: Path,
    window: Window,
    now: dt.datetime,
) -> ReviewEvidence:
    """Gather the evidence for ``controller.evidence.review.review_of``: the request log over
    ``window`` (``InvalidInput`` if it cannot be read), the eval results, the chain and the state."""
    with RequestLog(requests_dir, detector_categories(workflow)) as log:
        rows = {name: log.query(name, window) for name in REVIEW_QUERIES}
        files = ", ".join(p.name for p in log.files) or "none"
    evals, evals_error = read_evals(service)
    chain, chain_error = read_chain(service)
    kill = state_error = None
    if chain_error is None:  # an unreadable chain means an unreadable control plane: one problem
        loaded, state_error = read_state(service)
        if loaded is not None:
            k = loaded.state.kill
            kill = {"engaged": k.engaged, "by": k.by, "at": k.at, "reason": k.reason}
    return ReviewEvidence(
        workflow=workflow.id,
        window=window,
        generated_at=now,
        rows=rows,
        sources={
            "requests": f"{requests_dir} ({files})",
            "store": service.store.describe(),
            "bundle": str(bundle_path),
        },
        bundle_problems=tuple(bundle_problems),
        exceptions=tuple(workflow.personal_accounts.exceptions),
        evals=evals or (),
        evals_error=evals_error,
        chain=chain,
        chain_error=chain_error,
        kill_switch=kill,
        state_error=state_error,
    )
