"""The rollout commands of ``rollout``: status, promote, rollback, kill, reconcile, history and
``audit verify``. ``register(app, audit)`` adds them to the main typer app and its ``audit``
group (``controller.cli``).

Every command works on one workflow (``--workflow``, default the only bundle) and one state store
(``--store URL`` / env ``ROLLOUT_STORE``: a directory, ``file:///abs/dir`` or ``s3://bucket/prefix``;
default the ``--state`` directory). The live flag document is always the local
``<state>/flags/<workflow>.flagd.json`` the gateway's flagd provider reads.

Exit codes: 0 done (or nothing to do), 1 ``audit verify`` found a problem, 2 invalid input,
3 refused by the gate (every reason printed), 4 a concurrent change kept winning, 5 a backend
(state store, STS) is unavailable: ``kill`` still engages the kill switch in the flag file first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from controller.bundle.models import Bundle, Workflow
from controller.cli.common import (
    AdapterOption,
    JsonOption,
    StoreOption,
    WorkflowOption,
    err,
    load_policy,
    out,
    print_json,
    reports_errors,
    settings,
    state_store,
)
from controller.cli.identity import JwksOption, OperatorOption, StsOption, TokenOption, principal_for
from controller.core.approvals import Principal
from controller.core.gates import COHORTS, OFF, Refused
from controller.errors import InvalidInput, RolloutError
from controller.service.rollout import (
    Outcome,
    ReconcileOnFailedEval,
    ReconcileReport,
    RolloutService,
)

__all__ = ["register", "rollback_hook_for", "service_for"]

K8sOption = typer.Option(
    None,
    "--k8s-configmap",
    envvar="ROLLOUT_K8S_CONFIGMAP",
    help="Also publish the flag document to this ConfigMap (NAMESPACE/NAME) through the kubernetes client.",
)
ReasonRequired = typer.Option(..., "--reason", help="Why; recorded in the audit chain.")


# --- wiring ---------------------------------------------------------------------------------------


def _policy(workflow: Path | None) -> tuple[Bundle | None, Workflow, tuple[str, ...]]:
    """The bundle when it validates; else just its workflow.yaml (enough to kill, roll back and
    render flags) and the bundle's problems, which refuse any promotion."""
    _, bundle, wf, problems = load_policy(workflow, require_workflow=True)
    assert wf is not None  # require_workflow raised otherwise
    return bundle, wf, problems


def _store(ctx: typer.Context, store_url: str | None) -> Any:
    from controller.adapters import open_store

    return open_store(store_url) if store_url else state_store(ctx)


def service_for(
    ctx: typer.Context, workflow: Path | None, store_url: str | None, k8s_configmap: str | None = None
) -> tuple[RolloutService, Bundle | None]:
    """The service for this invocation's workflow and store (shared with ``rollout eval run``)."""
    from controller.service.compose import StatePaths, evidence_signer, rollout_service

    bundle, wf, problems = _policy(workflow)
    store = _store(ctx, store_url)
    flags = StatePaths(settings(ctx).state).flags(wf.id)
    sinks: list[Any] = []
    if settings(ctx).flags_s3:
        from controller.adapters.s3_flags import s3_flag_sink

        sinks.append(s3_flag_sink(settings(ctx).flags_s3))
    if k8s_configmap:
        from controller.adapters.k8s_flags import configmap_sink

        sinks.append(configmap_sink(k8s_configmap))
    signer = evidence_signer(settings(ctx).state)  # evals must be signed by it; checkpoints are
    return rollout_service(wf, store, flags, bundle_problems=problems, flag_sinks=sinks, signer=signer), bundle


def rollback_hook_for(ctx: typer.Context, workflow: Path | None, store_url: str | None) -> ReconcileOnFailedEval:
    """The ``RollbackHook`` for ``run_eval(..., rollback_hook=...)``: a FAIL of a live release rolls back."""
    return ReconcileOnFailedEval(service_for(ctx, workflow, store_url)[0])


