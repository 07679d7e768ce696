"""``rollout``: the operator's command line (typer + rich), ``--json`` on every command.

Exit codes (documented in the README): 0 ok, 1 a check found a problem (e.g. audit verify),
2 invalid input or usage, 3 refused by a gate, 4 conflict with a concurrent change,
5 backend unavailable. Every ``RolloutError`` becomes one clear paragraph and its exit code;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from controller.bundle.models import Bundle, find_bundle
from controller.cli.common import (
    AdapterOption,
    JsonErrorsGroup,
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
    cls=JsonErrorsGroup,
)


def _version(value: bool) -> None:
    if value:
        from controller import __version__

        sys.stdout.write(f"rollout {__version__}\n")
        raise typer.Exit()


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
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    ctx.obj = Settings(state=state, store_url=store, flags_s3=flags_s3)



def _validate_summary(bundle: Bundle) -> dict[str, Any]:
    wf = bundle.workflow
    return {
        "forbidden_categories": {f.category.value: f.action.value for f in wf.data_boundaries.forbidden},
        "patterns": len(wf.data_boundaries.patterns),
        "prompts": sorted(bundle.prompts),
        "golden_cases": len(bundle.golden.cases),
        "corpus_documents": len(bundle.corpus),
        "cohorts": [c.name for c in wf.rollout.cohorts],
        "flags_file": str(bundle.flags_path),
    }


@app.command()
@reports_errors
def validate(workflow: Path | None = WorkflowOption, json_output: bool = JsonOption) -> None:
    """Validate workflow bundles: every file, field and cross-reference, and the rules between bundles.

    Without --workflow every bundle under workflows/ is validated; all problems are reported at once."""
    from controller.bundle.documents import bundle_warnings  # corpus/templates: instruction-like text
    from controller.bundle.workspace import bundle_dirs, load_bundles

    dirs = bundle_dirs()
    if workflow is None and len(dirs) > 1:
        bundles = load_bundles(dirs)
    else:
        path = find_bundle(workflow)
        bundles = load_bundles(sorted({d.resolve() for d in dirs} | {path.resolve()}), checked=path)
    if json_output:
        docs = [
            {
                "workflow": b.workflow.id,
                "path": str(b.root),
                "summary": _validate_summary(b),
                "warnings": [str(w) for w in bundle_warnings(b)],
            }
            for b in bundles
        ]
        payload: dict[str, Any] = {"ok": True, **docs[0]} if len(docs) == 1 else {"ok": True}
        payload["workflows"] = docs
        print_json(payload)
        return
    for bundle in bundles:
        summary = _validate_summary(bundle)
        table = Table(title=f"{bundle.workflow.id}: valid", show_header=True)
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
        table.add_row("document warnings", "\n".join(str(w) for w in bundle_warnings(bundle)) or "none")
        out.print(table)


class PolicyFormat(StrEnum):
    MD = "md"
    JSON = "json"


@app.command()
@reports_errors
def policy(
    workflow: Path | None = WorkflowOption,
    format: PolicyFormat = typer.Option(PolicyFormat.MD, "--format", help="md, or json (the same as --json)."),
    json_output: bool = JsonOption,
) -> None:
    """Render the one-page published policy and approved tools list from the bundle."""
    from controller.bundle.policy import policy_document, render_markdown

    bundle = load(workflow)
    if json_output or format is PolicyFormat.JSON:
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
    """List stored releases: digest, workflow, adapter and model, prompt version (each re-verified)."""
    from controller.core.release import list_releases, load_release

    store = state_store(ctx)
    digests = list_releases(store)
    items = []
    for digest in digests:
        m = load_release(store, digest).manifest
        items.append(
            {
                "digest": digest,
                "workflow": m["workflow"],
                "adapter": m["model"]["adapter"],
                "model": m["model"]["id"],
                "prompt": f"{m['prompt']['id']} v{m['prompt']['version']}",
            }
        )
    if json_output:
        print_json({"releases": digests, "items": items})
        return
    table = Table(title="releases")
    for col in ("digest", "workflow", "adapter", "model", "prompt"):
        table.add_column(col, overflow="fold")
    for item in items:
        table.add_row(item["digest"][:12], item["workflow"], item["adapter"], item["model"], item["prompt"])
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
    codes = {"refused": 3, "blocked": 3, "disabled": 3}  # disabled: the kill switch is engaged
    if json_output:
        print_json({"ok": response.decision.value not in codes, **response.to_dict()})
    else:
        colour = {"answered": "green", "blocked": "red", "refused": "red"}.get(response.decision.value, "yellow")
        out.print(f"[bold {colour}]{response.decision.value}[/]", highlight=False)
        out.print(response.answer, markup=False, highlight=False)
        if response.citations:
            out.print(f"sources: {', '.join(response.citations)}", highlight=False)
        if response.release:
            out.print(f"release: {response.release[:12]}  model: {response.model or '-'}", highlight=False)
        if response.requires_human_verification:
            out.print("[bold yellow]DRAFT:[/] a person must verify this before it is used or sent", highlight=False)
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
            # Name which findings block and which were only redacted: a redact-only type is never "BLOCKED".
            blocking = set(result.blocked_categories) if result.blocked else set()
            hard = [f for f in result.findings if f.category in blocking]
            soft = [f for f in result.findings if f.category not in blocking]
            for label, group in (("BLOCKED", hard), ("redacted", soft)):
                if group:
                    summary = ", ".join(f"{k} x{v}" for k, v in summarize(group).items())
                    err.print(f"{label}: {summary}", highlight=False)
    if result.blocked:
        raise typer.Exit(3)


def _register_subcommands() -> None:
    from controller.cli.eval import eval_app
    from controller.cli.evidence import register as register_evidence
    from controller.cli.identity import register as register_identity
    from controller.cli.init import init
    from controller.cli.rollout import register as register_rollout

    app.add_typer(eval_app, name="eval")
    app.command("init")(init)
    audit = typer.Typer(help="The control-plane audit chain and the auditor's report.", no_args_is_help=True)
    app.add_typer(audit, name="audit")
    register_rollout(app, audit)
    register_evidence(app, audit)
    register_identity(app)


_register_subcommands()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
