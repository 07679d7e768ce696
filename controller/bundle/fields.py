"""Shared field types of the bundle schema: strict base model, enums, durations, slugs.

Every model of a bundle file derives from ``Strict`` (unknown keys are errors, values frozen).
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic import Strict as StrictMode

__all__ = [
    "COHORT_ORDER",
    "REQUIRED_LOG_FIELDS",
    "Category",
    "Duration",
    "Email",
    "EndpointKind",
    "EvalCategory",
    "LaxCategory",
    "LaxEvalCategory",
    "NonEmpty",
    "RelPath",
    "Slug",
    "Strict",
    "parse_duration",
]

REQUIRED_LOG_FIELDS = ("prompt_template", "prompt_version", "context_sources", "model", "output")
COHORT_ORDER = ("internal", "limited", "general")


class Category(StrEnum):
    """Forbidden-input categories, as the checklist names them."""

    CREDENTIALS = "credentials"
    CUSTOMER_DATA = "customer-data"
    INCIDENT_DETAILS = "incident-details"
    UNRELEASED_FINANCIALS = "unreleased-financials"
    REGULATED_DATA = "regulated-data"
    NETWORK_ADDRESSES = "network-addresses"  # IP addresses: a bundle may choose to redact them


class EvalCategory(StrEnum):
    CORRECTNESS = "correctness"
    POLICY_COMPLIANCE = "policy-compliance"
    REFUSAL = "refusal"


class EndpointKind(StrEnum):
    BEDROCK = "bedrock"
    OPENAI_COMPATIBLE = "openai-compatible"
    LOCAL = "local"


def parse_duration(value: Any) -> dt.timedelta:
    """``30m`` / ``24h`` / ``7d`` -> timedelta; anything else is a ValueError."""
    if isinstance(value, dt.timedelta):
        return value
    if not isinstance(value, str) or len(value) < 2 or value[-1] not in "mhd":
        raise ValueError("must be a duration such as 30m, 24h or 7d")
    number, unit = value[:-1], value[-1]
    if not number.isdigit():
        raise ValueError("must be a duration such as 30m, 24h or 7d")
    amount = int(number)
    return {"m": dt.timedelta(minutes=amount), "h": dt.timedelta(hours=amount)}.get(
        unit, dt.timedelta(days=amount)
    )


Duration = Annotated[dt.timedelta, BeforeValidator(parse_duration)]
NonEmpty = Annotated[str, Field(min_length=1)]
Email = Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$")]
RelPath = Annotated[str, Field(min_length=1)]
# Enums are written as plain strings in YAML: accept the string form even in strict models.
LaxCategory = Annotated[Category, StrictMode(False)]
LaxEvalCategory = Annotated[EvalCategory, StrictMode(False)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
