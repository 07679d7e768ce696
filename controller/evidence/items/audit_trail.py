"""Item 3, an audit trail for prompts, context and outputs: the bundle's logging posture, the
request records' completeness, the control-plane audit chain (re-verified) and the provisioned
audit-log and control-plane buckets."""

from __future__ import annotations

from typing import Any

from controller.core.provisioning import LogClass, bucket_rules
from controller.evidence.facts import Evidence, RequestFacts
from controller.evidence.items.common import RETENTION_CLASSES, ItemCheck, bundle_valid, plural, with_requests
from controller.evidence.items.provisioned import bucket_check
from controller.evidence.model import BUNDLE, CHAIN, REQUESTS, STACK, Check, failed, passed, unknown

__all__ = ["CHECKS", "chain_verified"]

# What every answered record must name for the trail to be complete (queries/decisions.sql).
_RECORD_GAPS = (
    "without_subject",
    "without_release",
    "without_prompt_template",
    "without_context_sources",
    "without_model",
    "without_output",
)


def _posture_text(posture: Any) -> str:
    lock = f" {posture.object_lock_mode}" if posture.object_lock_mode else ""
    return f"{plural(posture.days, 'day')}{lock} ({posture.source})"


def logging_posture(ev: Evidence) -> list[Check]:
    wf = ev.workflow
    if wf is None:
        return []
    retention = wf.logging.retention
    postures = "; ".join(
        f"{which.replace('_', ' ')}: {getattr(retention, which)} = {_posture_text(retention.posture(which))}"
        for which in RETENTION_CLASSES
    )
    return [
        passed(
            BUNDLE,
            f"every request logs {', '.join(wf.logging.required_fields)}, redacted "
            f"({', '.join(wf.logging.redaction.applies_to)}); retention: {postures}.",
        )
    ]


def _complete_records(req: RequestFacts) -> list[Check]:
    answered = [r for r in req.decisions if r["decision"] == "answered"]
    gaps = {k: sum(int(r[k]) for r in answered) for k in _RECORD_GAPS}
    gaps = {k: v for k, v in gaps.items() if v}
    if gaps:
        names = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in gaps.items())
        return [failed(REQUESTS, f"answered records lack what the trail needs: {names}.")]
    by = ", ".join(f"{r['decision']} {r['records']}" for r in req.decisions if not r["is_eval"])
    return [
        passed(
            REQUESTS,
            f"{plural(req.count(), 'record')} in {plural(len(req.files), 'file')}; user "
            f"requests by decision: {by}; {req.count(is_eval=True)} eval records; every answered record "
            "names its prompt template (id, version, sha256), context sources, model "
            "and redacted output.",
        )
    ]


def request_records(ev: Evidence) -> list[Check]:
    return with_requests(ev, _complete_records)


def chain_verified(ev: Evidence) -> list[Check]:
    """``rollout audit verify`` over the control-plane chain: empty is UNKNOWN, broken is FAIL."""
    if ev.chain_error:
        return [failed(CHAIN, f"the control-plane audit chain cannot be read: {ev.chain_error}")]
    chain = ev.chain
    if chain is None or (chain.ok and chain.checked == 0 and not chain.problems):
        return [unknown(CHAIN, "the control-plane audit chain is empty: no rollout action is recorded yet.")]
    if not chain.ok:
        return [failed(CHAIN, f"`rollout audit verify` fails: BROKEN at seq {chain.first_bad_seq}: {chain.reason}.")]
    if chain.problems:
        return [failed(CHAIN, f"the chain verifies but: {'; '.join(chain.problems)}.")]
    ahead = (
        f"; {chain.ahead} record(s) beyond the state's head (a command the next one completes)" if chain.ahead else ""
    )
    return [
        passed(
            CHAIN,
            f"`rollout audit verify`: {chain.checked} records verified, head seq {chain.head_seq} "
            f"({(chain.head_hash or '')[:12]}){ahead}.",
        )
    ]


def provisioned_log_buckets(ev: Evidence) -> list[Check]:
    prov, wf = ev.provisioned, ev.workflow
    if prov is None:
        return [
            unknown(
                STACK,
                "no `pulumi stack export` was given, so the audit-log and control-plane buckets' "
                "retention, Object Lock and encryption are not shown.",
            )
        ]
    if wf is None:
        return []
    rules = bucket_rules(wf)
    return [bucket_check(prov, rules[c], wf.id) for c in (LogClass.AUDIT_LOG, LogClass.CONTROL_PLANE)]


CHECKS: tuple[ItemCheck, ...] = (
    bundle_valid,
    logging_posture,
    request_records,
    chain_verified,
    provisioned_log_buckets,
)
