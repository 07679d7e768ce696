"""What the audit trail logs, how it is redacted, and how long each log is retained (named postures)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from controller.bundle.fields import REQUIRED_LOG_FIELDS, NonEmpty, Strict

__all__ = [
    "Logging",
    "Posture",
    "PostureRef",
    "Redaction",
    "Retention",
]


class Redaction(Strict):
    strategy: Literal["typed-placeholder"]
    description: NonEmpty
    applies_to: list[Literal["prompt", "context", "output"]]

    @field_validator("applies_to")
    @classmethod
    def _everything_logged(cls, value: list[str]) -> list[str]:
        missing = [p for p in ("prompt", "context", "output") if p not in value]
        if missing:
            raise ValueError(f"redaction must apply to everything logged; missing {missing}")
        return value


class Posture(Strict):
    source: NonEmpty
    days: int = Field(ge=1)
    object_lock_mode: Literal["governance", "compliance"] | None = None


def _posture_ref(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError(
            "retention must reference a named posture (with its source document), "
            "not a bare number"
        )
    return value


PostureRef = Annotated[str, BeforeValidator(_posture_ref), Field(min_length=1)]


class Retention(Strict):
    postures: dict[str, Posture] = Field(min_length=1)
    audit_log: PostureRef
    raw_invocation_logs: PostureRef
    control_plane: PostureRef

    @model_validator(mode="after")
    def _refs_exist(self) -> Retention:
        problems = [
            f"{name} refers to posture {ref!r}, which is not declared in postures"
            for name in ("audit_log", "raw_invocation_logs", "control_plane")
            if (ref := getattr(self, name)) not in self.postures
        ]
        if not problems and self.postures[self.audit_log].object_lock_mode is None:
            problems.append(f"audit_log posture {self.audit_log!r} needs an object_lock_mode")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def posture(self, which: Literal["audit_log", "raw_invocation_logs", "control_plane"]) -> Posture:
        return self.postures[getattr(self, which)]


class Logging(Strict):
    required_fields: list[NonEmpty]
    redaction: Redaction
    retention: Retention

    @field_validator("required_fields")
    @classmethod
    def _all_required(cls, value: list[str]) -> list[str]:
        missing = [f for f in REQUIRED_LOG_FIELDS if f not in value]
        if missing:
            raise ValueError(f"the audit trail must log {list(REQUIRED_LOG_FIELDS)}; missing {missing}")
        return value
