"""The sanctioned surface: vendor, endpoint, models, guardrail and approved tools."""

from __future__ import annotations

from pydantic import Field, model_validator

from controller.bundle.fields import EndpointKind, NonEmpty, Strict

__all__ = [
    "ApprovedTool",
    "Endpoint",
    "Guardrail",
    "ModelSpec",
    "Surface",
]


class Endpoint(Strict):
    kind: EndpointKind = Field(strict=False)
    region: str | None = None
    base_url: str | None = None

    @model_validator(mode="after")
    def _kind_needs(self) -> Endpoint:
        if self.kind is EndpointKind.BEDROCK and not self.region:
            raise ValueError("a bedrock endpoint needs a region")
        if self.kind is EndpointKind.OPENAI_COMPATIBLE and not self.base_url:
            raise ValueError("an openai-compatible endpoint needs a base_url")
        return self


class ModelSpec(Strict):
    id: NonEmpty
    purpose: NonEmpty


class Guardrail(Strict):
    id: NonEmpty
    version: NonEmpty


class ApprovedTool(Strict):
    name: NonEmpty
    vendor: NonEmpty
    use: NonEmpty


class Surface(Strict):
    description: NonEmpty
    vendor: NonEmpty
    endpoint: Endpoint
    models: list[ModelSpec] = Field(min_length=1)
    default_model: NonEmpty
    guardrail: Guardrail | None = None
    approved_tools: list[ApprovedTool] = Field(min_length=1)

    @model_validator(mode="after")
    def _default_is_sanctioned(self) -> Surface:
        if self.default_model not in {m.id for m in self.models}:
            raise ValueError(f"default_model {self.default_model!r} is not one of the sanctioned models")
        return self
