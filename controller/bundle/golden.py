"""``golden.yaml``: the golden set of eval cases (persona, question, expectations)."""

from __future__ import annotations

from typing import Literal

import re2
from pydantic import Field, field_validator, model_validator

from controller.bundle.fields import Email, EvalCategory, LaxCategory, NonEmpty, Slug, Strict

__all__ = [
    "CaseInput",
    "Expectations",
    "GoldenCase",
    "GoldenSet",
    "IncludeRule",
    "Persona",
]


class Persona(Strict):
    email: Email
    groups: list[NonEmpty] = []


class CaseInput(Strict):
    question: NonEmpty
    persona: Persona


class IncludeRule(Strict):
    all: list[NonEmpty] = []
    any: list[NonEmpty] = []

    @model_validator(mode="after")
    def _one(self) -> IncludeRule:
        if not self.all and not self.any:
            raise ValueError("must_include needs an 'all' or an 'any' list")
        return self


class Expectations(Strict):
    must_include: IncludeRule | None = None
    must_match: str | None = None
    must_cite: list[NonEmpty] = []
    must_refuse: bool | None = None
    must_block: list[LaxCategory] = []
    must_not_contain: list[NonEmpty] = []
    max_latency_ms: int | None = Field(default=None, ge=1)

    @field_validator("must_match")
    @classmethod
    def _re2(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re2.compile(value)
            except re2.error as exc:
                raise ValueError(f"not a valid RE2 pattern: {exc}") from None
        return value

    @model_validator(mode="after")
    def _something(self) -> Expectations:
        if not self.model_fields_set:
            raise ValueError("a golden case needs at least one expectation")
        return self


class GoldenCase(Strict):
    id: Slug
    category: EvalCategory = Field(strict=False)
    description: NonEmpty
    input: CaseInput
    expect: Expectations


class GoldenSet(Strict):
    schema_version: Literal[1]
    cases: list[GoldenCase] = Field(min_length=10, max_length=30)

    @field_validator("cases")
    @classmethod
    def _unique(cls, value: list[GoldenCase]) -> list[GoldenCase]:
        ids = [c.id for c in value]
        dups = sorted({i for i in ids if ids.count(i) > 1})
        if dups:
            raise ValueError(f"duplicate case ids {dups}")
        return value
