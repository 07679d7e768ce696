"""Corpus documents and prompt templates are boundaries too.

Everything in ``corpus/`` is retrieved into answers and stored with the release; every prompt
template is sent with each request. A secret or a customer record in either would reach users,
the model and the request log without ever being typed by anyone. So ``rollout validate`` and
``rollout release create`` (both load the bundle through ``load_bundle``) scan every document and
template with the bundle's own detectors, through the same normalised view and decoding layers
as requests:

- a finding of any forbidden category is a problem: the bundle is refused, naming file:line and
  the detector id, never the value;
- text that reads as an instruction to the model ("ignore previous instructions", "system prompt")
  is a warning naming file:line: a document that talks to the model is a prompt-injection risk
  to review, not necessarily a mistake.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controller.boundaries import compile_pattern
from controller.boundaries.normalise import normalised_view
from controller.boundaries.re2spans import find_all
from controller.boundaries.redactor import bundle_redactor
from controller.errors import Problem

__all__ = ["DocumentFinding", "DocumentScan", "bundle_warnings", "injection_warnings", "scan_documents"]

# Phrases that address the model rather than the reader (RE2, case-insensitive, on the normalised
# view so zero-width characters and look-alikes do not hide them).
_INJECTION = compile_pattern(
    r"(?i)\b(?:"
    r"ignore\s+(?:all\s+|any\s+|the\s+)?(?:previous|prior|above|earlier|preceding)\s+(?:instructions|prompts?|rules|messages)"
    r"|disregard\s+(?:all\s+|any\s+|the\s+)?(?:previous|prior|above|earlier)\s+(?:instructions|prompts?|rules)"
    r"|forget\s+(?:all\s+|everything\s+|your\s+)?(?:previous\s+|prior\s+)?(?:instructions|rules)"
    r"|system\s+prompt|developer\s+mode|do\s+anything\s+now|jailbreak"
    r"|reveal\s+(?:your|the)\s+(?:instructions|prompt|system\s+prompt)"
    r"|you\s+are\s+now\s+(?:a|an|in)\b|new\s+instructions\s*:"
    r")"
)


@dataclass(frozen=True)
class DocumentFinding:
    """One finding in a document: where and what kind, never the value."""

    file: str
    line: int
    detector: str
    category: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.detector} ({self.category})"


@dataclass(frozen=True)
class DocumentScan:
    """The forbidden values (refusals) and the instruction-like passages (warnings) found."""

    findings: tuple[DocumentFinding, ...]
    warnings: tuple[Problem, ...]

    @property
    def problems(self) -> tuple[Problem, ...]:
        return tuple(
            Problem(
                f.file,
                "",
                f"holds a value of forbidden category {f.category} (detector {f.detector}); remove it",
                f.line,
            )
            for f in self.findings
        )


def _line(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _documents(prompts: Mapping[str, Any], corpus: Iterable[Any]) -> list[tuple[Path, str]]:
    docs = [(p.path, p.text) for p in prompts.values()]
    docs.extend((d.path, d.text) for d in corpus)
    return docs


def injection_warnings(display: str, text: str) -> list[Problem]:
    """A warning per line of ``text`` holding an instruction-like phrase."""
    view = normalised_view(text)
    base = view.text if view is not None else text
    lines: set[int] = set()
    for m in find_all(_INJECTION, base):
        start, end = m[0]
        if view is not None:
            start, end = view.to_original(start, end)
        lines.add(_line(text, start))
    return [
        Problem(display, "", "reads as an instruction to the model (prompt-injection risk); review it", line)
        for line in sorted(lines)
    ]


def scan_documents(
    data_boundaries: Any,
    prompts: Mapping[str, Any],
    corpus: Iterable[Any],
    display: Any = str,
) -> DocumentScan:
    """Scan every prompt template and corpus document with the bundle's detectors.

    ``prompts`` maps ids to objects with ``path`` and ``text``; ``corpus`` is objects with ``path``
    and ``text``; ``display`` turns a path into the name shown in messages.
    """
    redactor = bundle_redactor(data_boundaries)
    findings: list[DocumentFinding] = []
    warnings: list[Problem] = []
    for path, text in _documents(prompts, corpus):
        name = display(path)
        for f in redactor.scan(text):
            findings.append(DocumentFinding(name, _line(text, f.start), f.type, f.category))
        warnings.extend(injection_warnings(name, text))
    return DocumentScan(tuple(findings), tuple(warnings))


def bundle_warnings(bundle: Any) -> tuple[Problem, ...]:
    """The instruction-like passages in a loaded bundle's templates and corpus (its forbidden
    values were refused when it was loaded)."""
    root = Path(bundle.root)

    def display(path: Path) -> str:
        try:
            return str(Path(path).resolve().relative_to(root))
        except ValueError:
            return str(path)

    warnings: list[Problem] = []
    for path, text in _documents(bundle.prompts, bundle.corpus):
        warnings.extend(injection_warnings(display(path), text))
    return tuple(warnings)
