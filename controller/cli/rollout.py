"""The rollout commands of ``rollout``: workflows, status, promote, rollback, kill/unkill, reconcile, history and
``audit verify``. ``register(app, audit)`` adds them to the main typer app and its ``audit``
group (``controller.cli``).

Every command works on one workflow (``--workflow/-w ID`` or a bundle path; default the only
bundle; ``workflows``, ``status --all`` and ``kill --all`` cover every bundle) and one state store
(the global ``--store URL`` / env ``ROLLOUT_STORE``: a directory, ``file:///abs/dir`` or
``s3://bucket/prefix``; default the ``--state`` directory). Printing is ``cli.rollout_output``.
The live flag document is always the local ``<state>/flags/<workflow>.flagd.json`` the gateway's
flagd provider reads.

Exit codes: 0 done (or nothing to do), 1 ``audit verify`` found a problem, 2 invalid input,
3 refused by the gate (every reason printed), 4 a concurrent change kept winning, 5 a backend
(state store, STS) is unavailable: ``kill`` still engages the kill switch in the flag file first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from controller.bundle.models import Bundle, Workflow
from controller.cli.common import (
    AdapterOption,
    CohortName,
    JsonOption,
    WorkflowOption,
    err,
    flag,
    load_policy,
    out,
    print_json,
    reports_errors,
    settings,
    state_store,
)
from controller.cli.identity import JwksOption, OperatorOption, StsOption, TokenOption, principal_for
from controller.cli.rollout_output import finish, print_outcome, print_status, short
from controller.core.approvals import Principal
from controller.core.gates import COHORTS, served
from controller.core.timefmt import iso
from controller.errors import BackendUnavailable, InvalidInput, RolloutError
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
K8sFeatureFlagOption = typer.Option(
    None,
    "--k8s-featureflag",
    envvar="ROLLOUT_K8S_FEATUREFLAG",
    help="Also publish the flags as this OpenFeature FeatureFlag resource (NAMESPACE/NAME), which the "
    "operator's flagd sidecar watches.",
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
    ctx: typer.Context,
    workflow: Path | None,
    store_url: str | None = None,
    k8s_configmap: str | None = None,
    k8s_featureflag: str | None = None,
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
    if k8s_featureflag:
        from controller.adapters.k8s_flags import featureflag_sink

        sinks.append(featureflag_sink(k8s_featureflag))
    signer = evidence_signer(settings(ctx).state)  # evals must be signed by it; checkpoints are
    return rollout_service(wf, store, flags, bundle_problems=problems, flag_sinks=sinks, signer=signer), bundle


def rollback_hook_for(ctx: typer.Context, workflow: Path | None, store_url: str | None) -> ReconcileOnFailedEval:
    """The ``RollbackHook`` for ``run_eval(..., rollback_hook=...)``: a FAIL of a live release rolls back."""
    return ReconcileOnFailedEval(service_for(ctx, workflow)[0])


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


AllOption = flag("--all", help="Every workflow under workflows/.")


def promotion_target(
    service: RolloutService, bundle: Bundle | None, release: str | None, adapter: str | None, *, strict: bool = True
) -> dict[str, Any]:
    """Which release a promotion means, and why: ``--release``; else with ``--adapter`` the one the
    bundle builds under it; else the latest evaluated release of this workflow (exactly what was
    judged); else the one the bundle builds with its sanctioned endpoint (the gate will say it has
    no eval)."""
    from controller.core.release import resolve_digest
    from controller.service.evidence_sources import latest_evaluated

    if release:
        return {"release": resolve_digest(service.store, release), "source": "--release"}
    if adapter is None:
        try:
            last = latest_evaluated(service.store, service.workflow.id)
        except (InvalidInput, BackendUnavailable):
            if strict:  # promote: evidence that cannot be read is never guessed around
                raise
            last = None  # status: it still reports, and its evals table shows what is unreadable
        if last is not None:
            return {
                "release": last.digest,
                "source": "latest eval",
                "adapter": last.model.get("adapter"),
                "model": last.model.get("id"),
                "verdict": str(last.verdict.value),
                "evaluated_at": iso(last.finished_at),
            }
    digest = _bundle_release(service.store, bundle, adapter)
    return {"release": digest, "source": "bundle", "adapter": adapter or service.workflow.surface.endpoint.kind.value}


def describe_target(target: dict[str, Any]) -> str:
    if target["release"] is None:
        return "no release (the bundle does not validate)"
    text = f"release {short(target['release'])} ({target['source']}"
    if target.get("adapter"):
        text += f", adapter {target['adapter']}"
    if target.get("verdict"):
        text += f", {target['verdict']} at {target['evaluated_at']}"
    return text + ")"


# --- commands -------------------------------------------------------------------------------------


def _status_report(ctx: typer.Context, workflow: Path | None, adapter: str | None, identity: dict[str, Any]) -> Any:
    service, bundle = service_for(ctx, workflow)
    target = promotion_target(service, bundle, None, adapter, strict=False)
    name, who = _actor(ctx, service, **identity)
    return service.status(operator=name, release=target["release"], actor=who)


@reports_errors
def status(
    ctx: typer.Context,
    workflow: Path | None = WorkflowOption,
    all_workflows: bool = AllOption,
    adapter: str | None = AdapterOption,
    operator: str | None = OperatorOption,
    from_sts: bool = StsOption,
    token: str | None = TokenOption,
    jwks: str | None = JwksOption,
    json_output: bool = JsonOption,
) -> None:
    """Show the rollout: releases, cohorts, kill switch, evals, what the next promotion needs.

    Read-only: stable and candidate releases, what each cohort is served, the kill switch, the
    latest evals of live releases, and the gate's reasons the next promotion would be refused.
    --all: every workflow under workflows/."""
    from controller.bundle.workspace import bundle_dirs

    identity = {"token": token, "operator": operator, "from_sts": from_sts, "jwks": jwks}
    if all_workflows:
        if workflow is not None:
            raise InvalidInput("give --workflow/-w ID or --all, not both.")
        reports = [_status_report(ctx, d, adapter, identity) for d in bundle_dirs()]
        if json_output:
            print_json({"ok": True, "workflows": [r.to_dict() for r in reports]})
            return
        for report in reports:
            print_status(report)
        return
    report = _status_report(ctx, workflow, adapter, identity)
    if json_output:
        print_json(report.to_dict())
        return
    print_status(report)


@reports_errors
def promote(
    ctx: typer.Context,
    cohort: CohortName | None = typer.Option(
        None, "--cohort", help="The cohort to serve (default: the next one in order for this release)."
    ),
    release: str | None = typer.Option(
        None,
        "--release",
        help="Release digest or unique prefix (default: the latest evaluated release of this workflow).",
    ),
    reason: str | None = typer.Option(None, "--reason", help="Why; recorded in the audit chain."),
    dry_run: bool = flag("--dry-run", help="Show the gate's verdict and the flag document's diff; change nothing."),
    operator: str | None = OperatorOption,
    from_sts: bool = StsOption,
    token: str | None = TokenOption,
    jwks: str | None = JwksOption,
    workflow: Path | None = WorkflowOption,
    k8s_configmap: str | None = K8sOption,
    k8s_featureflag: str | None = K8sFeatureFlagOption,
    adapter: str | None = AdapterOption,
    json_output: bool = JsonOption,
) -> None:
    """Serve a release to the next cohort, if the gate allows it.

    Counts only approvals recorded by `rollout approve` (authenticated approvers other than you,
    for exactly this digest and cohort, unexpired). Refused: exit 3 with every reason. Default
    release: the latest evaluated release of the workflow (shown before acting), so what is
    promoted is exactly what was judged."""
    from controller.core.gates import next_cohort

    service, bundle = service_for(ctx, workflow, None, k8s_configmap, k8s_featureflag)
    name, who = _actor(ctx, service, token, operator, from_sts, jwks)
    target = promotion_target(service, bundle, release, adapter)
    digest = target["release"]
    if cohort is not None:
        chosen = cohort.value
    else:
        chosen = next_cohort(service.load(repair=False).state, digest) if digest else COHORTS[0]
        if chosen is None:
            raise InvalidInput(
                f"{describe_target(target)} is already the stable release for every cohort: nothing to promote."
            )
    target["cohort"] = chosen
    err.print(f"{service.workflow.id}: promote {describe_target(target)} -> {chosen}", highlight=False)
    if dry_run:
        preview = service.preview_promote(digest, chosen, operator=name, actor=who)
        finish(preview, json_output, {"target": target})
        return
    outcome = service.promote(digest, chosen, operator=name, reason=reason, actor=who)
    finish(outcome, json_output, {"target": target})


@reports_errors
def rollback(
    ctx: typer.Context,
    reason: str = ReasonRequired,
    operator: str | None = OperatorOption,
    from_sts: bool = StsOption,
    token: str | None = TokenOption,
    jwks: str | None = JwksOption,
    workflow: Path | None = WorkflowOption,
    k8s_configmap: str | None = K8sOption,
    k8s_featureflag: str | None = K8sFeatureFlagOption,
    json_output: bool = JsonOption,
) -> None:
    """Send the candidate's cohorts back to the stable release (or off).

    With no candidate this is a no-op (exit 0, no audit record). The flag document returns byte
    for byte to what it was before the candidate's first promotion."""
    service, _ = service_for(ctx, workflow, None, k8s_configmap, k8s_featureflag)
    name, who = _actor(ctx, service, token, operator, from_sts, jwks)
    finish(service.rollback(operator=name, reason=reason, actor=who), json_output)


