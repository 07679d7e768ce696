"""``rollout init ID --use-case KIND``: scaffold a new workflow bundle (``controller.bundle.scaffold``).

Prompts for what it can when a terminal is attached and an option is missing; otherwise every
missing answer becomes a ``FILL-ME`` placeholder that ``rollout validate`` refuses until filled.
The bundle is written to a temporary directory beside ``workflows/<id>`` and renamed into place,
so it is there whole or not at all; an existing directory is never touched.
"""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
from pathlib import Path

import typer

from controller.bundle.scaffold import PLACEHOLDER, Answers, UseCase, scaffold
from controller.cli.common import JsonOption, out, print_json, reports_errors
from controller.errors import InvalidInput

__all__ = ["init"]

MAX_ID = 24  # infra derives AWS resource names from the id (infra.config.MAX_WORKFLOW_ID)


def _csv(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in (value or "").split(",") if v.strip())


@reports_errors
def init(
    workflow_id: str = typer.Argument(..., help="The new workflow's id: its folder under workflows/."),
    use_case: UseCase | None = typer.Option(None, "--use-case", help="Which checklist workflow kind."),
    name: str | None = typer.Option(None, "--name", help="Human name of the workflow."),
    executive_name: str | None = typer.Option(None, "--executive-name", help="Executive owner's name."),
    executive_email: str | None = typer.Option(None, "--executive-email", help="Executive owner's email."),
    owner_name: str | None = typer.Option(None, "--owner-name", help="Operational owner's name."),
    owner_email: str | None = typer.Option(None, "--owner-email", help="Operational owner's email."),
    operators: str | None = typer.Option(None, "--operators", help="Comma-separated operator names."),
    groups: str | None = typer.Option(None, "--groups", help="Comma-separated SSO groups (the first is the pilot)."),
    json_output: bool = JsonOption,
) -> None:
    """Scaffold workflows/ID/ for a workflow kind: workflow.yaml, golden set, prompt, corpus, flags.

    Missing answers are prompted for on a terminal, else left as FILL-ME placeholders, which
    `rollout validate` lists (file:line) and refuses until they are filled."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", workflow_id) or len(workflow_id) > MAX_ID:
        raise InvalidInput(
            f"workflow id {workflow_id!r}: use lowercase letters, digits and dashes, at most {MAX_ID} characters."
        )
    interactive = sys.stdin.isatty() and not json_output
    if use_case is None:
        if not interactive:
            kinds = ", ".join(u.value for u in UseCase)
            raise InvalidInput(f"--use-case is required: one of {kinds}.")
        use_case = UseCase(
            typer.prompt("Use case", type=typer.Choice([u.value for u in UseCase]), default=UseCase.INTERNAL_DOC_QA)
        )

    def ask(value: str | None, question: str) -> str | None:
        if value is not None or not interactive:
            return value or None
        return typer.prompt(f"{question} (empty: a {PLACEHOLDER} placeholder)", default="", show_default=False) or None

    answers = Answers(
        name=ask(name, "Workflow name"),
        executive_name=ask(executive_name, "Executive owner's name"),
        executive_email=ask(executive_email, "Executive owner's email"),
        operational_name=ask(owner_name, "Operational owner's name"),
        operational_email=ask(owner_email, "Operational owner's email"),
        operators=_csv(ask(operators, "Operators, comma-separated")),
        groups=_csv(ask(groups, "SSO groups, comma-separated, the pilot group first")),
    )
    base = Path.cwd() / "workflows"
    target = base / workflow_id
    if target.exists():
        raise InvalidInput(f"{target} already exists; nothing was written. Choose another id or remove it.")
    files = scaffold(workflow_id, use_case, answers)
    base.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{workflow_id}.", dir=base))
    try:
        for relative, text in files.items():
            path = staging / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        staging.rename(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    left = sum(text.lower().count(PLACEHOLDER.lower()) for text in files.values())
    if json_output:
        print_json(
            {
                "ok": True,
                "workflow": workflow_id,
                "use_case": use_case.value,
                "path": str(target),
                "files": sorted(files),
                "placeholders": left,
            }
        )
        return
    out.print(f"[bold green]created[/] {target} ({use_case.value})", highlight=False)
    for relative in sorted(files):
        out.print(f"  {relative}", highlight=False)
    out.print(
        f"{left} placeholders ({PLACEHOLDER}) to fill in; `rollout validate -w {workflow_id}` lists them with their "
        "lines. Then: runbooks/onboarding-another-workflow.md.",
        highlight=False,
    )
