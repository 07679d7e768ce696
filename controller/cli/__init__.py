"""``rollout``: the operator's command line (typer + rich), ``--json`` on every command.

Exit codes (documented in the README): 0 ok, 1 a check found a problem (e.g. audit verify),
2 invalid input or usage, 3 refused by a gate, 4 conflict with a concurrent change,
5 backend unavailable. Every ``RolloutError`` becomes one clear paragraph and its exit code;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from controller.bundle.models import Bundle
from controller.cli.common import (
    AdapterOption,
    JsonOption,
    Settings,
    WorkflowOption,
    err,
    load,
    out,
    print_json,
    reports_errors,
    settings,
    state_store,
)

__all__ = ["app", "main"]

app = typer.Typer(
    name="rollout",
    help="Put one AI workflow on sanctioned, auditable rails.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _global(
    ctx: typer.Context,
    state: Path = typer.Option(
        Path(".rollout"), "--state", envvar="ROLLOUT_STATE", help="State directory (env ROLLOUT_STATE)."
    ),
    store: str | None = typer.Option(
        None,
        "--store",
        envvar="ROLLOUT_STORE",
        help="Store for releases, evals, state and the audit chain: a directory, file:///dir or "
        "s3://bucket/prefix (env ROLLOUT_STORE; default: the state directory).",
    ),
    flags_s3: str | None = typer.Option(
        None,
        "--flags-s3",
        envvar="ROLLOUT_FLAGS_S3",
        help="Also publish the flag document to s3://bucket/key, where the gateway Lambdas read it "
        "(env ROLLOUT_FLAGS_S3).",
    ),
) -> None:
    ctx.obj = Settings(state=state, store_url=store, flags_s3=flags_s3)



@app.command()
@reports_errors
def validate(workflow: Path | None = WorkflowOption, json_output: bool = JsonOption) -> None:
    """Validate a workflow bundle: every file, every field, every cross-reference."""
    bundle = load(workflow)
    wf = bundle.workflow
    summary = {
        "forbidden_categories": {f.category.value: f.action.value for f in wf.data_boundaries.forbidden},
        "patterns": len(wf.data_boundaries.patterns),
        "prompts": sorted(bundle.prompts),
        "golden_cases": len(bundle.golden.cases),
        "corpus_documents": len(bundle.corpus),
        "cohorts": [c.name for c in wf.rollout.cohorts],
        "flags_file": str(bundle.flags_path),
    }
    if json_output:
        print_json({"ok": True, "workflow": wf.id, "path": str(bundle.root), "summary": summary})
        return
    table = Table(title=f"{wf.id}: valid", show_header=True)
    table.add_column("check")
    table.add_column("result")
    categories = summary["forbidden_categories"]
    table.add_row("forbidden inputs", ", ".join(f"{k} ({v})" for k, v in categories.items()))
    table.add_row("bundle patterns", str(summary["patterns"]))
    table.add_row("prompt templates", ", ".join(summary["prompts"]))
    table.add_row("golden cases", str(summary["golden_cases"]))
    table.add_row("corpus documents", str(summary["corpus_documents"]))
    table.add_row("cohorts", " -> ".join(summary["cohorts"]))
    table.add_row("flags", summary["flags_file"])
    out.print(table)


@app.command()
@reports_errors
def policy(
    workflow: Path | None = WorkflowOption,
    format: str = typer.Option("md", "--format", help="md | json"),
    json_output: bool = JsonOption,
) -> None:
    """Render the one-page published policy and approved tools list from the bundle."""
    from controller.bundle.policy import policy_document, render_markdown
    from controller.errors import InvalidInput

    if format not in ("md", "json"):
        raise InvalidInput(f"--format {format!r}: choose md or json.")
    bundle = load(workflow)
    if json_output or format == "json":
        print_json(policy_document(bundle))
    else:
        sys.stdout.write(render_markdown(bundle))


# --- releases -----------------------------------------------------------------------------

release_app = typer.Typer(help="Content-addressed snapshots of the bundle: what is served and judged.")
app.add_typer(release_app, name="release")



def _release_dict(release: Any) -> dict[str, Any]:
    return {"digest": release.digest, "manifest": release.manifest}


@release_app.command("create")
@reports_errors
def release_create(
    ctx: typer.Context,
    workflow: Path | None = WorkflowOption,
    adapter: str | None = AdapterOption,
    json_output: bool = JsonOption,
) -> None:
    """Snapshot the current bundle into the state store (same content, same digest)."""
    from controller.core.release import create_release, load_release, model_choice

    bundle = load(workflow)
    store = state_store(ctx)
    digest, created = create_release(store, bundle, model_choice(bundle.workflow, adapter))
    release = load_release(store, digest)
    if json_output:
        print_json({"ok": True, "created": created, **_release_dict(release)})
        return
    verb = "created" if created else "already stored"
    out.print(f"release [bold]{digest}[/] {verb} ({release.model.adapter}: {release.model.model_id})")


@release_app.command("show")
@reports_errors
def release_show(
    ctx: typer.Context,
    digest: str | None = typer.Argument(None, help="Digest or unique prefix (default: the current bundle's)."),
    workflow: Path | None = WorkflowOption,
    adapter: str | None = AdapterOption,
    json_output: bool = JsonOption,
) -> None:
    """Show a stored release's manifest (verified against its digest)."""
    from controller.core.release import current_digest, load_release, model_choice, resolve_digest
    from controller.errors import InvalidInput

    store = state_store(ctx)
    if digest is None:
        bundle = load(workflow)
        digest = current_digest(bundle, model_choice(bundle.workflow, adapter))
        if store.get(f"releases/{digest}/manifest.json") is None:
            raise InvalidInput(
                f"the current bundle's release {digest[:12]} is not stored yet; run `rollout release create`."
            )
    release = load_release(store, resolve_digest(store, digest))
    if json_output:
        print_json(_release_dict(release))
        return
    m = release.manifest
    table = Table(title=f"release {release.digest}")
    table.add_column("field")
    table.add_column("value")
    table.add_row("workflow", m["workflow"])
    table.add_row("package version", m["package_version"])
    table.add_row("model", f"{m['model']['adapter']}: {m['model']['id']}")
    table.add_row("prompt", f"{m['prompt']['id']} v{m['prompt']['version']} ({m['prompt']['sha256'][:12]})")
    for name, meta in m["files"].items():
        table.add_row(name, meta["sha256"][:16])
    table.add_row("corpus", f"{len(m['corpus']['documents'])} documents, digest {m['corpus']['digest'][:16]}")
    out.print(table)


