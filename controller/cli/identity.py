"""Identity commands of ``rollout``: ``login``, ``whoami``, ``approve`` and ``dev-idp``; and the identity options every
control-plane command shares (``--token``/``ROLLOUT_TOKEN``, ``--operator``, ``--operator-from-sts``,
``--jwks``). ``register(app)`` adds the commands (``controller.cli``).

Who is acting is decided once, by ``controller.service.identity.resolve_principal``: an IdP token
(verified like the gateway verifies one), a listed AWS STS caller, or (only where the local dev IdP
is the issuer) a bare ``--operator`` name that is recorded as asserted and can never approve.

Exit codes: 0 done, 2 invalid input (a bad option combination, a malformed digest), 3 refused
(a token that does not verify, expired, of someone who is not an approver; a bare name), 5 the
IdP's keys or STS cannot be reached.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from controller.bundle.models import Workflow
from controller.cli.common import (
    CohortName,
    JsonOption,
    WorkflowOption,
    err,
    flag,
    out,
    print_json,
    reports_errors,
    settings,
)
from controller.core.approvals import Principal
from controller.errors import InvalidInput

__all__ = ["JwksOption", "OperatorOption", "StsOption", "TokenOption", "principal_for", "register"]

TokenOption = typer.Option(
    None,
    "--token",
    envvar="ROLLOUT_TOKEN",
    help="An OIDC token of the bundle's IdP proving who you are (env ROLLOUT_TOKEN; or `rollout login`).",
)
OperatorOption = typer.Option(
    None,
    "--operator",
    envvar="ROLLOUT_OPERATOR",
    help="A bare name (env ROLLOUT_OPERATOR; default: the OS user); only with the local dev IdP, recorded as "
    "asserted, never approves.",
)
StsOption = flag("--operator-from-sts", help="Act as the AWS STS caller identity (one of access.aws_principals).")
JwksOption = typer.Option(
    None, "--jwks", envvar="ROLLOUT_JWKS", help="The IdP's JWKS file or URL (default: the local dev IdP)."
)


def principal_for(
    ctx: typer.Context,
    workflow: Workflow,
    *,
    token: str | None,
    operator: str | None,
    from_sts: bool,
    jwks: str | None,
) -> Principal:
    from controller.service.identity import resolve_principal

    return resolve_principal(
        workflow, settings(ctx).state, token=token, operator=operator, from_sts=from_sts, jwks=jwks
    )


def _principal_table(who: Principal) -> Table:
    table = Table(title="who you are to the control plane", show_header=False)
    table.add_column("field")
    table.add_column("value")
    for name, value in who.to_dict().items():
        table.add_row(name, ", ".join(value) if isinstance(value, list) else str(value))
    table.add_row(
        "authenticated", "yes" if who.authenticated else "NO (a bare name: may operate by name, never approve)"
    )
    return table


@reports_errors
def whoami(
    ctx: typer.Context,
    token: str | None = TokenOption,
    operator: str | None = OperatorOption,
    from_sts: bool = StsOption,
    jwks: str | None = JwksOption,
    workflow: Path | None = WorkflowOption,
    json_output: bool = JsonOption,
) -> None:
    """Show the principal the control plane sees, and whether it may operate or approve."""
    from controller.cli.common import load_policy
    from controller.core.approvals import approver_problems, operator_problems

    _, _, wf, _ = load_policy(workflow, require_workflow=True)
    assert wf is not None
    who = principal_for(ctx, wf, token=token, operator=operator, from_sts=from_sts, jwks=jwks)
    may = {}
    if wf.access is not None:
        may = {"operate": operator_problems(wf.access, who), "approve": approver_problems(wf.access, who)}
    if json_output:
        print_json({"ok": True, "principal": who.to_dict(), "authenticated": who.authenticated, "not_allowed": may})
        return
    out.print(_principal_table(who))
    for what, problems in may.items():
        out.print(f"may {what}: " + ("yes" if not problems else f"no ({'; '.join(problems)})"), highlight=False)


@reports_errors
def approve(
    ctx: typer.Context,
    release: str | None = typer.Option(
        None,
        "--release",
        help="The release digest (or a unique prefix) you approve (default: the latest evaluated release, "
        "shown first).",
    ),
    cohort: CohortName = typer.Option(..., "--cohort", help="The cohort you approve it for."),
    reason: str | None = typer.Option(None, "--reason", help="Why; recorded in the audit chain."),
    token: str | None = TokenOption,
    operator: str | None = OperatorOption,
    from_sts: bool = StsOption,
    jwks: str | None = JwksOption,
    workflow: Path | None = WorkflowOption,
    json_output: bool = JsonOption,
) -> None:
    """Approve one release digest for one cohort, as yourself (an authenticated approver).

    Recorded in the audit chain with your verified identity (issuer, subject, email), the digest,
    the cohort, the time and the expiry (access.approval_ttl). A later promote of exactly that
    digest to that cohort by someone else counts it. Refused (exit 3) with every reason."""
    from controller.cli.rollout import describe_target, promotion_target, service_for
    from controller.cli.rollout_output import finish
    from controller.service.identity import new_approval

    service, bundle = service_for(ctx, workflow)
    who = principal_for(ctx, service.workflow, token=token, operator=operator, from_sts=from_sts, jwks=jwks)
    target = promotion_target(service, bundle, release, None)
    digest = target["release"]
    if digest is None:
        raise InvalidInput("no release to approve: the bundle does not validate and no release was evaluated.")
    err.print(f"{service.workflow.id}: approve {describe_target(target)} for {cohort.value}", highlight=False)
    approval = new_approval(service.workflow, who, digest, cohort.value, service.clock(), reason)
    finish(service.approve(approval, reason=reason), json_output)


@reports_errors
def login(
    ctx: typer.Context,
    idp: str | None = typer.Option(
        None, "--idp", envvar="ROLLOUT_IDP_URL", help="The IdP's base URL for discovery (default: the bundle's issuer)."
    ),
    client_id: str = typer.Option("ai-rollout-cli", "--client-id", envvar="ROLLOUT_CLIENT_ID"),
    jwks: str | None = JwksOption,
    workflow: Path | None = WorkflowOption,
    json_output: bool = JsonOption,
) -> None:
    """Sign in with the OAuth 2.0 device authorization grant; cache the verified token.

    Shows a URL and a code to enter in a browser, polls the IdP until you have signed in, verifies
    the ID token like every other (signature, issuer, audience, lifetime) and keeps it, mode 0600,
    under the state directory, where every command finds it (until it expires)."""
    from controller.adapters.atomic import write_atomic
    from controller.adapters.device_login import device_login
    from controller.cli.common import err, load_policy
    from controller.service.identity import login_token_path, verify_token

    _, _, wf, _ = load_policy(workflow, require_workflow=True)
    assert wf is not None

    def show(grant: object) -> None:
        g = dict(grant)  # type: ignore[call-overload]
        where = g.get("verification_uri_complete") or g.get("verification_uri")
        err.print(f"To sign in, open {where} and enter the code [bold]{g.get('user_code')}[/].", highlight=False)

    token = device_login(idp or wf.sso.idp.issuer, client_id, show=show)
    state = settings(ctx).state
    who = verify_token(wf, token, state_dir=state, jwks=jwks)
    path = login_token_path(state)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_atomic(path, token.encode("ascii"), mode=0o600)
    if json_output:
        print_json({"ok": True, "principal": who.to_dict(), "token_file": str(path)})
    else:
        out.print(f"signed in as [bold]{who.name}[/] ({who.issuer}); token kept in {path}", highlight=False)


@reports_errors
def dev_idp(
    ctx: typer.Context,
    port: int = typer.Option(8765, "--port"),
    workflow: Path | None = WorkflowOption,
) -> None:
    """Serve the local dev IdP's device endpoint on 127.0.0.1 for `rollout login --idp URL`."""
    from controller.adapters.devidp import DevIdp, DevIdpServer
    from controller.cli.common import err, load_policy
    from controller.service.compose import StatePaths

    _, _, wf, _ = load_policy(workflow, require_workflow=True)
    assert wf is not None
    server = DevIdpServer(
        DevIdp(StatePaths(settings(ctx).state).idp), issuer=wf.sso.idp.issuer, audience=wf.sso.idp.audience, port=port
    )
    err.print(
        f"dev IdP on {server.url}: `rollout login --idp {server.url}`, "
        f"then sign in at {server.url}/device?user_code=CODE&email=YOU&groups=G"
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


def register(app: typer.Typer) -> None:
    app.command("login")(login)
    app.command("whoami")(whoami)
    app.command("approve")(approve)
    app.command("dev-idp")(dev_idp)