@reports_errors
def kill(
    ctx: typer.Context,
    reason: str = ReasonRequired,
    off: bool = flag("--off", help="Release the kill switch instead (same as `rollout unkill`)."),
    release_switch: bool = flag("--release", hidden=True, help="Old spelling of --off."),
    all_workflows: bool = flag("--all", help="Engage the kill switch of every workflow at once."),
    operator: str | None = OperatorOption,
    from_sts: bool = StsOption,
    token: str | None = TokenOption,
    jwks: str | None = JwksOption,
    workflow: Path | None = WorkflowOption,
    k8s_configmap: str | None = K8sOption,
    k8s_featureflag: str | None = K8sFeatureFlagOption,
    json_output: bool = JsonOption,
) -> None:
    """Engage the kill switch (or release it with --off); --all engages every workflow's.

    No gate and no eval read. If the state store is down the flag file is still switched to the
    kill switch (exit 5) and the next command records it. Releasing needs an operator."""
    identity = {"token": token, "operator": operator, "from_sts": from_sts, "jwks": jwks}
    if all_workflows:
        _kill_all(ctx, identity, reason, off or release_switch, workflow, k8s_configmap or k8s_featureflag, json_output)
        return
    service, _ = service_for(ctx, workflow, None, k8s_configmap, k8s_featureflag)
    if off or release_switch:
        name, who = _actor(ctx, service, **identity)
        outcome = service.release_kill(operator=name, reason=reason, actor=who)
    else:
        name, who = _kill_actor(ctx, service, **identity)
        outcome = service.kill(operator=name, reason=reason, actor=who)
    finish(outcome, json_output)


