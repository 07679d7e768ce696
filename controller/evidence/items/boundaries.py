"""Item 2, data boundaries published and enforced: the bundle's boundaries, the served
releases' policy-compliance evals, what the request log shows was blocked, redacted or let
through (and a re-scan of what was logged), and the provisioned raw-log bucket and redaction
function."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from controller.core.provisioning import LogClass, bucket_rules
from controller.evidence.facts import EvalRun, Evidence, RequestFacts
from controller.evidence.items.common import (
    ItemCheck,
    bundle_valid,
    eval_of,
    plural,
    served_digests,
    short,
    with_evals,
    with_requests,
)
from controller.evidence.items.provisioned import bucket_check, redaction_function_check
from controller.evidence.model import BUNDLE, EVALS, REQUESTS, STACK, Check, failed, passed, unknown

__all__ = ["CHECKS"]


def published(ev: Evidence) -> list[Check]:
    wf = ev.workflow
    if wf is None:
        return []
    parts = [f"{f.category.value} ({f.action.value}: {', '.join(f.detectors)})" for f in wf.data_boundaries.forbidden]
    return [
        passed(
            BUNDLE,
            "published (`rollout policy` renders it from the same bundle): forbidden "
            f"{'; '.join(parts)}; {plural(len(wf.data_boundaries.patterns), 'bundle pattern')}; "
            f"redaction ({wf.logging.redaction.strategy}) applies to {', '.join(wf.logging.redaction.applies_to)}.",
        )
    ]


def _policy_compliance(ev: Evidence, _runs: tuple[EvalRun, ...]) -> list[Check]:
    served = served_digests(ev)
    if not served:
        return [unknown(EVALS, "no release is served, so no served release's policy-compliance eval is shown.")]
    checks = []
    for digest in served:
        runs = eval_of(ev, digest)
        if not runs:
            checks.append(unknown(EVALS, f"served release {short(digest)} has no stored eval."))
            continue
        last = runs[-1]
        rate = last.rates.get("policy-compliance")
        if rate is None or rate < 1.0:
            checks.append(
                failed(
                    EVALS,
                    f"the latest eval of served release {short(digest)} ({last.content_hash[:12]}) "
                    f"scored policy-compliance {rate if rate is not None else 'not at all'}, not 1.0.",
                )
            )
        else:
            checks.append(
                passed(
                    EVALS,
                    f"the latest eval of served release {short(digest)} "
                    f"({last.content_hash[:12]}, {last.finished_at}) scored policy-compliance 1.0.",
                )
            )
    return checks


def enforced_in_evals(ev: Evidence) -> list[Check]:
    """Every served release's latest eval scored policy-compliance 1.0."""
    return with_evals(ev, lambda runs: _policy_compliance(ev, runs))


def _requests_by_category(rows: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["category"]] = counts.get(r["category"], 0) + int(r["requests"])
    return counts


def _counted(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{c} x{n}" for c, n in sorted(counts.items()))


def _blocked_questions(req: RequestFacts) -> Check:
    """No question holding a ``block`` category was answered."""
    prompt = [r for r in req.near_misses if r["location"] == "prompt"]
    through = _requests_by_category(r for r in prompt if r["action"] == "block" and r["decision"] != "blocked")
    if through:
        return failed(
            REQUESTS, f"user requests answered although their question held a `block` category: {_counted(through)}."
        )
    blocked = _counted(_requests_by_category(r for r in prompt if r["decision"] == "blocked")) or "none"
    redacted = _counted(_requests_by_category(r for r in prompt if r["decision"] != "blocked")) or "none"
    return passed(
        REQUESTS,
        f"no user request with a `block` category was answered; blocked: {blocked}; "
        f"answered with values redacted: {redacted}.",
    )


def _logged_text_rescan(ev: Evidence, req: RequestFacts) -> Check:
    """What the trail holds was redacted: the bundle's detectors find nothing in logged text.

    Evals of a release that was never promoted are noted, not failed: the gate refused it."""
    promoted = {a.release for a in (ev.chain.actions if ev.chain else ()) if a.action == "promote"}
    user = [u for u in req.unredacted if not u.eval]
    served_evals = [u for u in req.unredacted if u.eval and u.release in promoted]
    other = [u for u in req.unredacted if u.eval and u.release not in promoted]
    if user or served_evals:
        found = user + served_evals
        kinds = sorted({d for u in found for d in u.detectors})
        return failed(
            REQUESTS,
            f"{plural(len(found), 'logged prompt/output')} still hold values the bundle's "
            f"detectors find ({', '.join(kinds)}): written to the audit trail unredacted.",
        )
    note = ""
    if other:
        rels = sorted({short(u.release) for u in other})
        note = (
            f" ({plural(len(other), 'eval record')} of never-promoted release(s) {', '.join(rels)} hold "
            "values the current detectors find: evals of a release with weaker boundaries, which "
            "the gate refused.)"
        )
    return passed(
        REQUESTS,
        f"re-scanning {plural(req.scanned, 'logged prompt/output')} with the bundle's "
        f"detectors found no unredacted value in user traffic.{note}",
    )


def enforced_in_requests(ev: Evidence) -> list[Check]:
    return with_requests(ev, lambda req: [_blocked_questions(req), _logged_text_rescan(ev, req)])


def enforced_as_provisioned(ev: Evidence) -> list[Check]:
    """Invocation logs are redacted and their raw copies short-lived."""
    prov, wf = ev.provisioned, ev.workflow
    if prov is None:
        return [
            unknown(
                STACK,
                "no `pulumi stack export` was given, so the raw invocation-log bucket and "
                "the redaction function are not shown.",
            )
        ]
    if wf is None:
        return []
    raw = bucket_rules(wf)[LogClass.RAW_INVOCATION_LOGS]
    return [bucket_check(prov, raw, wf.id), redaction_function_check(prov)]


CHECKS: tuple[ItemCheck, ...] = (
    bundle_valid,
    published,
    enforced_in_evals,
    enforced_in_requests,
    enforced_as_provisioned,
)
