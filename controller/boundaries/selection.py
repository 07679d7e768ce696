"""Selecting detectors: the bundle's declared patterns as detectors, and what its ``builtin:...``
and ``pattern:...`` refs resolve to."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import re2

from controller.boundaries.catalogue import builtin_detectors
from controller.boundaries.detector import CATEGORIES, Detector, _re2_message, compile_pattern, placeholder

__all__ = ["bundle_detectors", "pattern_detector", "resolve_detectors"]

_SHARED_PROGRAM_SIZE = 200  # a bundle pattern this small (RE2 instructions) joins the main pass



def _field(spec: Any, name: str) -> Any:
    if isinstance(spec, Mapping):
        return spec.get(name)
    return getattr(spec, name, None)


# Contexts in which a pattern that can match the empty string shows it; such a pattern would
# "find" something at every position.
_EMPTY_PROBES = ("", "a", " ", "a b", "0", "\n", "-", "é")


def pattern_detector(spec: Any) -> Detector:
    """A detector from a bundle pattern ``{id, category, regex, description}`` (a mapping or an
    object with those attributes). ``ValueError`` names the pattern when RE2 rejects it or when it
    could never work as a boundary (matches the empty string or a redaction placeholder)."""
    pid = str(_field(spec, "id") or "")
    category = _field(spec, "category")
    category = str(getattr(category, "value", category) or "")
    regex = _field(spec, "regex")
    if not pid:
        raise ValueError("a data-boundary pattern has no id")
    if category not in CATEGORIES:
        raise ValueError(f"pattern {pid!r}: unknown category {category!r}")
    if not isinstance(regex, str) or not regex:
        raise ValueError(f"pattern {pid!r}: regex must be a non-empty string")
    try:
        compiled = compile_pattern(regex)
    except re2.error as exc:
        raise ValueError(f"pattern {pid!r}: RE2 rejects the regex: {_re2_message(exc)}") from None
    for probe in _EMPTY_PROBES:
        if any(m.end() == m.start() for m in compiled.finditer(probe)):
            raise ValueError(f"pattern {pid!r}: the regex matches the empty string")
    for sample in (placeholder(pid), placeholder("email"), placeholder("x")):
        if compiled.search(sample) is not None:
            raise ValueError(f"pattern {pid!r}: the regex matches the redaction placeholder")
    return Detector(
        id=pid,
        category=category,
        pattern=compiled,
        description=str(_field(spec, "description") or ""),
        source="pattern",
        # A small pattern shares the main pass; a big one gets its own, so it cannot slow the
        # builtins down (DFA states of different patterns multiply).
        automaton="main" if compiled.programsize <= _SHARED_PROGRAM_SIZE else "patterns",
    )


def bundle_detectors(data_boundaries: Any) -> tuple[Detector, ...]:
    """Every detector a bundle's forbidden categories select, once each (the first ref wins).

    ``data_boundaries`` is the bundle's ``data_boundaries`` section (``forbidden`` entries with
    ``detectors`` refs, and the declared ``patterns``).
    """
    selected: dict[str, Detector] = {}
    for forbidden in data_boundaries.forbidden:
        for detector in resolve_detectors(forbidden.detectors, data_boundaries.patterns):
            selected.setdefault(detector.id, detector)
    return tuple(selected.values())


def resolve_detectors(refs: Iterable[str], patterns: Iterable[Any] = ()) -> tuple[Detector, ...]:
    """The detectors a forbidden category selects.

    ``builtin:<category>`` is every builtin of that category, ``builtin:<detector-id>`` one builtin,
    ``pattern:<id>`` a pattern the bundle declares. ``ValueError`` names an unknown ref or a
    pattern RE2 rejects. Order: builtins in their specificity order, then bundle patterns in ref
    order; duplicates are dropped.
    """
    declared: dict[str, Any] = {}
    for spec in patterns:
        declared[str(_field(spec, "id"))] = spec
    builtins = builtin_detectors()
    by_id: dict[str, list[Detector]] = {}
    for det in builtins:
        by_id.setdefault(det.id, []).append(det)

    selected: list[Detector] = []
    seen: set[int] = set()
    custom: list[Detector] = []
    for ref in refs:
        kind, sep, name = str(ref).partition(":")
        if not sep or not name:
            raise ValueError(f"detector ref {ref!r} must be builtin:<name> or pattern:<id>")
        if kind == "builtin":
            if name in CATEGORIES:
                chosen = [d for d in builtins if d.category == name]
            elif name in by_id:
                chosen = by_id[name]
            else:
                raise ValueError(
                    f"unknown detector {ref!r}: builtins are {', '.join(sorted(by_id))} "
                    f"and the categories {', '.join(CATEGORIES)}"
                )
            for det in chosen:
                if id(det) not in seen:
                    seen.add(id(det))
                    selected.append(det)
        elif kind == "pattern":
            if name not in declared:
                raise ValueError(f"unknown detector {ref!r}: no pattern with id {name!r} declared")
            if name not in {d.id for d in custom}:
                custom.append(pattern_detector(declared[name]))
        else:
            raise ValueError(f"detector ref {ref!r} must be builtin:<name> or pattern:<id>")
    order = {id(d): i for i, d in enumerate(builtins)}
    selected.sort(key=lambda d: order[id(d)])
    return (*selected, *custom)