@reports_errors
def unkill(
    ctx: typer.Context,
    reason: str = ReasonRequired,
    operator: str | None = OperatorOption,
    from_sts: bool = StsOption,
    token: str | None = TokenOption,
    jwks: str | None = JwksOption,
    workflow: Path | None = WorkflowOption,
    k8s_configmap: str | None = K8sOption,
    k8s_featureflag: str | None = K8sFeatureFlagOption,
    json_output: bool = JsonOption,
) -> None:
    """Release the kill switch (operators only): the cohorts get their releases back."""
    service, _ = service_for(ctx, workflow, None, k8s_configmap, k8s_featureflag)
    name, who = _actor(ctx, service, token, operator, from_sts, jwks)
    finish(service.release_kill(operator=name, reason=reason, actor=who), json_output)


def _kill_all(
    ctx: typer.Context,
    identity: dict[str, Any],
    reason: str,
    releasing: bool,
    workflow: Path | None,
    k8s_configmap: str | None,
    json_output: bool,
) -> None:
    """Every workflow's kill switch, each attempted even when another fails (exit: the worst)."""
    from controller.bundle.workspace import bundle_dirs

    if releasing:
        raise InvalidInput("--all only engages kill switches; release each with `rollout unkill -w ID`.")
    if workflow is not None:
        raise InvalidInput("give --workflow/-w ID or --all, not both.")
    if k8s_configmap or settings(ctx).flags_s3:
        raise InvalidInput(
            "--all cannot publish to one --k8s-configmap/--k8s-featureflag/--flags-s3 target (each workflow "
            "has its own flag document); kill each workflow with -w ID and its own target, or use --all for "
            "the local flag files."
        )
    dirs = bundle_dirs()
    if not dirs:
        raise InvalidInput("no workflow bundle under workflows/: nothing to kill.")
    outcomes: dict[str, Outcome] = {}
    errors: dict[str, RolloutError] = {}
    for path in dirs:
        try:
            service, _ = service_for(ctx, path)
            name, who = _kill_actor(ctx, service, **identity)
            outcomes[service.workflow.id] = service.kill(operator=name, reason=reason, actor=who)
        except RolloutError as exc:  # the others must still be killed
            errors[path.name] = exc
    code = max((e.exit_code for e in errors.values()), default=0)
    if json_output:
        print_json(
            {
                "ok": not errors,
                "action": "kill",
                "workflows": {k: o.to_dict() for k, o in outcomes.items()},
                "errors": {
                    k: {"type": type(e).__name__, "message": str(e), "exit_code": e.exit_code}
                    for k, e in errors.items()
                },
            }
        )
    else:
        for workflow_id, outcome in outcomes.items():
            out.print(f"[bold]{workflow_id}[/]", highlight=False)
            print_outcome(outcome)
        for workflow_id, exc in errors.items():
            err.print(f"[bold red]error:[/] {workflow_id}: {exc}", highlight=False)
    if code:
        raise typer.Exit(code)


