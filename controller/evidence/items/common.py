"""What the item checks share: wording helpers and the checks that gate on missing evidence.

Each ``with_*`` helper answers the question "is there evidence to judge at all?" once: it
returns the UNKNOWN (missing) or FAIL (unreadable) check, or the checks ``judge`` makes of the
evidence. An item check is a function ``Evidence -> list[Check]`` (``ItemCheck``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

from controller.core.timefmt import parse_time
from controller.evidence.facts import ChainAction, EvalRun, Evidence, ReleaseFacts, RequestFacts
from controller.evidence.model import BUNDLE, CHAIN, EVALS, REQUESTS, STATE, Check, failed, passed, unknown

__all__ = [
    "RETENTION_CLASSES",
    "ItemCheck",
    "age",
    "bundle_valid",
    "duration",
    "eval_of",
    "model_text",
    "plural",
    "release_sanctioned",
    "served_digests",
    "short",
    "with_chain_actions",
    "with_evals",
    "with_requests",
]

ItemCheck = Callable[[Evidence], Sequence[Check]]

# The retention postures a bundle names (``logging.retention``), in the order the report shows them.
RETENTION_CLASSES = ("audit_log", "raw_invocation_logs", "control_plane")


def short(digest: str | None) -> str:
    return "off" if not digest or digest == "off" else digest[:12]


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def duration(td: dt.timedelta) -> str:
    """As the bundle writes durations: 7d, 24h, 30m."""
    seconds = int(td.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def age(now: str, then: str) -> dt.timedelta | None:
    """``now - then`` for two stored timestamps; None when either has no time zone or is not one."""
    try:
        return parse_time(now) - parse_time(then)
    except ValueError:
        return None


def bundle_valid(ev: Evidence) -> list[Check]:
    if ev.workflow is None:
        problems = "; ".join(ev.bundle_problems) or "not found"
        return [unknown(BUNDLE, f"the bundle could not be read: {problems}")]
    if ev.bundle_problems:
        return [failed(BUNDLE, f"the bundle does not validate: {'; '.join(ev.bundle_problems)}")]
    return [passed(BUNDLE, f"the bundle {ev.bundle_path or ev.workflow_id} validates (`rollout validate`).")]


def release_sanctioned(rel: ReleaseFacts | None, digest: str) -> Check | None:
    """None when the release names a model its own bundle sanctions; else the failing check."""
    if rel is None or rel.error:
        why = rel.error if rel is not None else "it was not read"
        return failed(STATE, f"release {short(digest)} cannot be verified: {why}")
    if rel.adapter == "local":
        return None
    if rel.model_id not in rel.sanctioned_models or rel.adapter != rel.endpoint_kind:
        return failed(
            STATE,
            f"release {short(digest)} names model {rel.model_id} ({rel.adapter}), not one its bundle "
            f"sanctions ({', '.join(rel.sanctioned_models)} via {rel.endpoint_kind}).",
        )
    return None


def model_text(rel: ReleaseFacts, workflow: Any = None) -> str:
    if rel.adapter == "local":
        return f"{short(rel.digest)}: {rel.model_id} (the offline local baseline; no vendor is called)"
    text = f"{short(rel.digest)}: {rel.model_id} via {rel.adapter}"
    if workflow is not None and rel.model_id not in {m.id for m in workflow.surface.models}:
        text += " (sanctioned by that release's bundle, not by the current one: a change since)"
    return text


def served_digests(ev: Evidence) -> list[str]:
    """The releases some cohort is served now, sorted (``off`` is none)."""
    if ev.state is None:
        return []
    return sorted({d for d in ev.state.served.values() if d and d != "off"})


def eval_of(ev: Evidence, digest: str) -> list[EvalRun]:
    """The stored evals of release ``digest``, oldest first."""
    return sorted((r for r in ev.evals or () if r.digest == digest), key=lambda r: (r.finished_at, r.key))


def with_requests(ev: Evidence, judge: Callable[[RequestFacts], list[Check]]) -> list[Check]:
    """``judge(requests)``, or why the request log is no evidence (unreadable, no user request)."""
    if ev.requests_error:
        return [failed(REQUESTS, f"the request log cannot be read: {ev.requests_error}")]
    if ev.requests is None or ev.requests.count(is_eval=False) == 0:
        where = ev.requests.directory if ev.requests is not None else "the state directory"
        return [unknown(REQUESTS, f"no user request is recorded in {where}.")]
    return judge(ev.requests)


def with_evals(ev: Evidence, judge: Callable[[tuple[EvalRun, ...]], list[Check]]) -> list[Check]:
    """``judge(eval runs)``, or why the stored evals are no evidence (they do not verify, none)."""
    if ev.evals_error:
        return [failed(EVALS, f"stored eval results do not verify: {ev.evals_error}")]
    if not ev.evals:
        return [unknown(EVALS, "no eval result is stored (`rollout eval run` has not run).")]
    return judge(ev.evals)


def with_chain_actions(ev: Evidence, judge: Callable[[list[ChainAction]], list[Check]]) -> list[Check]:
    """``judge(the chain's records)``, or why they are no evidence (unreadable, not verified)."""
    if ev.chain_error or ev.chain is None:
        return [unknown(CHAIN, "the control-plane audit chain could not be read.")]
    if not ev.chain.verified:
        return [unknown(CHAIN, "the audit chain does not verify, so its records are not evidence here (see item 3).")]
    return judge(list(ev.chain.actions))