def _bundle_release(store: Any, bundle: Bundle | None, adapter: str | None) -> str | None:
    """The digest the current bundle builds (without storing it); None when it does not build."""
    if bundle is None:
        return None
    from controller.core.release import current_digest, model_choice

    return current_digest(bundle, model_choice(bundle.workflow, adapter))


def _actor(
    ctx: typer.Context,
    service: RolloutService,
    token: str | None,
    operator: str | None,
    from_sts: bool,
    jwks: str | None,
) -> tuple[str, Principal | None]:
    """The gate's operator name and the principal behind it (``controller.service.identity``)."""
    who = principal_for(ctx, service.workflow, token=token, operator=operator, from_sts=from_sts, jwks=jwks)
    return who.name, who


def _kill_actor(
    ctx: typer.Context,
    service: RolloutService,
    token: str | None,
    operator: str | None,
    from_sts: bool,
    jwks: str | None,
) -> tuple[str, Principal | None]:
    """Engaging the kill switch is never gated and must work when the IdP or STS does not: an
    identity that cannot be established is recorded as the name given (or the OS user), asserted."""
    try:
        return _actor(ctx, service, token, operator, from_sts, jwks)
    except RolloutError as exc:
        from controller.service.identity import ASSERTED_ISSUER
        from controller.service.rollout import resolve_operator

        name = resolve_operator(operator).name
        err.print(f"[yellow]warning:[/] identity not established ({exc}); the kill is recorded as {name!r}, asserted")
        return name, Principal(ASSERTED_ISSUER, name, None, (), "asserted")


# --- output ---------------------------------------------------------------------------------------


def _short(digest: str | None) -> str:
    return OFF if not digest or digest == OFF else digest[:12]


def _served_table(served: dict[str, str], killed: bool) -> Table:
    table = Table(title="served" + (" (KILL SWITCH ENGAGED: everyone gets the fallback)" if killed else ""))
    table.add_column("cohort")
    table.add_column("release")
    for cohort in COHORTS:
        table.add_row(cohort, _short(served.get(cohort)))
    return table


def _print_outcome(outcome: Outcome) -> None:
    for note in outcome.notes:
        out.print(f"[cyan]repair:[/] {note}", highlight=False)
    if isinstance(outcome.decision, Refused):
        n = len(outcome.reasons)
        err.print(f"[bold red]refused:[/] {outcome.action} ({n} reason{'s' if n != 1 else ''})", highlight=False)
        for reason in outcome.reasons:
            err.print(f" - {reason.message} [dim]({reason.code})[/]", highlight=False)
    elif outcome.decision is not None:
        first, *rest = outcome.reasons
        if outcome.changed:
            seq = outcome.record.seq if outcome.record else "?"
            out.print(f"[bold green]{first.message}[/] [dim](audit seq {seq})[/]", highlight=False)
        else:
            out.print(f"[yellow]nothing to do:[/] {first.message}", highlight=False)
        for reason in rest:
            out.print(f"[yellow]warning:[/] {reason.message}", highlight=False)
    if outcome.flags is not None:
        verb = "rewritten" if outcome.flags.changed else "already up to date"
        out.print(f"flag document {verb}: {outcome.flags.path}", highlight=False)
        for sink in outcome.flags.published:
            out.print(f"published to {sink}", highlight=False)
        if outcome.changed and outcome.action != "approve":  # an approval serves nobody anything new
            out.print(_served_table(outcome.flags.served, outcome.flags.killed))


def _finish(outcome: Outcome, json_output: bool) -> None:
    if json_output:
        print_json(outcome.to_dict())
    else:
        _print_outcome(outcome)
    if outcome.exit_code:
        raise typer.Exit(outcome.exit_code)


# --- commands -------------------------------------------------------------------------------------


