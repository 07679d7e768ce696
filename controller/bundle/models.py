"""The workflow bundle's schema and loader, re-exported from one place.

The models live in one module per section of the bundle (``fields``, ``identity``, ``surface``,
``data_boundaries``, ``review``, ``logging_policy``, ``rollout_policy``, ``workflow``, ``golden``)
and the loader in ``loader``; ``from controller.bundle.models import X`` keeps working for all of
them.
"""

from __future__ import annotations

from controller.boundaries.redactor import Action
from controller.bundle.data_boundaries import AllowedInput, DataBoundaries, ForbiddenInput, PatternSpec
from controller.bundle.fields import (
    COHORT_ORDER,
    REQUIRED_LOG_FIELDS,
    Category,
    Duration,
    Email,
    EndpointKind,
    EvalCategory,
    LaxCategory,
    LaxEvalCategory,
    NonEmpty,
    RelPath,
    Slug,
    Strict,
    parse_duration,
)
from controller.bundle.golden import CaseInput, Expectations, GoldenCase, GoldenSet, IncludeRule, Persona
from controller.bundle.identity import (
    AccountException,
    Idp,
    OperationalOwner,
    Owners,
    Person,
    PersonalAccounts,
    Sso,
)
from controller.bundle.loader import (
    Bundle,
    CorpusDoc,
    PromptTemplate,
    find_bundle,
    load_bundle,
    load_flag_document,
)
from controller.bundle.logging_policy import Logging, Posture, Redaction, Retention
from controller.bundle.review import HumanVerification, Review
from controller.bundle.rollout_policy import (
    Cohort,
    EvalSettings,
    Fallback,
    KillSwitch,
    Ongoing,
    PromptRef,
    Rollout,
)
from controller.bundle.surface import ApprovedTool, Endpoint, Guardrail, ModelSpec, Surface
from controller.bundle.workflow import Workflow

__all__ = [
    "COHORT_ORDER",
    "REQUIRED_LOG_FIELDS",
    "AccountException",
    "Action",
    "AllowedInput",
    "ApprovedTool",
    "Bundle",
    "CaseInput",
    "Category",
    "Cohort",
    "CorpusDoc",
    "DataBoundaries",
    "Duration",
    "Email",
    "Endpoint",
    "EndpointKind",
    "EvalCategory",
    "EvalSettings",
    "Expectations",
    "Fallback",
    "ForbiddenInput",
    "GoldenCase",
    "GoldenSet",
    "Guardrail",
    "HumanVerification",
    "Idp",
    "IncludeRule",
    "KillSwitch",
    "LaxCategory",
    "LaxEvalCategory",
    "Logging",
    "ModelSpec",
    "NonEmpty",
    "Ongoing",
    "OperationalOwner",
    "Owners",
    "PatternSpec",
    "Person",
    "PersonalAccounts",
    "Persona",
    "Posture",
    "PromptRef",
    "PromptTemplate",
    "Redaction",
    "RelPath",
    "Retention",
    "Review",
    "Rollout",
    "Slug",
    "Sso",
    "Strict",
    "Surface",
    "Workflow",
    "find_bundle",
    "load_bundle",
    "load_flag_document",
    "parse_duration",
]
