"""The eval runner: a release's golden cases through the gateway, scored, judged and stored.

What is judged is one release (a digest), never a working copy: every case goes through
``Gateway.ask(question, token, eval_of=digest)``, the same code path users hit (identity with a
real signature check, boundaries, retrieval, model, audit record, fallback), with a token the
local dev IdP mints for the case persona. ``eval_of`` pins the release, so cohort flags cannot
hide it from its own eval, and the gateway tags that request's audit record ``"eval": true``.

Unavailability is retried, then recorded, never scored as a failure: a case whose model call
raised ``ModelError`` (throttled or unavailable) or ``BackendUnavailable``, or was answered with
the gateway's fallback because the model or the release store was unavailable, is tried again
(up to ``max_attempts`` calls, exponential backoff with jitter); if it still cannot run it is
*not run* (``Observation.unavailable``) and the eval is at best INCONCLUSIVE (exit 5, stored,
never a rollback). Only a FAIL calls the rollback hook.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import datetime as dt
import getpass
import json
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import re2

from controller.bundle.models import GoldenCase
from controller.core.release import load_release
from controller.core.verdict import Verdict
from controller.errors import BackendUnavailable, InvalidInput
from controller.evals.results import EvalResult, EvidenceSeal, build_result, store_result
from controller.evals.scoring import CaseResult, Observation, score_case

__all__ = ["EXCERPT_CHARS", "RollbackHook", "TokenMinter", "run_eval"]

EXCERPT_CHARS = 300
# The gateway's fallback reasons that mean "a dependency was unavailable", not "the release
# misbehaved" (controller.gateway.handler): the model call failed, or the release store did.
UNAVAILABLE_REASONS = ("model unavailable", "release unavailable")


class TokenMinter(Protocol):
    """Mints an ID token for a persona (``controller.adapters.devidp.DevIdp`` locally)."""

    def mint(self, email: str, groups: Sequence[str], *, issuer: str, audience: str) -> str: ...


class RollbackHook(Protocol):
    """Called by ``run_eval`` after a FAIL result is stored; the rollout controller rolls back."""

    def on_failed_eval(self, digest: str, result: EvalResult) -> None: ...


class _RecordingSink:
    """Passes records to the gateway's own sink and keeps a copy per request id."""

    def __init__(self, inner: Any):
        self.inner = inner
        self.records: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def write(self, record: dict[str, Any]) -> None:
        self.inner.write(record)  # the audit trail first: a record we cannot write fails the case
        copy = json.loads(json.dumps(record, default=str))
        with self._lock:
            self.records[str(record.get("request_id"))] = copy

    def close(self) -> None:
        self.inner.close()


@dataclass(frozen=True)
class _Run:
    """One eval's fixed inputs, prepared before any case runs."""

    gateway: Any  # the gateway, with its sink wrapped by ``recorder`` when it can be
    digest: str
    release: Any
    cases: tuple[GoldenCase, ...]
    tokens: dict[str, str]
    recorder: _RecordingSink | None
    max_attempts: int
    sleep: Callable[[float], None]