@release_app.command("list")
@reports_errors
def release_list(ctx: typer.Context, json_output: bool = JsonOption) -> None:
    """List stored releases."""
    from controller.core.release import list_releases

    digests = list_releases(state_store(ctx))
    if json_output:
        print_json({"releases": digests})
        return
    table = Table(title="releases")
    table.add_column("digest")
    for d in digests:
        table.add_row(d)
    out.print(table)


# --- the data plane --------------------------------------------------------------------------


@app.command("dev-token")
@reports_errors
def dev_token(
    ctx: typer.Context,
    email: str = typer.Option(..., "--email", help="The user's email."),
    groups: str = typer.Option("", "--groups", help="Comma-separated groups."),
    ttl_minutes: int = typer.Option(60, "--ttl-minutes", min=1, max=24 * 60),
    workflow: Path | None = WorkflowOption,
    json_output: bool = JsonOption,
) -> None:
    """Mint a token from the local dev IdP (its key lives in the state directory)."""
    token = _mint(ctx, load(workflow), email, groups, ttl_minutes)
    if json_output:
        print_json({"token": token})
    else:
        sys.stdout.write(token + "\n")


def _mint(ctx: typer.Context, bundle: Bundle, email: str, groups: str, ttl_minutes: int = 60) -> str:
    import datetime as dt

    from controller.adapters.devidp import DevIdp
    from controller.service.compose import StatePaths

    idp = DevIdp(StatePaths(settings(ctx).state).idp)
    idp.ensure()
    return idp.mint(
        email,
        [g for g in groups.split(",") if g],
        issuer=bundle.workflow.sso.idp.issuer,
        audience=bundle.workflow.sso.idp.audience,
        ttl=dt.timedelta(minutes=ttl_minutes),
    )


JwksOption = typer.Option(
    None, "--jwks", envvar="ROLLOUT_JWKS", help="IdP JWKS file or URL (default: the local dev IdP)."
)


