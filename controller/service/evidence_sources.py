"""Where the rollout service reads its evidence: stored eval results, stored releases, and the eval hook
that rolls a live release back when its eval fails."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from controller.core.gates import EvalEvidence, EvalHistory
from controller.errors import BackendUnavailable, InvalidInput
from controller.ports import Store

if TYPE_CHECKING:
    from controller.service.outcomes import ReconcileReport
    from controller.service.rollout import RolloutService

__all__ = ["ReconcileOnFailedEval", "StoreEvals", "latest_evaluated", "release_problem"]


class StoreEvals:
    """Eval history from ``controller.evals.results.load_results`` (every result re-verified).

    ``verifier``: every result must be signed by the evaluator's key; ``release_store``: each
    verdict is re-derived against the thresholds of the release it judged (loaded from there)."""

    def __init__(self, store: Store, *, verifier: Any = None, release_store: Store | None = None) -> None:
        self.store = store
        self.verifier = verifier
        self.release_store = release_store

    def __call__(self, digest: str) -> EvalHistory:
        try:
            from controller.core.release import load_release
            from controller.evals.results import load_results, rejudge

            results = load_results(self.store, digest, verifier=self.verifier)
            if results and self.release_store is not None:
                release = load_release(self.release_store, digest)
                rejudge(results, {str(k): v for k, v in release.workflow.eval.thresholds.items()})
        except ImportError as exc:  # pragma: no cover - evals ships with the package
            return EvalHistory(error=f"controller.evals.results is unavailable ({exc})")
        except InvalidInput as exc:
            return EvalHistory(error=str(exc))
        except BackendUnavailable as exc:
            return EvalHistory(error=f"the eval store is unavailable: {exc}")
        return EvalHistory(
            tuple(
                EvalEvidence(r.digest, str(getattr(r.verdict, "value", r.verdict)), r.finished_at, r.content_hash)
                for r in results
            )
        )


def release_problem(store: Store, digest: str) -> str | None:
    from controller.core.release import load_release

    try:
        load_release(store, digest)
    except InvalidInput as exc:
        return str(exc)
    except BackendUnavailable as exc:
        return f"the release store is unavailable: {exc}"
    return None





class ReconcileOnFailedEval:
    """``controller.evals.runner.RollbackHook``: a FAIL of a live release rolls it back at once.

    ``run_eval`` stores the result before calling the hook, so a reconcile sees it as the
    latest evidence; the rollback is audited with operator ``eval-run``.
    """

    def __init__(self, service: RolloutService) -> None:
        self.service = service
        self.reports: list[ReconcileReport] = []

    def on_failed_eval(self, digest: str, result: Any) -> None:
        state = self.service.load(repair=False).state
        live = {state.candidate.release if state.candidate else None, state.stable}
        if digest not in live:
            return
        short = str(getattr(result, "content_hash", ""))[:12]
        self.reports.append(self.service.reconcile(operator="eval-run", trigger=f"`rollout eval run` {short}"))


def latest_evaluated(store: Store, workflow_id: str) -> Any:
    """The most recent stored eval result of any release of ``workflow_id`` (an ``EvalResult``),
    or None. ``promote`` defaults to its release: exactly what was evaluated, never a digest
    recomputed under other options (``--adapter``)."""
    from controller.evals.results import list_all_results

    mine = [r for r in list_all_results(store) if r.workflow == workflow_id]
    return max(mine, key=lambda r: (r.finished_at, r.key)) if mine else None