@reports_errors
def status(
    ctx: typer.Context,
    workflow: Path | None = WorkflowOption,
    store_url: str | None = StoreOption,
    adapter: str | None = AdapterOption,
    operator: str | None = OperatorOption,
    from_sts: bool = StsOption,
    token: str | None = TokenOption,
    jwks: str | None = JwksOption,
    json_output: bool = JsonOption,
) -> None:
    """Show the rollout: releases, cohorts, kill switch, evals, what the next promotion needs.

    Read-only: stable and candidate releases, what each cohort is served, the kill switch, the
    latest evals of live releases, and the gate's reasons the next promotion would be refused."""
    service, bundle = service_for(ctx, workflow, store_url)
    name, who = _actor(ctx, service, token, operator, from_sts, jwks)
    report = service.status(operator=name, release=_bundle_release(service.store, bundle, adapter), actor=who)
    if json_output:
        print_json(report.to_dict())
        return
    s = report.state
    table = Table(title=f"{report.workflow}: rollout", show_header=False)
    table.add_column("field")
    table.add_column("value")
    table.add_row("store", report.store)
    table.add_row("stable", _short(s.stable) + (f"  (generation {s.generation})" if s.stable else ""))
    if s.off_reason:
        table.add_row("turned off", s.off_reason)
    if s.candidate:
        reached = ", ".join(f"{c} at {t}" for c, t in s.candidate.reached)
        table.add_row("candidate", f"{_short(s.candidate.release)}: {reached}")
    else:
        table.add_row("candidate", "none")
    k = s.kill
    table.add_row("kill switch", f"ENGAGED by {k.by} at {k.at}: {k.reason}" if k.engaged else "released")
    if report.kill_pending:
        table.add_row("kill pending", f"engaged while the store was down: {report.kill_pending}")
    head = f"seq {s.head.seq}" if s.head else "empty"
    table.add_row("audit chain", f"{head}, revision {s.revision}")
    if report.pending is not None:
        table.add_row("pending", f"audit seq {report.pending.seq} logged, not applied; the next command completes it")
    if report.problem:
        table.add_row("PROBLEM", report.problem)
    sync = "in sync" if report.flags_in_sync else "STALE: `rollout reconcile` re-renders it"
    table.add_row("flag file", f"{report.flags_path} ({sync})")
    out.print(table)
    out.print(_served_table(report.served, s.kill.engaged or bool(report.kill_pending)))
    if report.evals:
        evals = Table(title="latest evals")
        for col in ("release", "role", "verdict", "finished", "result"):
            evals.add_column(col)
        for digest, info in report.evals.items():
            last = info["latest"]
            if info["error"]:
                evals.add_row(_short(digest), info["role"], "[red]UNREADABLE[/]", "", info["error"])
            elif last is None:
                evals.add_row(_short(digest), info["role"], "none", "", "")
            else:
                colour = "green" if last["verdict"] == "PASS" else "red"
                evals.add_row(
                    _short(digest),
                    info["role"],
                    f"[{colour}]{last['verdict']}[/]",
                    last["finished_at"],
                    last["content_hash"][:12],
                )
        out.print(evals)
    for due in report.due:
        out.print(f"[bold red]rollback due:[/] {due}", highlight=False)
    nxt = report.next
    if nxt is None:
        out.print("next promotion: nothing to promote (the bundle's release is the stable release)")
    elif nxt["ready"]:
        out.print(f"next promotion: {_short(nxt['release'])} -> {nxt['cohort']}: [green]ready[/]", highlight=False)
    else:
        out.print(f"next promotion: {_short(nxt['release'])} -> {nxt['cohort']} still needs:", highlight=False)
        for need in nxt["needs"]:
            out.print(f" - {need['message']}", highlight=False)
    if s.last_actions:
        actions = Table(title="last actions")
        for col in ("rev", "at", "operator", "action", "release", "reason"):
            actions.add_column(col)
        for a in s.last_actions:
            actions.add_row(str(a.revision), a.at, a.operator, a.action, _short(a.release), a.reason or "")
        out.print(actions)


