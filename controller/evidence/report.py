"""The auditor's report: the Definition of Done, item by item, each PASS, FAIL or UNKNOWN with
the evidence that decided it (``build_report(Evidence) -> Report``, pure).

Verdicts, decided once (``controller.evidence.model.combine``):

- an item is a list of checks; each check is PASS, FAIL or UNKNOWN and names its source
  (bundle, flag document, rollout state, eval results, audit chain, request log, stack export);
- an item FAILs when any check fails, else it is UNKNOWN when any check is, else it PASSes;
- evidence that is missing (no eval result, no request record, no stack export, an empty audit
  chain, no live flag document) is UNKNOWN, never PASS; evidence that does not verify (a broken
  chain, an edited eval result, an unreadable log) is FAIL;
- a provisioned value that differs from the bundle (retention days, Object Lock mode, JWT
  issuer...) is FAIL naming both values.

The other parts of the report are listed in ``controller.evidence``.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from controller.evidence.facts import Evidence
from controller.evidence.items import judge
from controller.evidence.items.common import RETENTION_CLASSES
from controller.evidence.model import Report, Status
from controller.evidence.tables import evidence_tables

__all__ = ["FAIL_ON", "build_report", "evidence_json", "jsonable", "report_exit_code"]

# ``--fail-on``: the overall verdicts that make ``rollout audit report`` exit 1.
FAIL_ON: dict[str, frozenset[Status]] = {
    "fail": frozenset({Status.FAIL}),
    "unknown": frozenset({Status.FAIL, Status.UNKNOWN}),
}


def build_report(evidence: Evidence) -> Report:
    """The Definition of Done, judged on ``evidence``. Pure."""
    return Report(
        evidence.workflow_id, evidence.generated_at, judge(evidence), evidence_json(evidence), evidence_tables(evidence)
    )


def report_exit_code(report: Report, fail_on: str | None) -> int:
    """1 when ``--fail-on`` names the report's overall verdict, else 0 (a report, not a gate)."""
    return 1 if report.status in FAIL_ON.get(fail_on or "", frozenset()) else 0


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON data (dataclasses as dicts, anything else unknown as text)."""
    return json.loads(
        json.dumps(value, default=lambda v: dataclasses.asdict(v) if dataclasses.is_dataclass(v) else str(v))
    )


def _bundle_json(ev: Evidence) -> dict[str, Any]:
    wf = ev.workflow
    bundle: dict[str, Any] = {
        "path": ev.bundle_path,
        "valid": wf is not None and not ev.bundle_problems,
        "problems": list(ev.bundle_problems),
        "documents": dict(ev.documents),
    }
    if wf is None:
        return bundle
    retention = wf.logging.retention
    bundle.update(
        sso={
            "idp": wf.sso.idp.name,
            "issuer": wf.sso.idp.issuer,
            "audience": wf.sso.idp.audience,
            "domains": wf.sso.allowed_email_domains,
            "groups": wf.sso.allowed_groups,
        },
        models=[m.id for m in wf.surface.models],
        endpoint=wf.surface.endpoint.kind.value,
        boundaries={f.category.value: f.action.value for f in wf.data_boundaries.forbidden},
        retention={
            w: {
                "posture": getattr(retention, w),
                "days": retention.posture(w).days,
                "object_lock_mode": retention.posture(w).object_lock_mode,
            }
            for w in RETENTION_CLASSES
        },
        approvals={c.name: c.approvals for c in wf.rollout.cohorts},
        exceptions=[e.model_dump(mode="json") for e in wf.personal_accounts.exceptions],
    )
    return bundle


def _chain_json(ev: Evidence) -> dict[str, Any] | None:
    if ev.chain_error:
        return {"error": ev.chain_error}
    if ev.chain is None:
        return None
    return {
        **{k: v for k, v in dataclasses.asdict(ev.chain).items() if k != "actions"},
        "actions": [a.to_dict() for a in ev.chain.actions],
    }


def evidence_json(ev: Evidence) -> dict[str, Any]:
    """The facts the report judged, by source, as JSON (the ``evidence`` of ``--format json``)."""
    return jsonable(
        {
            "bundle": _bundle_json(ev),
            "flags": ev.flags,
            "state": ev.state if ev.state_error is None else {"error": ev.state_error},
            "audit_chain": _chain_json(ev),
            "evals": {"error": ev.evals_error} if ev.evals_error else [r.to_dict() for r in ev.evals or ()],
            "releases": dict(ev.releases),
            "requests": {"error": ev.requests_error} if ev.requests_error else ev.requests,
            "provisioned": ev.provisioned,
        }
    )
