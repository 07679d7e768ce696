"""Static checks of the golden set against the workflow's own rules.

A golden case that expects a block of a category the boundaries no longer declare (or now only
redact), or whose persona the gateway's identity check would refuse, validates as YAML and then
fails every check at eval time. All of that is knowable from the files alone, so ``load_bundle``
reports it up front, each case by id with its file and line. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence

from controller.boundaries.redactor import Action
from controller.bundle.fields import EvalCategory
from controller.bundle.golden import GoldenCase, GoldenSet
from controller.bundle.workflow import Workflow
from controller.bundle.yamlio import LineMap, line_for
from controller.errors import Problem

__all__ = ["cohort_problems", "golden_problems"]


def golden_problems(workflow: Workflow, golden: GoldenSet, file: str, lines: LineMap) -> list[Problem]:
    """Every case whose expectations cannot hold under ``workflow``; plus categories with no case."""
    out: list[Problem] = []
    for i, case in enumerate(golden.cases):
        for field, message in _case_problems(workflow, case):
            loc = ("cases", i, *field.split("."))
            out.append(Problem(file, f"cases.{i}.{field}", f"case {case.id!r}: {message}", line_for(lines, loc)))
    present = {c.category for c in golden.cases}
    for category in workflow.eval.thresholds:
        if category not in present:
            out.append(
                Problem(
                    file,
                    "cases",
                    f"no {EvalCategory(category).value} case, but eval.thresholds sets one: "
                    "the eval would fail that category with nothing to judge",
                    line_for(lines, ("cases",)),
                )
            )
    return out


def _case_problems(workflow: Workflow, case: GoldenCase) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    ex = case.expect
    boundaries = workflow.data_boundaries
    for j, category in enumerate(ex.must_block):
        action = boundaries.action_for(category)
        if action is None:
            out.append(
                (f"expect.must_block.{j}", f"expects a block of {category.value!r}, which is not a forbidden category")
            )
        elif action is not Action.BLOCK:
            out.append(
                (
                    f"expect.must_block.{j}",
                    f"expects a block of {category.value!r}, but that category is {action.value}ed, not blocked "
                    "(use must_not_contain for what must not leak)",
                )
            )
    if ex.must_block and ex.must_refuse is False:
        out.append(("expect.must_refuse", "a blocked request is a refusal: must_block contradicts must_refuse: false"))
    if (ex.must_block or ex.must_refuse) and (ex.must_cite or ex.must_include):
        field = "expect.must_cite" if ex.must_cite else "expect.must_include"
        out.append((field, "a blocked or refused request cites and quotes nothing: drop this expectation"))
    if case.category == EvalCategory.REFUSAL and ex.must_refuse is not True and not ex.must_block:
        out.append(("expect", "a refusal case needs must_refuse: true (or must_block)"))
    persona = case.input.persona
    sso = workflow.sso
    domain = persona.email.rpartition("@")[2].lower()
    if domain not in {d.lower() for d in sso.allowed_email_domains}:
        allowed = ", ".join(sso.allowed_email_domains)
        out.append(
            (
                "input.persona.email",
                f"{persona.email} is outside sso.allowed_email_domains ({allowed}): the gateway refuses it",
            )
        )
    if set(persona.groups).isdisjoint(sso.allowed_groups):
        out.append(
            (
                "input.persona.groups",
                f"persona groups {list(persona.groups)} are in none of sso.allowed_groups "
                f"({', '.join(sso.allowed_groups)}): the gateway refuses the persona",
            )
        )
    return out


def cohort_problems(workflow: Workflow, lines: LineMap, file: str) -> list[Problem]:
    """Cohort groups the SSO settings never admit: a cohort nobody in it can reach."""
    allowed = set(workflow.sso.allowed_groups)
    out: list[Problem] = []
    for i, cohort in enumerate(workflow.rollout.cohorts):
        stray: Sequence[str] = [g for g in cohort.groups if g not in allowed]
        if stray:
            out.append(
                Problem(
                    file,
                    f"rollout.cohorts.{i}.groups",
                    f"cohort {cohort.name!r} targets {stray}, which sso.allowed_groups does not admit",
                    line_for(lines, ("rollout", "cohorts", i, "groups")),
                )
            )
    return out
