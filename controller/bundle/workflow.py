"""``workflow.yaml``: the policy of one sanctioned workflow, composed of the section models."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from controller.bundle.access import Access
from controller.bundle.data_boundaries import DataBoundaries
from controller.bundle.fields import NonEmpty, Slug, Strict
from controller.bundle.identity import Owners, PersonalAccounts, Sso
from controller.bundle.logging_policy import Logging
from controller.bundle.review import Review
from controller.bundle.rollout_policy import EvalSettings, Fallback, KillSwitch, Ongoing, PromptRef, Rollout
from controller.bundle.surface import Surface

__all__ = [
    "Workflow",
]


class Workflow(Strict):
    schema_version: Literal[1]
    id: Slug
    name: NonEmpty
    use_case: Literal["internal-doc-qa", "pr-review", "support-reply-drafting", "on-call-debugging"]
    summary: NonEmpty
    failure_feared_most: NonEmpty
    owners: Owners
    surface: Surface
    sso: Sso
    personal_accounts: PersonalAccounts
    data_boundaries: DataBoundaries
    review: Review
    logging: Logging
    prompts: list[PromptRef] = Field(min_length=1)
    eval: EvalSettings
    rollout: Rollout
    access: Access | None = None  # who may operate / approve (controller.bundle.access)
    fallback: Fallback
    kill_switch: KillSwitch
    ongoing: Ongoing
