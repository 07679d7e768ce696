"""Who runs a command: the operator named on the command line, the OS user, or the STS caller.

``--operator``, else the OS user (``getpass.getuser()``). With AWS the
accountable identity is the STS caller: ``sts_operator()`` calls ``sts:GetCallerIdentity`` and
uses the role session name (assumed roles, e.g. IAM Identity Center, where it is the SSO user
name) or the IAM user name as the operator, recording the full ARN in the audit evidence. A
role session name is chosen by whoever assumes the role, so only grant ``sts:AssumeRole`` on
the operators' role through the IdP.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass, field
from typing import Any

from controller.core.gates import SYSTEM_OPERATORS
from controller.errors import BackendUnavailable, InvalidInput, RolloutError

__all__ = ["CallerIdentity", "operator_from_arn", "resolve_operator", "sts_operator"]


@dataclass(frozen=True)
class CallerIdentity:
    name: str
    arn: str | None = None
    source: str = "os"  # "flag" | "os" | "sts"
    extra: dict[str, Any] = field(default_factory=dict)


def operator_from_arn(arn: str) -> str:
    """``...:assumed-role/Role/session`` -> session; ``...:user/path/name`` -> name; ``...:root`` -> root."""
    resource = arn.split(":", 5)[-1] if arn.count(":") >= 5 else ""
    if not resource:
        raise InvalidInput(f"not an AWS ARN: {arn!r}.")
    if resource == "root":
        return "root"
    name = resource.rsplit("/", 1)[-1]
    if not name:
        raise InvalidInput(f"cannot tell an operator name from ARN {arn!r}.")
    return name


def sts_operator(client: Any = None) -> CallerIdentity:
    """The STS caller identity (``sts:GetCallerIdentity``) as the operator."""
    try:
        if client is None:
            import boto3
            from botocore.config import Config

            client = boto3.client("sts", config=Config(connect_timeout=5, read_timeout=10, retries={"max_attempts": 2}))
        arn = client.get_caller_identity()["Arn"]
    except RolloutError:
        raise
    except Exception as exc:  # botocore raises many types; all mean "no identity"
        raise BackendUnavailable(f"cannot get the STS caller identity: {exc}.") from exc
    return CallerIdentity(operator_from_arn(arn), arn, "sts")


def resolve_operator(explicit: str | None = None, *, from_sts: bool = False, sts_client: Any = None) -> CallerIdentity:
    if explicit is not None and from_sts:
        raise InvalidInput("give --operator NAME or --operator-from-sts, not both.")
    if from_sts:
        identity = sts_operator(sts_client)
    elif explicit is not None:
        identity = CallerIdentity(explicit.strip(), None, "flag")
    else:
        try:
            identity = CallerIdentity(getpass.getuser(), None, "os")
        except (OSError, KeyError) as exc:
            raise InvalidInput("cannot tell who you are; pass --operator NAME.") from exc
    if not identity.name:
        raise InvalidInput("the operator name is empty; pass --operator NAME.")
    if identity.name in SYSTEM_OPERATORS:
        raise InvalidInput(f"operator {identity.name!r} is reserved for automatic actions.")
    return identity
