"""Who owns the workflow and who may use it: owners, SSO (the IdP and its audience), personal accounts."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import Field, field_validator

from controller.bundle.fields import Duration, Email, NonEmpty, Strict

__all__ = [
    "AccountException",
    "Idp",
    "OperationalOwner",
    "Owners",
    "Person",
    "PersonalAccounts",
    "Sso",
]


class Person(Strict):
    name: NonEmpty
    email: Email
    title: str | None = None


class OperationalOwner(Person):
    team: Literal["SRE", "Eng Productivity", "Security", "Product"]


class Owners(Strict):
    executive: Person
    operational: OperationalOwner


class Idp(Strict):
    name: NonEmpty
    issuer: Annotated[str, Field(pattern=r"^https://\S+$")]
    audience: NonEmpty
    jwks_uri: Annotated[str, Field(pattern=r"^https://\S+$")]
    # Offboarding promises access ends within this time of deactivation: longer tokens are refused.
    max_token_lifetime: Duration = Field(strict=False)


class Sso(Strict):
    required: bool
    idp: Idp
    allowed_email_domains: list[NonEmpty] = Field(min_length=1)
    allowed_groups: list[NonEmpty] = Field(min_length=1)
    offboarding: NonEmpty

    @field_validator("required")
    @classmethod
    def _must_require(cls, value: bool) -> bool:
        if not value:
            raise ValueError("a sanctioned workflow must require SSO (required: true)")
        return value


class AccountException(Strict):
    subject: NonEmpty
    owner: NonEmpty
    reason: NonEmpty
    expires: dt.date


class PersonalAccounts(Strict):
    allowed: bool
    consumer_domains: list[NonEmpty] = Field(min_length=1)
    exceptions: list[AccountException] = []

    @field_validator("allowed")
    @classmethod
    def _not_allowed(cls, value: bool) -> bool:
        if value:
            raise ValueError(
                "personal accounts must not be allowed wholesale; grant time-boxed exceptions "
                "(subject, owner, reason, expires) instead"
            )
        return value
