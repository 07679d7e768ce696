"""Loading a bundle: parse every file, cross-check references, raise ``BundleInvalid`` with every problem.

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
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from controller.bundle.fields import Strict
from controller.bundle.golden import GoldenSet
from controller.bundle.golden_checks import cohort_problems, golden_problems
from controller.bundle.scaffold import placeholder_problems
from controller.bundle.workflow import Workflow
from controller.bundle.workspace import resolve_workflow
from controller.bundle.yamlio import YamlSyntaxError, line_for, load_yaml
from controller.core.flags import flag_type, flagd_problems
from controller.errors import BundleInvalid, Problem

__all__ = [
    "Bundle",
    "CorpusDoc",
    "PromptTemplate",
    "display",
    "find_bundle",
    "load_bundle",
    "load_flag_document",
]


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


def find_bundle(workflow: Path | str | None, cwd: Path | None = None) -> Path:
    """The bundle directory: ``workflow`` (an id or a path) if given, else the only one under ``workflows/``."""
    return resolve_workflow(workflow, cwd)


def display(path: Path) -> str:
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
    file = display(path)
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
    wf_file = display(wf_path)
    problems: list[Problem] = []
    workflow, lines = _parse(Workflow, wf_path, problems)
    if workflow is None:
        raise BundleInvalid(display(root), problems)

    def at(*loc: str | int) -> int | None:
        return line_for(lines, loc)

    def need_file(relative: str, *loc: str | int) -> Path:
        target = (root / relative).resolve()
        if not target.is_file():
            problems.append(
                Problem(wf_file, ".".join(map(str, loc)), f"{relative}: file not found", at(*loc))
            )
        return target

    # The folder is the id: workflows are addressed by id, and two copies must not share one.
    if workflow.id != root.name:
        problems.append(
            Problem(
                wf_file,
                "id",
                f"id {workflow.id!r} must equal the bundle's folder name {root.name!r}",
                at("id"),
            )
        )
    problems.extend(cohort_problems(workflow, lines, wf_file))

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
                    Problem(display(target), "", "a prompt must contain {{question}} and {{context}}")
                )
            prompts[f"{ref.id}.v{ref.version}"] = PromptTemplate(ref.id, ref.version, target, text)

    corpus = _load_corpus(root, problems)

    golden_path = need_file(workflow.eval.golden_set, "eval", "golden_set")
    golden: GoldenSet | None = None
    if golden_path.is_file():
        golden, golden_lines = _parse(GoldenSet, golden_path, problems)
        if golden is not None:
            problems.extend(golden_problems(workflow, golden, display(golden_path), golden_lines))
            source_ids = {d.source_id for d in corpus}
            for i, case in enumerate(golden.cases):
                for source in case.expect.must_cite:
                    if corpus and source not in source_ids:
                        problems.append(
                            Problem(
                                display(golden_path),
                                f"cases.{i}.expect.must_cite",
                                f"{source!r} is not a document in corpus/",
                                line_for(golden_lines, ("cases", i, "expect", "must_cite")),
                            )
                        )

    problems.extend(_document_problems(workflow, prompts, corpus))

    flags_path = need_file(workflow.rollout.flags_file, "rollout", "flags_file")
    flags_doc: dict[str, Any] = {}
    if flags_path.is_file():
        flags_doc = _check_flags(workflow, flags_path, problems)

    # A scaffold (`rollout init`) is not a bundle until a person has filled in every placeholder.
    texts = {p.path: p.text for p in prompts.values()} | {d.path: d.text for d in corpus}
    for path in (wf_path, golden_path):
        if path.is_file():
            texts[path] = path.read_text(encoding="utf-8", errors="replace")
    problems.extend(placeholder_problems(texts, display))

    if problems or golden is None:
        raise BundleInvalid(display(root), problems)
    return Bundle(root, workflow, golden, prompts, corpus, flags_path, flags_doc)


def _document_problems(workflow: Workflow, prompts: dict, corpus: tuple) -> list[Problem]:
    """Corpus documents and prompt templates hold no forbidden value (bundle/documents.py)."""
    from controller.bundle.documents import scan_documents

    try:
        return list(scan_documents(workflow.data_boundaries, prompts, corpus, display).problems)
    except ValueError:
        return []  # the detector refs are invalid: _detector_problems reports them


def _detector_problems(workflow: Workflow, wf_file: str, lines: dict) -> list[Problem]:
    from controller import boundaries  # the engine owns what "builtin:..." means

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
            problems.append(Problem(display(path), "", "corpus documents must be UTF-8 text"))
    if not docs:
        problems.append(Problem(display(corpus_dir), "", "the corpus needs at least one .md document"))
    return tuple(docs)


def _check_flags(workflow: Workflow, flags_path: Path, problems: list[Problem]) -> dict[str, Any]:
    file = display(flags_path)
    try:
        doc = load_flag_document(flags_path)
    except ValueError as exc:
        problems.append(Problem(file, "", str(exc)))
        return {}
    found = flagd_problems(doc)
    problems.extend(Problem(file, f, m) for f, m in found)
    if found:
        return doc
    set_id = (doc.get("metadata") or {}).get("flagSetId") if isinstance(doc.get("metadata"), dict) else None
    if set_id is not None and set_id != workflow.id:
        problems.append(
            Problem(file, "metadata.flagSetId", f"{set_id!r} is stale: it must be the workflow id {workflow.id!r}")
        )
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