def run_eval(
    gateway: Any,
    digest: str,
    *,
    minter: TokenMinter,
    store: Any = None,
    concurrency: int = 4,
    case_timeout_s: float = 120.0,
    max_attempts: int = 3,
    operator: str | None = None,
    rollback_hook: RollbackHook | None = None,
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    sleep: Callable[[float], None] = time.sleep,
    signer: EvidenceSeal | None = None,
) -> EvalResult:
    """Run release ``digest``'s golden set through ``gateway``, store the result, return it.

    The golden set and thresholds come from the release exactly as the gateway serves it
    (loaded and verified from ``gateway.store``, cached by digest); the result is stored in
    ``store`` (default: the same store). Cases run ``concurrency`` at a time; a case still
    running after ``case_timeout_s`` fails as timed out. An unavailable model or dependency is
    retried (``max_attempts`` calls in all) and then counts as not run (module docstring);
    every other failure is a failed case. ``rollback_hook.on_failed_eval`` is called after a
    FAIL result is stored, never after a PASS or an INCONCLUSIVE one.
    """
    if concurrency < 1:
        raise InvalidInput("--concurrency must be at least 1.")
    if max_attempts < 1:
        raise InvalidInput("max_attempts must be at least 1.")
    store = gateway.store if store is None else store
    started_at = clock()
    run = _prepare(gateway, digest, minter, max_attempts, sleep)
    observations = _run_cases(run, concurrency, case_timeout_s)
    result = build_result(
        manifest=run.release.manifest,
        cases=_scored(run, observations),
        thresholds={str(k): v for k, v in run.release.workflow.eval.thresholds.items()},
        started_at=started_at,
        finished_at=clock(),
        operator=_operator(operator),
        extra_environment={"concurrency": concurrency, "store": store.describe()},
    )
    store_result(store, result, signer=signer)
    if result.verdict is Verdict.FAIL and rollback_hook is not None:
        rollback_hook.on_failed_eval(digest, result)
    return result


def _prepare(
    gateway: Any, digest: str, minter: TokenMinter, max_attempts: int, sleep: Callable[[float], None]
) -> _Run:
    """The release as served, a token per case persona, and a recorder for the audit records."""
    release = _release_of(gateway, digest)
    cases = tuple(release.golden.cases)
    idp = gateway.workflow.sso.idp
    recorder: _RecordingSink | None = None
    if dataclasses.is_dataclass(gateway) and hasattr(gateway, "sink"):
        recorder = _RecordingSink(gateway.sink)
        gateway = dataclasses.replace(gateway, sink=recorder)  # shares the release cache
    tokens = {
        c.id: minter.mint(c.input.persona.email, list(c.input.persona.groups), issuer=idp.issuer, audience=idp.audience)
        for c in cases
    }
    return _Run(gateway, digest, release, cases, tokens, recorder, max_attempts, sleep)


def _attempt_case(run: _Run, case: GoldenCase) -> tuple[Observation, str]:
    """Ask one case, retrying while the model or a dependency is unavailable."""
    for attempt in range(1, run.max_attempts + 1):
        last = attempt == run.max_attempts
        t = time.perf_counter()
        try:
            response = run.gateway.ask(case.input.question, run.tokens[case.id], eval_of=run.digest)
        except Exception as exc:  # an errored case is a failed case, unless a dependency was down
            latency = (time.perf_counter() - t) * 1000
            why = f"{type(exc).__name__}: {exc}"
            if isinstance(exc, BackendUnavailable):
                if not last:
                    run.sleep(_backoff(attempt))
                    continue
                return Observation.not_run(why, latency_ms=latency, attempts=attempt), ""
            return Observation.failed(why, latency_ms=latency, attempts=attempt), ""
        latency = (time.perf_counter() - t) * 1000
        down = _unavailable(response)
        if down is not None and not last:
            run.sleep(_backoff(attempt))
            continue
        observed = _observe(response, latency, attempt, run.recorder, run.digest)
        if down is not None and observed.error is None:
            return dataclasses.replace(observed, unavailable=down), ""
        return observed, response.answer
    raise AssertionError("unreachable")  # the loop always returns on its last attempt


