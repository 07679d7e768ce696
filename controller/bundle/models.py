"""The workflow bundle: typed models of its files and a loader that cross-checks them.

A bundle (``workflows/<id>/``) is the single source of truth for one sanctioned workflow:
``workflow.yaml`` (the policy), versioned prompt templates, the golden set, the corpus and
the flag file it names. ``load_bundle`` parses every file, validates it strictly (unknown
keys are errors), cross-checks references between files and raises ``BundleInvalid`` with
every problem at once, each naming its file, field and line.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import re2
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic import (
    Strict as StrictMode,
)

from controller.boundaries.redactor import Action
from controller.bundle.access import Access
from controller.bundle.yamlio import YamlSyntaxError, line_for, load_yaml
from controller.core.flags import flag_type, flagd_problems
from controller.errors import BundleInvalid, InvalidInput, Problem

__all__ = [
    "COHORT_ORDER",
    "REQUIRED_LOG_FIELDS",
    "Action",
    "Bundle",
    "Category",
    "CorpusDoc",
    "EvalCategory",
    "GoldenCase",
    "GoldenSet",
    "Workflow",
    "find_bundle",
    "load_bundle",
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


# --- workflow.yaml -------------------------------------------------------------------------


class Person(Strict):
    name: NonEmpty
    email: Email
    title: str | None = None


class OperationalOwner(Person):
    team: Literal["SRE", "Eng Productivity", "Security", "Product"]


class Owners(Strict):
    executive: Person
    operational: OperationalOwner


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


class HumanVerification(Strict):
    kind: Literal["production-change", "customer-facing-claim", "automated-action"]
    rule: NonEmpty


class Review(Strict):
    human_verification: list[HumanVerification] = Field(min_length=1)
    accountability: NonEmpty
    checklist: RelPath
    accountability_runbook: RelPath


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


# --- golden.yaml ---------------------------------------------------------------------------


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


# --- the loaded bundle ---------------------------------------------------------------------


@dataclass(frozen=True)
class CorpusDoc:
    source_id: str
    path: Path
    text: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class PromptTemplate:
    id: str
    version: int
    path: Path
    text: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Bundle:
    """A validated bundle: the models plus the file contents they reference."""

    root: Path
    workflow: Workflow
    golden: GoldenSet
    prompts: dict[str, PromptTemplate]
    corpus: tuple[CorpusDoc, ...]
    flags_path: Path
    flags: dict[str, Any] = field(repr=False)

    @property
    def id(self) -> str:
        return self.workflow.id

    def resolve(self, relative: str) -> Path:
        return (self.root / relative).resolve()

    @property
    def prompt(self) -> PromptTemplate:
        """The current answer template: the highest version of the first prompt id."""
        first = self.workflow.prompts[0].id
        return max((p for p in self.prompts.values() if p.id == first), key=lambda p: p.version)


def find_bundle(workflow: Path | None, cwd: Path | None = None) -> Path:
    """The bundle directory: ``workflow`` if given, else the only one under ``workflows/``."""
    if workflow is not None:
        path = workflow.parent if workflow.name == "workflow.yaml" else workflow
        if not (path / "workflow.yaml").is_file():
            raise InvalidInput(f"--workflow {workflow}: no workflow.yaml in that directory.")
        return path
    base = (cwd or Path.cwd()) / "workflows"
    found = sorted(p.parent for p in base.glob("*/workflow.yaml"))
    if len(found) == 1:
        return found[0]
    if not found:
        raise InvalidInput(
            f"No workflow bundle found under {base}; pass --workflow DIR (a directory with a workflow.yaml)."
        )
    names = ", ".join(p.name for p in found)
    raise InvalidInput(f"Several workflow bundles under {base} ({names}); choose one with --workflow DIR.")


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _model_problems(exc: ValidationError, file: str, lines: dict) -> list[Problem]:
    out = []
    for err in exc.errors(include_url=False):
        loc = [p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown key (not part of the schema)"
        elif err["type"] == "missing":
            message = "required field is missing"
        out.append(Problem(file, ".".join(str(p) for p in loc), message, line_for(lines, loc)))
    return out


def _parse(model: type[Strict], path: Path, problems: list[Problem]) -> tuple[Any, dict]:
    file = _display(path)
    if not path.is_file():
        problems.append(Problem(file, "", "file not found"))
        return None, {}
    try:
        doc = load_yaml(path)
    except YamlSyntaxError as exc:
        problems.append(Problem(file, "", str(exc), exc.line))
        return None, {}
    if not isinstance(doc.data, dict):
        problems.append(Problem(file, "", "the document must be a mapping of fields", 1))
        return None, {}
    try:
        return model.model_validate(doc.data), doc.lines
    except ValidationError as exc:
        problems.extend(_model_problems(exc, file, doc.lines))
        return None, doc.lines


def load_bundle(path: Path, *, today: dt.date | None = None) -> Bundle:
    """Load and cross-check the bundle at ``path``; raise ``BundleInvalid`` listing every problem."""
    today = today or dt.datetime.now(dt.UTC).date()
    root = path.resolve()
    wf_path = root / "workflow.yaml"
    wf_file = _display(wf_path)
    problems: list[Problem] = []
    workflow, lines = _parse(Workflow, wf_path, problems)
    if workflow is None:
        raise BundleInvalid(_display(root), problems)

    def at(*loc: str | int) -> int | None:
        return line_for(lines, loc)

    def need_file(relative: str, *loc: str | int) -> Path:
        target = (root / relative).resolve()
        if not target.is_file():
            problems.append(
                Problem(wf_file, ".".join(map(str, loc)), f"{relative}: file not found", at(*loc))
            )
        return target

    # Exceptions expire: an expired one is a policy violation, not a warning.
    for i, exc in enumerate(workflow.personal_accounts.exceptions):
        if exc.expires < today:
            problems.append(
                Problem(
                    wf_file,
                    f"personal_accounts.exceptions.{i}.expires",
                    f"exception for {exc.subject} expired on {exc.expires.isoformat()}; remove it",
                    at("personal_accounts", "exceptions", i, "expires"),
                )
            )

    # Detector refs must resolve against the engine's builtins and the declared patterns.
    problems.extend(_detector_problems(workflow, wf_file, lines))

    # Referenced documents exist.
    for loc in (
        ("review", "checklist"),
        ("review", "accountability_runbook"),
        ("fallback", "runbook"),
        ("kill_switch", "runbook"),
        ("ongoing", "runbook"),
    ):
        obj: Any = workflow
        for part in loc:
            obj = getattr(obj, part)
        need_file(obj, *loc)

    prompts: dict[str, PromptTemplate] = {}
    seen: set[tuple[str, int]] = set()
    for i, ref in enumerate(workflow.prompts):
        if (ref.id, ref.version) in seen:
            problems.append(
                Problem(wf_file, f"prompts.{i}", f"{ref.id} v{ref.version} is listed twice", at("prompts", i))
            )
        seen.add((ref.id, ref.version))
        target = need_file(ref.path, "prompts", i, "path")
        if target.is_file():
            text = target.read_text(encoding="utf-8")
            if "{{question}}" not in text or "{{context}}" not in text:
                problems.append(
                    Problem(_display(target), "", "a prompt must contain {{question}} and {{context}}")
                )
            prompts[f"{ref.id}.v{ref.version}"] = PromptTemplate(ref.id, ref.version, target, text)

    corpus = _load_corpus(root, problems)

    golden_path = need_file(workflow.eval.golden_set, "eval", "golden_set")
    golden: GoldenSet | None = None
    if golden_path.is_file():
        golden, golden_lines = _parse(GoldenSet, golden_path, problems)
        if golden is not None:
            source_ids = {d.source_id for d in corpus}
            for i, case in enumerate(golden.cases):
                for source in case.expect.must_cite:
                    if corpus and source not in source_ids:
                        problems.append(
                            Problem(
                                _display(golden_path),
                                f"cases.{i}.expect.must_cite",
                                f"{source!r} is not a document in corpus/",
                                line_for(golden_lines, ("cases", i, "expect", "must_cite")),
                            )
                        )

    flags_path = need_file(workflow.rollout.flags_file, "rollout", "flags_file")
    flags_doc: dict[str, Any] = {}
    if flags_path.is_file():
        flags_doc = _check_flags(workflow, flags_path, problems)

    if problems or golden is None:
        raise BundleInvalid(_display(root), problems)
    return Bundle(root, workflow, golden, prompts, corpus, flags_path, flags_doc)


def _detector_problems(workflow: Workflow, wf_file: str, lines: dict) -> list[Problem]:
    from controller.boundaries import detectors as boundaries  # the engine owns what "builtin:..." means

    out = []
    db = workflow.data_boundaries
    for i, forbidden in enumerate(db.forbidden):
        try:
            boundaries.resolve_detectors(forbidden.detectors, db.patterns)
        except ValueError as exc:
            out.append(
                Problem(
                    wf_file,
                    f"data_boundaries.forbidden.{i}.detectors",
                    str(exc),
                    line_for(lines, ("data_boundaries", "forbidden", i, "detectors")),
                )
            )
    declared = {f.category for f in db.forbidden}
    for i, pattern in enumerate(db.patterns):
        try:
            boundaries.pattern_detector(pattern)  # also refuses patterns matching "" or a placeholder
        except ValueError as exc:
            out.append(
                Problem(
                    wf_file,
                    f"data_boundaries.patterns.{i}.regex",
                    str(exc),
                    line_for(lines, ("data_boundaries", "patterns", i, "regex")),
                )
            )
        if pattern.category not in declared:
            out.append(
                Problem(
                    wf_file,
                    f"data_boundaries.patterns.{i}.category",
                    f"{pattern.category.value!r} is not a declared forbidden category",
                    line_for(lines, ("data_boundaries", "patterns", i, "category")),
                )
            )
    return out


def _load_corpus(root: Path, problems: list[Problem]) -> tuple[CorpusDoc, ...]:
    corpus_dir = root / "corpus"
    docs = []
    for path in sorted(corpus_dir.glob("*.md")):
        try:
            docs.append(CorpusDoc(path.stem, path, path.read_text(encoding="utf-8")))
        except UnicodeDecodeError:
            problems.append(Problem(_display(path), "", "corpus documents must be UTF-8 text"))
    if not docs:
        problems.append(Problem(_display(corpus_dir), "", "the corpus needs at least one .md document"))
    return tuple(docs)


def _check_flags(workflow: Workflow, flags_path: Path, problems: list[Problem]) -> dict[str, Any]:
    file = _display(flags_path)
    try:
        doc = load_flag_document(flags_path)
    except ValueError as exc:
        problems.append(Problem(file, "", str(exc)))
        return {}
    found = flagd_problems(doc)
    problems.extend(Problem(file, f, m) for f, m in found)
    if found:
        return doc
    flags = doc["flags"]
    expected: Iterable[tuple[str, str, str]] = (
        ("release_flag", workflow.rollout.release_flag, "string"),
        ("kill_switch_flag", workflow.rollout.kill_switch_flag, "boolean"),
    )
    for name, key, kind in expected:
        if key not in flags:
            problems.append(Problem(file, f"flags.{key}", f"rollout.{name} {key!r} is not defined here"))
        elif flag_type(flags[key]) != kind:
            problems.append(Problem(file, f"flags.{key}", f"must be a {kind} flag"))
    release = flags.get(workflow.rollout.release_flag)
    if isinstance(release, dict) and "off" not in (release.get("variants") or {}):
        problems.append(
            Problem(file, f"flags.{workflow.rollout.release_flag}.variants", "needs an 'off' variant")
        )
    return doc


def load_flag_document(path: Path) -> dict[str, Any]:
    """Read a flag document as JSON; ``ValueError`` with a one-line reason when unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON: {exc.msg} (line {exc.lineno})") from None
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None
