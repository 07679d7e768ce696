"""Item 5, a minimal eval harness used before changes: the bundle's golden set and thresholds,
the verified eval results (and the served releases' latest), every recorded promotion backed by
a passing eval of exactly that release, and the provisioned schedule that rolls back a release
whose re-evaluation fails."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from controller.core.verdict import NO_FRESH_EVIDENCE, Verdict
from controller.evidence.facts import ChainAction, EvalRun, Evidence
from controller.evidence.items.common import (
    ItemCheck,
    age,
    bundle_valid,
    duration,
    eval_of,
    plural,
    served_digests,
    short,
    with_chain_actions,
    with_evals,
)
from controller.evidence.items.provisioned import reconcile_schedule_check
from controller.evidence.model import BUNDLE, CHAIN, EVALS, Check, failed, passed, unknown

__all__ = ["CHECKS"]


def eval_rules(ev: Evidence) -> list[Check]:
    wf = ev.workflow
    if wf is None:
        return []
    thresholds = ", ".join(f"{k.value} {v}" for k, v in wf.eval.thresholds.items())
    return [
        passed(
            BUNDLE,
            f"golden set {wf.eval.golden_set}; thresholds {thresholds}; a result counts for "
            f"{duration(wf.eval.max_result_age)}; the gate promotes only a release with a passing, "
            "fresh eval of exactly that release.",
        )
    ]


def _served_release_eval(ev: Evidence, digest: str) -> Check:
    mine = eval_of(ev, digest)
    if not mine:
        return unknown(EVALS, f"served release {short(digest)} has no stored eval.")
    last = mine[-1]
    if last.verdict == Verdict.INCONCLUSIVE:
        return unknown(
            EVALS,
            f"served release {short(digest)}: {NO_FRESH_EVIDENCE}: its latest eval ({last.content_hash[:12]}, "
            f"{last.finished_at}) was INCONCLUSIVE (the model or a dependency was unavailable); "
            "re-run `rollout eval run`.",
        )
    if last.verdict != Verdict.PASS:
        return failed(
            EVALS,
            f"served release {short(digest)}: its latest eval ({last.content_hash[:12]}, {last.finished_at}) "
            "FAILED and it is still served (`rollout reconcile` rolls it back).",
        )
    stale = ""
    if ev.workflow is not None:
        max_age = ev.workflow.eval.max_result_age
        elapsed = age(ev.generated_at, last.finished_at)
        if elapsed is not None and elapsed > max_age:
            stale = f"; it is older than {duration(max_age)}: re-run `rollout eval run`"
    return passed(
        EVALS,
        f"served release {short(digest)}: latest eval PASS ({last.content_hash[:12]}, {last.finished_at}){stale}.",
    )


def _stored_results(ev: Evidence, runs: tuple[EvalRun, ...]) -> list[Check]:
    releases = sorted({r.digest for r in runs})
    passes = sum(1 for r in runs if r.verdict == Verdict.PASS)
    inconclusive = sum(1 for r in runs if r.verdict == Verdict.INCONCLUSIVE)
    summary = passed(
        EVALS,
        f"{plural(len(runs), 'verified eval result')} for {plural(len(releases), 'release')} "
        f"({passes} PASS, {len(runs) - passes - inconclusive} FAIL"
        + (f", {inconclusive} INCONCLUSIVE" if inconclusive else "")
        + "), each stored under its release digest with its content hash.",
    )
    return [summary, *(_served_release_eval(ev, d) for d in served_digests(ev))]


def stored_results(ev: Evidence) -> list[Check]:
    return with_evals(ev, lambda runs: _stored_results(ev, runs))


def _unbacked(a: ChainAction, runs_by_hash: Mapping[str, EvalRun]) -> str | None:
    """Why promotion ``a`` is not backed by a passing eval of the promoted release, or None."""
    ref = (a.evidence or {}).get("eval") if isinstance(a.evidence, Mapping) else None
    run = runs_by_hash.get(str((ref or {}).get("content_hash")))
    if not isinstance(ref, Mapping) or ref.get("verdict") != Verdict.PASS:
        return f"seq {a.seq} names no passing eval"
    if run is None:
        return f"seq {a.seq} names eval {str(ref.get('content_hash'))[:12]}, which is not among the stored results"
    if run.digest != a.release or run.verdict != Verdict.PASS:
        return (
            f"seq {a.seq} promoted {short(a.release)} on eval {run.content_hash[:12]} of "
            f"{short(run.digest)} ({run.verdict})"
        )
    elapsed = age(a.time, run.finished_at)
    if elapsed is None:
        return f"seq {a.seq} has a time ({a.time}) that cannot be compared with its eval's ({run.finished_at})"
    if elapsed < dt.timedelta(0):
        return f"seq {a.seq} happened before its eval finished ({run.finished_at})"
    return None


def _promotions_backed(ev: Evidence, actions: list[ChainAction]) -> list[Check]:
    promotions = [a for a in actions if a.action == "promote"]
    if not promotions:
        return [unknown(CHAIN, "no promotion is recorded, so the eval has not yet been shown to gate a change.")]
    runs_by_hash = {r.content_hash: r for r in ev.evals or ()}
    bad = [why for a in promotions if (why := _unbacked(a, runs_by_hash)) is not None]
    if bad:
        return [failed(CHAIN, f"promotions not backed by a passing eval of the promoted release: {'; '.join(bad)}.")]
    rollbacks = [a for a in actions if a.action == "auto-rollback"]
    caught = f"; {plural(len(rollbacks), 'automatic rollback')} after a failing eval" if rollbacks else ""
    return [
        passed(
            CHAIN,
            f"each of {plural(len(promotions), 'promotion')} names a stored, passing eval "
            f"of exactly the promoted release, finished before it{caught}.",
        )
    ]


def promotions_gated(ev: Evidence) -> list[Check]:
    return with_chain_actions(ev, lambda actions: _promotions_backed(ev, actions))


def reconcile_schedule(ev: Evidence) -> list[Check]:
    """Supplementary: the schedule that acts on a failing re-evaluation (only with a stack export)."""
    return [] if ev.provisioned is None else [reconcile_schedule_check(ev.provisioned)]


CHECKS: tuple[ItemCheck, ...] = (
    bundle_valid,
    eval_rules,
    stored_results,
    promotions_gated,
    reconcile_schedule,
)
