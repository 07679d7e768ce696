"""Review rules: what a person verifies before an output is used, and who is accountable."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from controller.bundle.fields import NonEmpty, RelPath, Strict

__all__ = [
    "HumanVerification",
    "Review",
]


class HumanVerification(Strict):
    kind: Literal["production-change", "customer-facing-claim", "automated-action"]
    rule: NonEmpty


class Review(Strict):
    human_verification: list[HumanVerification] = Field(min_length=1)
    # Every answer is a draft a person checks before it is used (support replies): the gateway marks
    # each answered response and its audit record ``requires_human_verification``.
    requires_human_verification: bool = False
    accountability: NonEmpty
    checklist: RelPath
    accountability_runbook: RelPath
