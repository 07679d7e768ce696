"""Who may operate and who may approve a workflow's rollout: the bundle's ``access`` section.

People are named the way the IdP names them, never by a free string: a verified email address
and/or an IdP group (the ``groups`` claim of the same IdP the gateway trusts). A machine caller
(CI, the reconcile job) is an AWS principal, listed by ARN and mapped to the email and groups it
acts as; an assumed-role session of a listed role ARN is that principal::

    access:
      operators: {emails: [priya.natarajan@corp.example], groups: [ai-rollout-operators]}
      approvers: {emails: [dana.whitfield@corp.example], groups: [ai-rollout-approvers]}
      aws_principals:
        - arn: arn:aws:iam::123456789012:role/ci-release-bot
          email: ci-release-bot@corp.example
          groups: [ai-rollout-operators]
      approval_ttl: 24h      # an approval counts for this long after it was given

The rules that use it (who may do what, which approvals count) are pure functions in
``controller.core.approvals``.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

__all__ = ["Access", "AwsPrincipal", "PrincipalSet"]

_Email = Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
_Name = Annotated[str, Field(min_length=1)]
_Arn = Annotated[str, Field(pattern=r"^arn:aws[a-z-]*:(iam|sts)::[0-9]{12}:\S+$")]


def _duration(value: Any) -> dt.timedelta:
    from controller.bundle.models import parse_duration  # models imports this module

    return parse_duration(value)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class PrincipalSet(_Strict):
    """People by verified email (compared ASCII-case-insensitively) or by IdP group."""

    emails: list[_Email] = []
    groups: list[_Name] = []

    @model_validator(mode="after")
    def _someone(self) -> PrincipalSet:
        if not self.emails and not self.groups:
            raise ValueError("name at least one email or group")
        return self

    def admits(self, email: str | None, groups: tuple[str, ...] | list[str]) -> bool:
        mine = {e.lower() for e in self.emails}
        return (email is not None and email.lower() in mine) or not set(self.groups).isdisjoint(groups)


class AwsPrincipal(_Strict):
    """An AWS caller (``sts:GetCallerIdentity``) and the person or service it acts as."""

    arn: _Arn
    email: _Email
    groups: list[_Name] = []


class Access(_Strict):
    operators: PrincipalSet
    approvers: PrincipalSet
    aws_principals: list[AwsPrincipal] = []
    approval_ttl: Annotated[dt.timedelta, BeforeValidator(_duration)] = Field(
        default=dt.timedelta(hours=24), strict=False
    )

    @model_validator(mode="after")
    def _ttl(self) -> Access:
        if not dt.timedelta(minutes=1) <= self.approval_ttl <= dt.timedelta(days=30):
            raise ValueError("approval_ttl must be between 1m and 30d")
        return self

    def aws_principal(self, arn: str) -> AwsPrincipal | None:
        """The listed principal for a caller ARN: the ARN itself, or an assumed-role session
        (``arn:aws:sts::ACCT:assumed-role/ROLE/SESSION``) of a listed ``...:role/ROLE``."""
        for listed in self.aws_principals:
            if listed.arn == arn:
                return listed
        parts = arn.split(":", 5)
        if len(parts) == 6 and parts[2] == "sts" and parts[5].startswith("assumed-role/"):
            pieces = parts[5].split("/")
            if len(pieces) >= 3:
                role = f"arn:{parts[1]}:iam::{parts[4]}:role/{pieces[1]}"
                # an IAM role ARN may carry a path (role/path/NAME); the session ARN never does
                for listed in self.aws_principals:
                    head, _, name = listed.arn.rpartition("/")
                    if listed.arn == role or (head.startswith(role.rsplit("/", 1)[0]) and name == pieces[1]):
                        return listed
        return None