def _run_cases(run: _Run, concurrency: int, case_timeout_s: float) -> dict[str, tuple[Observation, str]]:
    """Every case's observation and raw answer; ``concurrency`` at a time, each bounded in time."""
    began: dict[str, float] = {}

    def one(case: GoldenCase) -> tuple[Observation, str]:
        began[case.id] = time.monotonic()
        return _attempt_case(run, case)

    observations: dict[str, tuple[Observation, str]] = {}
    pool = cf.ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="eval")
    timed_out = False
    try:
        pending = {pool.submit(one, c): c for c in run.cases}
        while pending:
            done, _ = cf.wait(pending, timeout=0.05, return_when=cf.FIRST_COMPLETED)
            for fut in done:
                case = pending.pop(fut)
                observations[case.id] = fut.result()
            now = time.monotonic()
            for fut, case in list(pending.items()):
                start = began.get(case.id)
                if start is not None and now - start > case_timeout_s and not fut.done():
                    del pending[fut]
                    timed_out = True
                    observations[case.id] = (
                        Observation.failed(f"timed out after {case_timeout_s:g} s", latency_ms=(now - start) * 1000),
                        "",
                    )
    finally:
        # a timed-out call cannot be interrupted; do not wait for it
        pool.shutdown(wait=not timed_out, cancel_futures=True)
    return observations


def _scored(run: _Run, observations: dict[str, tuple[Observation, str]]) -> list[CaseResult]:
    """Each case scored, with a redacted excerpt of its answer, in golden-set order."""
    redactor = _excerpt_redactor(run.release)
    results = []
    for case in run.cases:
        obs, answer = observations[case.id]
        scored = score_case(case, obs)
        excerpt = _excerpt(answer, redactor, case.expect.must_not_contain) if answer else ""
        results.append(dataclasses.replace(scored, excerpt=excerpt))
    return results


def _unavailable(response: Any) -> str | None:
    """Why the gateway could not serve ``response`` for lack of a dependency, or None."""
    reason = str(getattr(response, "reason", ""))
    if str(getattr(response.decision, "value", response.decision)) == "fallback" and reason.startswith(
        UNAVAILABLE_REASONS
    ):
        return reason
    return None


def _excerpt_redactor(release: Any) -> Any:
    """Every builtin detector plus the release's patterns, whatever the release's own policy:
    a result must not carry a secret even when the release under test lets one through."""
    from controller.boundaries import builtin_detectors, pattern_detector
    from controller.boundaries.redactor import Redactor

    patterns = tuple(pattern_detector(p) for p in release.workflow.data_boundaries.patterns)
    return Redactor((*builtin_detectors(), *patterns), {})


def _excerpt(text: str, redactor: Any, forbidden: Sequence[str]) -> str:
    clean = redactor.redact(text)
    for needle in forbidden:
        clean = re2.sub("(?i)" + re2.escape(needle), "[REDACTED:golden]", clean)
    clean = " ".join(clean.split())
    return clean if len(clean) <= EXCERPT_CHARS else clean[: EXCERPT_CHARS - 1] + "…"


def _operator(explicit: str | None) -> str:
    if explicit:
        return explicit
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


def _release_of(gateway: Any, digest: str) -> Any:
    """The release exactly as the gateway serves it: loaded and verified once, cached by digest.

    Reading the golden set from the gateway's own snapshot means the cases and the answers come
    from the same verified bytes, and a process that evaluates repeatedly does not re-verify
    the snapshot each time. Gateways without that cache load it from their store.
    """
    served = getattr(gateway, "release", None)
    if callable(served):
        return served(digest)
    return load_release(gateway.store, digest)


def _backoff(attempt: int) -> float:
    return min(8.0, 0.5 * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)


def _observe(response: Any, latency: float, attempts: int, recorder: _RecordingSink | None, digest: str) -> Observation:
    decision = str(getattr(response.decision, "value", response.decision))
    record = None
    error = None
    if recorder is not None:
        record = recorder.records.get(response.request_id)
        if record is None:
            error = "the gateway wrote no audit record for this request"
        elif record.get("eval") is not True:
            error = "the request's audit record is not tagged as an eval"
    if error is None and response.release not in (None, digest):
        error = f"answered by release {str(response.release)[:12]}, not the one under eval"
    return Observation(
        decision=decision,
        answer=response.answer,
        citations=tuple(response.citations),
        blocked_categories=tuple(response.blocked_categories),
        latency_ms=latency,
        audit_record=record,
        error=error,
        request_id=response.request_id,
        reason=response.reason,
        attempts=attempts,
    )