@reports_errors
def promote(
    ctx: typer.Context,
    cohort: str = typer.Option(..., "--cohort", help="internal | limited | general (the next one, in order)."),
    release: str | None = typer.Option(
        None, "--release", help="Release digest or unique prefix (default: the one the current bundle builds)."
    ),
    reason: str | None = typer.Option(None, "--reason", help="Why; recorded in the audit chain."),
    operator: str | None = OperatorOption,
    from_sts: bool = StsOption,
    token: str | None = TokenOption,
    jwks: str | None = JwksOption,
    workflow: Path | None = WorkflowOption,
    store_url: str | None = StoreOption,
    k8s_configmap: str | None = K8sOption,
    adapter: str | None = AdapterOption,
    json_output: bool = JsonOption,
) -> None:
    """Serve a release to the next cohort, if the gate allows it.

    Counts only approvals recorded by `rollout approve` (authenticated approvers other than you,
    for exactly this digest and cohort, unexpired). Refused: exit 3 with every reason. Default
    release: the one the current bundle builds."""
    from controller.core.release import resolve_digest

    if cohort not in COHORTS:
        raise InvalidInput(f"--cohort {cohort!r}: choose one of {', '.join(COHORTS)}.")
    service, bundle = service_for(ctx, workflow, store_url, k8s_configmap)
    name, who = _actor(ctx, service, token, operator, from_sts, jwks)
    digest = resolve_digest(service.store, release) if release else _bundle_release(service.store, bundle, adapter)
    outcome = service.promote(digest, cohort, operator=name, reason=reason, actor=who)
    _finish(outcome, json_output)


@reports_errors
def rollback(
    ctx: typer.Context,
    reason: str = ReasonRequired,
    operator: str | None = OperatorOption,
    from_sts: bool = StsOption,
    token: str | None = TokenOption,
    jwks: str | None = JwksOption,
    workflow: Path | None = WorkflowOption,
    store_url: str | None = StoreOption,
    k8s_configmap: str | None = K8sOption,
    json_output: bool = JsonOption,
) -> None:
    """Send the candidate's cohorts back to the stable release (or off).

    With no candidate this is a no-op (exit 0, no audit record). The flag document returns byte
    for byte to what it was before the candidate's first promotion."""
    service, _ = service_for(ctx, workflow, store_url, k8s_configmap)
    name, who = _actor(ctx, service, token, operator, from_sts, jwks)
    _finish(service.rollback(operator=name, reason=reason, actor=who), json_output)


@reports_errors
def kill(
    ctx: typer.Context,
    reason: str = ReasonRequired,
    release_switch: bool = typer.Option(False, "--release", help="Release the kill switch instead (operators only)."),
    operator: str | None = OperatorOption,
    from_sts: bool = StsOption,
    token: str | None = TokenOption,
    jwks: str | None = JwksOption,
    workflow: Path | None = WorkflowOption,
    store_url: str | None = StoreOption,
    k8s_configmap: str | None = K8sOption,
    json_output: bool = JsonOption,
) -> None:
    """Engage the kill switch (or release it with --release).

    No gate and no eval read. If the state store is down the flag file is still switched to the
    kill switch (exit 5) and the next command records it. --release needs an operator."""
    service, _ = service_for(ctx, workflow, store_url, k8s_configmap)
    if release_switch:
        name, who = _actor(ctx, service, token, operator, from_sts, jwks)
        outcome = service.release_kill(operator=name, reason=reason, actor=who)
    else:
        name, who = _kill_actor(ctx, service, token, operator, from_sts, jwks)
        outcome = service.kill(operator=name, reason=reason, actor=who)
    _finish(outcome, json_output)


