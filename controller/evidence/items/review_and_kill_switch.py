"""Item 4, a documented review step and a kill switch: the bundle's review rules and the
documents it references, the kill switch in the live flag document, and the approvals every
recorded promotion had (from the verified audit chain)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from controller.evidence.facts import ChainAction, Evidence
from controller.evidence.items.common import ItemCheck, bundle_valid, plural, with_chain_actions
from controller.evidence.model import BUNDLE, CHAIN, FLAGS, Check, failed, passed, unknown

__all__ = ["CHECKS", "referenced_documents"]


def referenced_documents(workflow: Any) -> dict[str, str]:
    """The documents the bundle references for its review step and kill switch: name -> path."""
    return {
        "review checklist": workflow.review.checklist,
        "accountability runbook": workflow.review.accountability_runbook,
        "kill-switch runbook": workflow.kill_switch.runbook,
        "fallback runbook": workflow.fallback.runbook,
        "weekly review runbook": workflow.ongoing.runbook,
    }


def review_rules(ev: Evidence) -> list[Check]:
    wf = ev.workflow
    if wf is None:
        return []
    kinds = ", ".join(h.kind for h in wf.review.human_verification)
    checks = [passed(BUNDLE, f"human verification rules for {kinds}; accountability: {wf.review.accountability}")]
    docs = referenced_documents(wf)
    absent = [f"{name} {path}" for name, path in docs.items() if not ev.documents.get(path, False)]
    if absent:
        checks.append(failed(BUNDLE, f"documents the bundle references are missing: {', '.join(absent)}."))
    else:
        checks.append(
            passed(
                BUNDLE,
                f"documented: {', '.join(f'{n} ({p})' for n, p in docs.items())}; "
                f"who may pull the kill switch: {wf.kill_switch.who_may_pull}",
            )
        )
    return checks


def live_kill_switch(ev: Evidence) -> list[Check]:
    """The kill switch as the gateway reads it: a boolean flag in the live flag document."""
    flags, wf = ev.flags, ev.workflow
    if flags is None or (flags.error is None and flags.sha256 is None):
        where = flags.path if flags is not None else "the state directory"
        return [
            unknown(
                FLAGS,
                f"there is no live flag document at {where}: the gateway fails closed, but no kill switch is shown.",
            )
        ]
    if flags.error:
        return [failed(FLAGS, f"the live flag document {flags.path} cannot be read: {flags.error}.")]
    if wf is None:
        return []
    key = wf.rollout.kill_switch_flag
    kill = flags.kill_flag
    variants = (kill or {}).get("variants") or {}
    if not kill or set(variants.values()) != {True, False}:
        return [failed(FLAGS, f"the live flag document {flags.path} has no boolean kill-switch flag {key}.")]
    engaged = variants.get(kill.get("defaultVariant")) is True
    state = "ENGAGED: every request gets the fallback" if engaged else "released"
    by = ""
    if ev.state is not None and ev.state.kill_engaged:
        by = f" (by {ev.state.kill_by} at {ev.state.kill_at}: {ev.state.kill_reason})"
    return [
        passed(
            FLAGS,
            f"kill switch {key} is in the live flag document {flags.path} "
            f"(sha256 {flags.sha256[:12] if flags.sha256 else '?'}), now {state}{by}; "
            "`rollout kill --reason ...` engages it without any gate.",
        )
    ]


def _approvals(workflow: Any, actions: list[ChainAction]) -> list[Check]:
    promotions = [a for a in actions if a.action == "promote"]
    short = []
    for a in promotions:
        evidence = a.evidence if isinstance(a.evidence, Mapping) else {}
        cohort = str(evidence.get("cohort", ""))
        approvers = [p for p in evidence.get("approved_by") or [] if p != a.operator]
        need = next((c.approvals for c in workflow.rollout.cohorts if c.name == cohort), None)
        if need is None or len(approvers) < need:
            short.append(f"seq {a.seq} ({cohort or '?'}: {len(approvers)} of {need if need is not None else '?'})")
    kills = [a for a in actions if a.action in ("kill", "release-kill")]
    drills = (
        f"; kill switch used {plural(len(kills), 'time')} (seq {', '.join(str(a.seq) for a in kills)})" if kills else ""
    )
    if short:
        return [failed(CHAIN, f"promotions without the approvals the bundle requires: {', '.join(short)}.")]
    if not promotions:
        return [passed(CHAIN, f"no promotion recorded yet, so no approval was due{drills}.")]
    cohort = workflow.rollout.cohort
    return [
        passed(
            CHAIN,
            f"{plural(len(promotions), 'promotion')}, each with the approvals its cohort "
            f"requires (internal {cohort('internal').approvals}, limited "
            f"{cohort('limited').approvals}, general {cohort('general').approvals}){drills}.",
        )
    ]


def promotion_approvals(ev: Evidence) -> list[Check]:
    """The review step as the chain shows it: every promotion had the approvals its cohort requires."""
    return with_chain_actions(ev, lambda actions: _approvals(ev.workflow, actions) if ev.workflow is not None else [])


CHECKS: tuple[ItemCheck, ...] = (
    bundle_valid,
    review_rules,
    live_kill_switch,
    promotion_approvals,
)
