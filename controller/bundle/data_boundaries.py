"""What may and may not be sent: forbidden categories with their detectors and actions, patterns, allowed inputs."""

from __future__ import annotations

from typing import Annotated

import re2
from pydantic import Field, field_validator, model_validator

from controller.boundaries.redactor import Action
from controller.bundle.fields import Category, NonEmpty, Slug, Strict

__all__ = [
    "AllowedInput",
    "DataBoundaries",
    "ForbiddenInput",
    "PatternSpec",
]


class ForbiddenInput(Strict):
    category: Category = Field(strict=False)
    title: NonEmpty
    description: NonEmpty
    examples: list[NonEmpty] = Field(min_length=1)
    detectors: list[Annotated[str, Field(pattern=r"^(builtin|pattern):[a-z0-9-]+$")]] = Field(
        min_length=1
    )
    action: Action = Field(strict=False)


class PatternSpec(Strict):
    id: Slug
    category: Category = Field(strict=False)
    description: NonEmpty
    regex: NonEmpty

    @field_validator("regex")
    @classmethod
    def _compiles_with_re2(cls, value: str) -> str:
        try:
            re2.compile(value)
        except re2.error as exc:
            raise ValueError(f"not a valid RE2 pattern: {exc}") from None
        return value


class AllowedInput(Strict):
    title: NonEmpty
    examples: list[NonEmpty] = Field(min_length=1)


class DataBoundaries(Strict):
    forbidden: list[ForbiddenInput] = Field(min_length=1)
    patterns: list[PatternSpec] = []
    allowed: list[AllowedInput] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> DataBoundaries:
        problems = []
        cats = [f.category for f in self.forbidden]
        for dup in sorted({c for c in cats if cats.count(c) > 1}):
            problems.append(f"category {dup!r} is declared twice")
        ids = [p.id for p in self.patterns]
        for dup in sorted({i for i in ids if ids.count(i) > 1}):
            problems.append(f"pattern id {dup!r} is declared twice")
        known = set(ids)
        for f in self.forbidden:
            for ref in f.detectors:
                kind, _, name = ref.partition(":")
                if kind == "pattern" and name not in known:
                    problems.append(f"{f.category}: detector {ref!r} names no declared pattern")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def action_for(self, category: Category | str) -> Action | None:
        for f in self.forbidden:
            if f.category == category:
                return f.action
        return None
