"""Who is running a control-plane command: the ``Principal`` behind promote, approve, rollback, kill.

One rule, for every command (``resolve_principal``), in this order:

- ``--token JWT`` (or env ``ROLLOUT_TOKEN``, or the token ``rollout login`` cached under the state
  directory): an OIDC token of the bundle's IdP, verified exactly as the gateway verifies one
  (``controller.gateway.identity.IdentityVerifier``: signature against the IdP's JWKS, issuer,
  audience, lifetime, verified email domain), except that no workflow user group is required:
  the bundle's ``access`` decides who may operate or approve. -> ``source="oidc"``.
- ``--operator-from-sts``: the AWS STS caller identity, which must be one of the bundle's
  ``access.aws_principals`` (an assumed-role session of a listed role counts). -> ``"sts"``.
- ``--operator NAME`` (or, with nothing given, the OS user): a bare name, accepted only where the
  local dev IdP is the issuer (no ``--jwks``), recorded as ``source="asserted"``: it may operate
  by name (``rollout.operators``) but never approve, and every record says it was asserted.

The JWKS location decides whether the dev IdP is the issuer: none given means the keys under
``<state>/idp/``, the same default the gateway uses.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from controller.bundle.models import Workflow
from controller.core.approvals import Approval, Principal
from controller.errors import InvalidInput, RefusedError

__all__ = [
    "ASSERTED_ISSUER",
    "STS_ISSUER",
    "login_token_path",
    "new_approval",
    "resolve_principal",
    "verify_token",
]

ASSERTED_ISSUER = "asserted (free text, accepted because the local dev IdP is the issuer)"
STS_ISSUER = "aws-sts"


def login_token_path(state_dir: Path) -> Path:
    """Where ``rollout login`` keeps the token it obtained (mode 0600)."""
    return Path(state_dir) / "identity" / "token"


def verify_token(
    workflow: Workflow,
    token: str,
    *,
    state_dir: Path,
    jwks: str | None = None,
    clock: Callable[[], dt.datetime] | None = None,
) -> Principal:
    """The principal an IdP token proves; ``IdentityRejected`` (exit 3) or ``BackendUnavailable``."""
    from controller.gateway.identity import IdentityVerifier
    from controller.service.compose import StatePaths, jwks_source

    kwargs: dict[str, Any] = {"max_lifetime": workflow.sso.idp.max_token_lifetime, "require_group": False}
    if clock is not None:
        kwargs["clock"] = clock
    verifier = IdentityVerifier(
        workflow.sso, workflow.personal_accounts, jwks_source(jwks, StatePaths(state_dir)), **kwargs
    )
    who = verifier.verify(token.strip())
    return Principal(who.issuer, who.subject, who.email, who.groups, "oidc")


def _sts_principal(workflow: Workflow, sts_client: Any) -> Principal:
    from controller.service.rollout import sts_operator

    caller = sts_operator(sts_client)
    assert caller.arn is not None
    if workflow.access is None:
        raise InvalidInput(
            f"workflow {workflow.id} has no `access` section, so AWS caller {caller.arn} maps to no principal."
        )
    listed = workflow.access.aws_principal(caller.arn)
    if listed is None:
        raise RefusedError(
            f"the AWS caller {caller.arn} is not listed in access.aws_principals of {workflow.id}; "
            "it may not act on this workflow."
        )
    return Principal(STS_ISSUER, caller.arn, listed.email, tuple(listed.groups), "sts", caller.arn)


def resolve_principal(
    workflow: Workflow,
    state_dir: Path,
    *,
    token: str | None = None,
    operator: str | None = None,
    from_sts: bool = False,
    jwks: str | None = None,
    sts_client: Any = None,
    clock: Callable[[], dt.datetime] | None = None,
) -> Principal:
    """Who is acting (see the module docstring). ``InvalidInput`` (exit 2) for a bad combination."""
    given = [
        name
        for name, value in (("--token", token), ("--operator", operator), ("--operator-from-sts", from_sts))
        if value
    ]
    if len(given) > 1:
        raise InvalidInput(f"give one of --token, --operator or --operator-from-sts, not {' and '.join(given)}.")
    if token:
        return verify_token(workflow, token, state_dir=state_dir, jwks=jwks, clock=clock)
    if from_sts:
        return _sts_principal(workflow, sts_client)
    if operator is None:
        env = os.environ.get("ROLLOUT_TOKEN")
        cached = login_token_path(state_dir)
        if env:
            return verify_token(workflow, env, state_dir=state_dir, jwks=jwks, clock=clock)
        if cached.exists():
            from controller.gateway.identity import IdentityRejected

            kept = cached.read_text(encoding="ascii")
            try:
                return verify_token(workflow, kept, state_dir=state_dir, jwks=jwks, clock=clock)
            except IdentityRejected as exc:
                hint = f"{exc.message} (the token `rollout login` kept in {cached}); run `rollout login` again"
                raise IdentityRejected(exc.reason, hint) from None
    if jwks is not None:
        raise InvalidInput(
            "with a real IdP (--jwks) a bare --operator name proves nothing: authenticate with --token "
            "(or ROLLOUT_TOKEN, `rollout login`) or --operator-from-sts."
        )
    from controller.service.rollout import resolve_operator

    name = resolve_operator(operator).name  # the OS user when no name is given; reserved names refused
    return Principal(ASSERTED_ISSUER, name, None, (), "asserted")


def new_approval(
    workflow: Workflow, approver: Principal, release: str, cohort: str, now: dt.datetime, reason: str | None = None
) -> Approval:
    """The approval ``approver`` gives now; it counts for the bundle's ``access.approval_ttl``."""
    if workflow.access is None:
        raise InvalidInput(f"workflow {workflow.id} has no `access` section: nobody is named who may approve.")
    return Approval(approver, release, cohort, now, now + workflow.access.approval_ttl, reason)