@reports_errors
def reconcile(
    ctx: typer.Context,
    workflow: Path | None = WorkflowOption,
    k8s_configmap: str | None = K8sOption,
    k8s_featureflag: str | None = K8sFeatureFlagOption,
    json_output: bool = JsonOption,
) -> None:
    """Repair and roll back what failed (idempotent; for cron).

    Completes interrupted commands, rolls back live releases whose latest eval FAILED (turning
    the workflow off when no stable release passes) and re-renders the flag file."""
    service, _ = service_for(ctx, workflow, None, k8s_configmap, k8s_featureflag)
    report: ReconcileReport = service.reconcile()
    if json_output:
        print_json(report.to_dict())
    else:
        for note in report.notes:
            out.print(f"[cyan]repair:[/] {note}", highlight=False)
        for outcome in report.outcomes:
            print_outcome(outcome)
        if not report.outcomes:
            out.print("nothing to roll back: no live release has a failing latest eval")
        for note in report.no_fresh_evidence:
            out.print(f"[yellow]{escape(note)}[/]", highlight=False)
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
    json_output: bool = JsonOption,
) -> None:
    """The control-plane audit chain, oldest first."""
    service, _ = service_for(ctx, workflow)
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
            release = short(item.release) if item.release else ""
            table.add_row(str(item.seq), item.time, item.operator, item.action, release, item.reason or "")
    out.print(table)


@reports_errors
def audit_verify(
    ctx: typer.Context,
    workflow: Path | None = WorkflowOption,
    json_output: bool = JsonOption,
) -> None:
    """Re-walk the hash chain against the state's head.

    Exit 1 naming the first bad seq; also checks the state is what the head record says."""
    service, _ = service_for(ctx, workflow)
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


@reports_errors
def workflows(ctx: typer.Context, json_output: bool = JsonOption) -> None:
    """List every workflow bundle: stable and candidate release, cohorts, kill switch, last eval.

    Read-only. A bundle whose state or evals cannot be read is listed with the error (exit 0
    still: the list is for finding the workflow to act on)."""
    from controller.bundle.workspace import bundle_dirs
    from controller.errors import RolloutError
    from controller.service.evidence_sources import latest_evaluated

    rows: list[dict[str, Any]] = []
    for path in bundle_dirs():
        row: dict[str, Any] = {"workflow": path.name, "path": str(path)}
        try:
            service, bundle = service_for(ctx, path)
            wf = service.workflow
            state = service.load(repair=False).state
            last = latest_evaluated(service.store, wf.id)
        except RolloutError as exc:
            rows.append({**row, "error": str(exc)})
            continue
        row.update(
            workflow=wf.id,
            name=wf.name,
            use_case=wf.use_case,
            valid=bundle is not None,
            stable=state.stable,
            candidate=None
            if state.candidate is None
            else {"release": state.candidate.release, "cohorts": list(state.candidate.cohorts)},
            served=served(state),
            cohorts=[c.name for c in wf.rollout.cohorts],
            kill_switch={"engaged": state.kill.engaged or service.kill_pending() is not None, "by": state.kill.by},
            last_eval=None
            if last is None
            else {
                "release": last.digest,
                "verdict": str(last.verdict.value),
                "finished_at": iso(last.finished_at),
                "adapter": last.model.get("adapter"),
            },
        )
        rows.append(row)
    if json_output:
        print_json({"ok": True, "workflows": rows})
        return
    table = Table(title="workflows")
    for col in ("workflow", "use case", "stable", "candidate", "kill switch", "last eval"):
        table.add_column(col, overflow="fold")
    for row in rows:
        if "error" in row:
            table.add_row(row["workflow"], "", "", "", "", f"[red]{row['error']}[/]")
            continue
        cand = row["candidate"]
        last = row["last_eval"]
        table.add_row(
            row["workflow"] + ("" if row["valid"] else " [red](invalid)[/]"),
            row["use_case"],
            short(row["stable"]),
            "none" if cand is None else f"{short(cand['release'])} ({', '.join(cand['cohorts']) or '-'})",
            "[bold red]ENGAGED[/]" if row["kill_switch"]["engaged"] else "released",
            "none" if last is None else f"{last['verdict']} {short(last['release'])} ({last['adapter']})",
        )
    out.print(table)


# --- registration ---------------------------------------------------------------------------------


def register(app: typer.Typer, audit: typer.Typer) -> None:
    """Add the rollout commands to ``app`` and ``verify`` to its ``audit`` group."""
    app.command("workflows")(workflows)
    app.command("status")(status)
    app.command("promote")(promote)
    app.command("rollback")(rollback)
    app.command("kill")(kill)
    app.command("unkill")(unkill)
    app.command("reconcile")(reconcile)
    app.command("history")(history)
    audit.command("verify")(audit_verify)
