"""``rollout eval``: run the golden set against a release, show and list stored results.

Registered in ``controller.cli`` as ``app.add_typer(eval_app, name="eval")``. Exit codes of
``run`` (``controller.core.verdict.exit_code``): 0 PASS, 3 FAIL (``RefusedError``), 5 INCONCLUSIVE
(``EvalInconclusive``: the model or a dependency was unavailable; stored, no rollback); 2 a result
that fails verification or a bad argument.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from controller.cli.common import (
    AdapterOption,
    JsonOption,
    WorkflowOption,
    flag,
    load,
    out,
    print_json,
    reports_errors,
    settings,
    state_store,
)

__all__ = ["eval_app"]

eval_app = typer.Typer(
    help="Golden-set evals: judge one release (by digest) and keep the result as evidence.",
    no_args_is_help=True,
)

_ReleaseOption = typer.Option(
    None, "--release", help="Release digest or unique prefix (default: the current bundle's release)."
)


def _current_digest(workflow: Path | None, adapter: str | None) -> str:
    from controller.core.release import current_digest, model_choice

    bundle = load(workflow)
    return current_digest(bundle, model_choice(bundle.workflow, adapter))


@eval_app.command("run")
def run(
    ctx: typer.Context,
    workflow: Path | None = WorkflowOption,
    release: str | None = typer.Option(
        None,
        "--release",
        help="Judge this stored release (digest or unique prefix) instead of the current bundle's; "
        "--adapter is then ignored (a release names its own model).",
    ),
    adapter: str | None = AdapterOption,
    concurrency: int = typer.Option(4, "--concurrency", "-c", min=1, max=64, help="Cases run at once."),
    case_timeout: float = typer.Option(120.0, "--case-timeout", min=0.1, help="Seconds before a case fails."),
    operator: str | None = typer.Option(None, "--operator", help="Who ran it (default: the OS user)."),
    no_rollback: bool = flag(
        "--no-rollback",
        help="Only record the result; the scheduled `rollout reconcile` acts on a FAIL (for evaluators "
        "without rollout authority).",
    ),
    json_output: bool = JsonOption,
) -> None:
    """Run the golden set through the gateway against one release; store the result under its digest.

    A FAIL of a release that is live in any cohort rolls it back at once (unless --no-rollback).
    When the model or a dependency stays unavailable for some cases (3 attempts each), the eval
    is INCONCLUSIVE: stored, exit 5, nothing rolled back, nothing promotable on it.
    """
    reports_errors(_run)(
        ctx,
        workflow=workflow,
        release=release,
        adapter=adapter,
        concurrency=concurrency,
        case_timeout=case_timeout,
        operator=operator,
        no_rollback=no_rollback,
        json_output=json_output,
    )


def _run(
    ctx: typer.Context,
    *,
    workflow: Path | None,
    release: str | None,
    adapter: str | None,
    concurrency: int,
    case_timeout: float,
    operator: str | None,
    no_rollback: bool = False,
    json_output: bool,
) -> None:
    from controller.adapters.devidp import DevIdp
    from controller.cli.rollout import rollback_hook_for
    from controller.core.release import create_release, model_choice, resolve_digest
    from controller.core.verdict import NO_FRESH_EVIDENCE, Verdict, exit_code
    from controller.errors import EvalInconclusive, RefusedError
    from controller.evals.runner import run_eval
    from controller.service.compose import StatePaths, build_gateway, evidence_signer

    state = settings(ctx).state
    bundle = load(workflow)
    store = state_store(ctx)
    if release:
        digest = resolve_digest(store, release)
    else:
        digest, _ = create_release(store, bundle, model_choice(bundle.workflow, adapter))
    idp = DevIdp(StatePaths(state).idp)
    idp.ensure()
    gateway = build_gateway(bundle, state, store=store)
    try:
        result = run_eval(
            gateway, digest, minter=idp, store=store, concurrency=concurrency,
            case_timeout_s=case_timeout, operator=operator, signer=evidence_signer(state),
            # A FAIL of a release that is live in any cohort rolls it back at once.
            rollback_hook=None if no_rollback else rollback_hook_for(ctx, workflow, None),
        )
    finally:
        gateway.sink.close()
        close = getattr(gateway.flags, "close", None)
        if close is not None:
            close()
    if json_output:
        print_json({"ok": result.passed, "key": result.key, "result": result.raw})
        if not result.passed:
            raise typer.Exit(exit_code(result.verdict))  # one JSON document on stdout, not two
        return
    _render(result)
    if result.verdict is Verdict.FAIL:
        raise RefusedError(
            f"eval of release {digest[:12]} FAILED: {'; '.join(result.reasons)}. "
            f"The result is stored as {result.key}; this release may not be promoted."
        )
    if result.verdict is Verdict.INCONCLUSIVE:
        raise EvalInconclusive(
            f"eval of release {digest[:12]} is INCONCLUSIVE: {'; '.join(result.reasons)}. "
            f"The result is stored as {result.key} ({NO_FRESH_EVIDENCE}): it rolls nothing back and "
            "promotes nothing; check the model endpoint and its credentials, then run the eval again."
        )


@eval_app.command("show")
def show(
    ctx: typer.Context,
    release: str | None = _ReleaseOption,
    workflow: Path | None = WorkflowOption,
    adapter: str | None = AdapterOption,
    json_output: bool = JsonOption,
) -> None:
    """Show the latest verified result of a release."""
    reports_errors(_show)(ctx, release=release, workflow=workflow, adapter=adapter, json_output=json_output)


def _show(
    ctx: typer.Context, *, release: str | None, workflow: Path | None, adapter: str | None, json_output: bool
) -> None:
    from controller.core.release import load_release, resolve_digest
    from controller.errors import InvalidInput
    from controller.evals.results import latest_result, rejudge
    from controller.service.compose import evidence_signer

    store = state_store(ctx)
    digest = resolve_digest(store, release) if release else _current_digest(workflow, adapter)
    result = latest_result(store, digest, verifier=evidence_signer(settings(ctx).state))  # signed by the evaluator
    if result is None:
        raise InvalidInput(f"release {digest[:12]} has no eval result; run `rollout eval run`.")
    # re-judged against the thresholds of the release it judged, never its own
    rejudge([result], {str(k): v for k, v in load_release(store, digest).workflow.eval.thresholds.items()})
    if json_output:
        print_json({"ok": result.passed, "key": result.key, "result": result.raw})
        return
    _render(result)


@eval_app.command("list")
def list_(ctx: typer.Context, json_output: bool = JsonOption) -> None:
    """List every stored result (each re-verified): release, time, verdict, rates."""
    reports_errors(_list)(ctx, json_output=json_output)


def _list(ctx: typer.Context, *, json_output: bool) -> None:
    from controller.evals.results import list_all_results
    from controller.service.compose import evidence_signer

    results = list_all_results(state_store(ctx), verifier=evidence_signer(settings(ctx).state))
    if json_output:
        print_json(
            {
                "results": [
                    {
                        "key": r.key,
                        "digest": r.digest,
                        "finished_at": r.finished_at.isoformat(),
                        "verdict": r.verdict.value,
                        "rates": r.rates,
                        "operator": r.operator,
                        "model": r.model,
                    }
                    for r in results
                ]
            }
        )
        return
    table = Table(title="eval results")
    for column in ("release", "finished (UTC)", "verdict", "rates", "model", "operator"):
        table.add_column(column)
    for r in results:
        table.add_row(
            r.digest[:12],
            r.finished_at.strftime("%Y-%m-%d %H:%M:%S"),
            _coloured(r.verdict.value),
            ", ".join(f"{k} {v:.0%}" for k, v in r.rates.items()),
            f"{r.model['adapter']}: {r.model['id']}",
            r.operator,
        )
    out.print(table)


# --- rendering --------------------------------------------------------------------------------


def _coloured(verdict: str) -> str:
    from controller.core.verdict import VERDICT_COLOURS

    return f"[bold {VERDICT_COLOURS.get(verdict, 'yellow' if verdict == 'NOT RUN' else 'red')}]{verdict}[/]"


def _render(result: Any) -> None:
    from rich.markup import escape

    raw = result.raw
    cases = Table(title=f"eval of release {result.digest[:12]} ({raw['workflow']})")
    cases.add_column("case (by category)", overflow="fold")
    for column in ("result", "decision", "ms"):
        cases.add_column(column)
    previous = None
    for c in raw["cases"]:
        if previous is not None and c["category"] != previous:
            cases.add_section()
        previous = c["category"]
        cases.add_row(
            c["id"], _coloured("PASS" if c["passed"] else "NOT RUN" if c.get("unavailable") else "FAIL"),
            c["decision"],
            f"{c['latency_ms']:.0f}",
        )
    out.print(cases)
    for c in raw["cases"]:
        failed = [ch for ch in c["checks"] if not ch["passed"]]
        for ch in failed:
            detail = f": {ch['detail']}" if ch["detail"] else ""
            label = "[yellow]NOT RUN[/]" if c.get("unavailable") else "[red]FAIL[/]"
            out.print(
                f"{label} {c['id']} ({c['category']}) {escape(ch['expectation'])}{escape(detail)}",
                highlight=False,
            )
        if failed and c.get("excerpt"):  # what the answer said (redacted), so the failure can be read
            out.print(f"    answer: {escape(c['excerpt'])}", highlight=False)
    rates = Table(title="by category")
    for column in ("category", "passed", "rate", "threshold", "ok"):
        rates.add_column(column)
    for name, c in raw["categories"].items():
        rates.add_row(
            name, f"{c['passed']}/{c['total']}", f"{c['rate']:.0%}", f"{c['threshold']:.0%}",
            "yes" if c["ok"] else "[red]no[/]",
        )
    out.print(rates)
    env = raw["environment"]
    out.print(
        f"verdict {_coloured(result.verdict.value)}  model {escape(env['model']['adapter'])}: "
        f"{escape(env['model']['id'])}  operator {escape(env['operator'])}  "
        f"finished {raw['finished_at']}  package {env['package_version']}",
        highlight=False,
    )
    out.print(f"stored as {escape(result.key)}", highlight=False)