@reports_errors
def reconcile(
    ctx: typer.Context,
    workflow: Path | None = WorkflowOption,
    store_url: str | None = StoreOption,
    k8s_configmap: str | None = K8sOption,
    json_output: bool = JsonOption,
) -> None:
    """Repair and roll back what failed (idempotent; for cron).

    Completes interrupted commands, rolls back live releases whose latest eval FAILED (turning
    the workflow off when no stable release passes) and re-renders the flag file."""
    service, _ = service_for(ctx, workflow, store_url, k8s_configmap)
    report: ReconcileReport = service.reconcile()
    if json_output:
        print_json(report.to_dict())
    else:
        for note in report.notes:
            out.print(f"[cyan]repair:[/] {note}", highlight=False)
        for outcome in report.outcomes:
            _print_outcome(outcome)
        if not report.outcomes:
            out.print("nothing to roll back: no live release has a failing latest eval")
        if report.state.off_reason and report.state.stable is None:
            out.print(f"[bold red]workflow is OFF:[/] {report.state.off_reason}", highlight=False)
        if report.flags is not None:
            verb = "rewritten" if report.flags.changed else "already up to date"
            out.print(f"flag document {verb}: {report.flags.path}", highlight=False)
    if report.exit_code:
        raise typer.Exit(report.exit_code)


@reports_errors
def history(
    ctx: typer.Context,
    workflow: Path | None = WorkflowOption,
    store_url: str | None = StoreOption,
    json_output: bool = JsonOption,
) -> None:
    """The control-plane audit chain, oldest first."""
    service, _ = service_for(ctx, workflow, store_url)
    items = service.history()
    if json_output:
        print_json(
            {
                "workflow": service.workflow.id,
                "records": [
                    i.to_dict() if not isinstance(i, bytes) else {"position": n, "unreadable": True, "bytes": len(i)}
                    for n, i in enumerate(items, 1)
                ],
            }
        )
        return
    table = Table(title=f"{service.workflow.id}: audit chain")
    for col in ("seq", "time", "operator", "action", "release", "reason"):
        table.add_column(col)
    for n, item in enumerate(items, 1):
        if isinstance(item, bytes):
            table.add_row(str(n), "", "", "[red]unreadable[/]", "", "")
        else:
            release = _short(item.release) if item.release else ""
            table.add_row(str(item.seq), item.time, item.operator, item.action, release, item.reason or "")
    out.print(table)


@reports_errors
def audit_verify(
    ctx: typer.Context,
    workflow: Path | None = WorkflowOption,
    store_url: str | None = StoreOption,
    json_output: bool = JsonOption,
) -> None:
    """Re-walk the hash chain against the state's head.

    Exit 1 naming the first bad seq; also checks the state is what the head record says."""
    service, _ = service_for(ctx, workflow, store_url)
    result, problems = service.verify()
    ok = result.ok and not problems
    if json_output:
        # "ok" last: the chain's own "ok" says nothing of the state or the checkpoints
        print_json({"workflow": service.workflow.id, **result.to_dict(), "problems": problems, "ok": ok})
    elif not result.ok:
        err.print(f"[bold red]BROKEN[/] at seq {result.first_bad_seq}: {result.reason}", highlight=False)
    else:
        head = f"seq {result.head.seq}" if result.head else "empty"
        out.print(f"[green]ok[/]: {result.checked} records verified, head {head}", highlight=False)
        if result.ahead:
            out.print(
                f"{result.ahead} record(s) beyond the state's head: a command stopped after logging; "
                "the next command completes it"
            )
        for problem in problems:
            err.print(f"[bold red]problem:[/] {problem}", highlight=False)
    if not ok:
        raise typer.Exit(1)


# --- registration ---------------------------------------------------------------------------------


def register(app: typer.Typer, audit: typer.Typer) -> None:
    """Add the rollout commands to ``app`` and ``verify`` to its ``audit`` group."""
    app.command("status")(status)
    app.command("promote")(promote)
    app.command("rollback")(rollback)
    app.command("kill")(kill)
    app.command("reconcile")(reconcile)
    app.command("history")(history)
    audit.command("verify")(audit_verify)
