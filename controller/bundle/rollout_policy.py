"""Prompts, eval thresholds, cohorts and flags, fallback, kill switch and the ongoing review cadence."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from controller.bundle.fields import (
    COHORT_ORDER,
    Duration,
    EvalCategory,
    LaxEvalCategory,
    NonEmpty,
    RelPath,
    Slug,
    Strict,
)

__all__ = [
    "Cohort",
    "EvalSettings",
    "Fallback",
    "KillSwitch",
    "Ongoing",
    "PromptRef",
    "Rollout",
]


class PromptRef(Strict):
    id: Slug
    version: int = Field(ge=1)
    path: RelPath

    @model_validator(mode="after")
    def _named_by_version(self) -> PromptRef:
        expected = f"{self.id}.v{self.version}.md"
        if Path(self.path).name != expected:
            raise ValueError(f"prompt file must be named {expected} (got {Path(self.path).name})")
        return self


class EvalSettings(Strict):
    golden_set: RelPath
    thresholds: dict[LaxEvalCategory, float]
    max_result_age: Duration = Field(strict=False)

    @field_validator("thresholds")
    @classmethod
    def _thresholds(cls, value: dict[EvalCategory, float]) -> dict[EvalCategory, float]:
        problems = [f"missing threshold for {c.value}" for c in EvalCategory if c not in value]
        problems += [f"{c.value} must be between 0 and 1" for c, v in value.items() if not 0 <= v <= 1]
        problems += [
            f"{c.value} must be 1.0 (policy compliance and refusal allow no failures)"
            for c in (EvalCategory.POLICY_COMPLIANCE, EvalCategory.REFUSAL)
            if c in value and value[c] != 1.0
        ]
        if problems:
            raise ValueError("; ".join(problems))
        return value


class Cohort(Strict):
    name: Literal["internal", "limited", "general"]
    description: NonEmpty
    groups: list[NonEmpty] = []
    percentage: int | None = Field(default=None, ge=1, le=99)
    bake_time: Duration = Field(strict=False)
    approvals: int = Field(ge=0)

    @model_validator(mode="after")
    def _targeting(self) -> Cohort:
        if self.name == "internal" and (not self.groups or self.percentage is not None):
            raise ValueError("the internal cohort is defined by groups (and no percentage)")
        if self.name == "limited" and not self.groups and self.percentage is None:
            raise ValueError("the limited cohort needs groups and/or a percentage")
        if self.name == "general" and (self.groups or self.percentage is not None):
            raise ValueError("the general cohort is everyone the SSO settings allow: no groups or percentage")
        return self


class Rollout(Strict):
    cohorts: list[Cohort]
    operators: list[NonEmpty] = Field(min_length=1)
    release_flag: Slug
    kill_switch_flag: Slug
    flags_file: RelPath

    @field_validator("cohorts")
    @classmethod
    def _order(cls, value: list[Cohort]) -> list[Cohort]:
        names = tuple(c.name for c in value)
        if names != COHORT_ORDER:
            raise ValueError(f"cohorts must be exactly {list(COHORT_ORDER)} in that order, got {list(names)}")
        return value

    def cohort(self, name: str) -> Cohort:
        return next(c for c in self.cohorts if c.name == name)


class Fallback(Strict):
    message: NonEmpty
    link: NonEmpty
    contact: NonEmpty
    runbook: RelPath


class KillSwitch(Strict):
    runbook: RelPath
    who_may_pull: NonEmpty


class Ongoing(Strict):
    cadence: Literal["weekly"]
    duration_weeks: int = Field(ge=1)
    runbook: RelPath
    broader_access_rule: NonEmpty