@app.command()
@reports_errors
def ask(
    ctx: typer.Context,
    question: str = typer.Argument(..., help="The question."),
    token: str | None = typer.Option(None, "--token", help="An OIDC JWT from the IdP."),
    as_email: str | None = typer.Option(None, "--as", help="Mint a local dev token for this email."),
    groups: str = typer.Option("", "--groups", help="Groups for --as, comma-separated."),
    workflow: Path | None = WorkflowOption,
    jwks: str | None = JwksOption,
    json_output: bool = JsonOption,
) -> None:
    """Ask the sanctioned workflow a question, through the full gateway path."""
    from controller.errors import InvalidInput
    from controller.service.compose import build_gateway

    if (token is None) == (as_email is None):
        raise InvalidInput("give exactly one of --token JWT or --as EMAIL (with --groups).")
    bundle = load(workflow)
    if as_email is not None:
        token = _mint(ctx, bundle, as_email, groups)
    gateway = build_gateway(bundle, settings(ctx).state, jwks=jwks, store=state_store(ctx))
    response = gateway.ask(question, token)
    gateway.sink.close()
    if json_output:
        print_json(response.to_dict())
    else:
        colour = {"answered": "green", "blocked": "red", "refused": "red"}.get(response.decision.value, "yellow")
        out.print(f"[bold {colour}]{response.decision.value}[/]", highlight=False)
        out.print(response.answer, markup=False, highlight=False)
        if response.citations:
            out.print(f"sources: {', '.join(response.citations)}", highlight=False)
        if response.release:
            out.print(f"release: {response.release[:12]}  model: {response.model or '-'}", highlight=False)
    codes = {"refused": 3, "blocked": 3}
    if response.decision.value in codes:
        raise typer.Exit(codes[response.decision.value])


@app.command()
@reports_errors
def serve(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8080, "--port"),
    workers: int = typer.Option(0, "--workers", help="Worker processes (default: the number of CPU cores)."),
    workflow: Path | None = WorkflowOption,
    jwks: str | None = JwksOption,
) -> None:
    """Serve the gateway (POST /v1/ask, the OpenAI-compatible /v1/chat/completions) until interrupted."""
    from controller.bundle.models import find_bundle
    from controller.gateway.server import ServeConfig
    from controller.gateway.server import serve as run

    load(workflow)  # a broken bundle is reported here, once, not by every worker
    s = settings(ctx)
    config = ServeConfig(
        workflow=str(find_bundle(workflow)), state=str(s.state), store_url=s.store_url, jwks=jwks,
        host=host, port=port, workers=workers or os.cpu_count() or 1,
    )
    err.print(f"serving on http://{host}:{port} (/v1/ask, /v1/chat/completions) with {config.workers} worker(s)")
    run(config)


@app.command()
@reports_errors
def redact(
    source: str = typer.Argument("-", help="A file, or - for stdin."),
    workflow: Path | None = WorkflowOption,
    json_output: bool = JsonOption,
) -> None:
    """Apply the bundle's data boundaries to text: redacted text out, findings without values."""
    from controller.boundaries.redactor import bundle_redactor, decode_input, summarize
    from controller.errors import InvalidInput

    bundle = load(workflow)
    if source == "-":
        data = sys.stdin.buffer.read()
    else:
        try:
            data = Path(source).read_bytes()
        except OSError as exc:
            raise InvalidInput(f"{source}: cannot read ({exc.strerror}).") from None
    result = bundle_redactor(bundle.workflow.data_boundaries).apply(decode_input(data))
    if json_output:
        print_json(result.to_json_dict())
    else:
        sys.stdout.write(result.text)
        if result.findings:
            summary = ", ".join(f"{k} x{v}" for k, v in summarize(result.findings).items())
            state = "BLOCKED" if result.blocked else "redacted"
            err.print(f"{state}: {summary}", highlight=False)
    if result.blocked:
        raise typer.Exit(3)


def _register_subcommands() -> None:
    from controller.cli.eval import eval_app
    from controller.cli.evidence import register as register_evidence
    from controller.cli.rollout import register as register_rollout

    app.add_typer(eval_app, name="eval")
    audit = typer.Typer(help="The control-plane audit chain and the auditor's report.", no_args_is_help=True)
    app.add_typer(audit, name="audit")
    register_rollout(app, audit)
    register_evidence(app, audit)


_register_subcommands()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
