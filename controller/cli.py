"""``rollout``: the operator's command line (typer + rich), ``--json`` on every command.

Exit codes (documented in the README): 0 ok, 1 a check found a problem (e.g. audit verify),
2 invalid input or usage, 3 refused by a gate, 4 conflict with a concurrent change,
5 backend unavailable. Every ``RolloutError`` becomes one clear paragraph and its exit code;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from controller.errors import BundleInvalid, RolloutError
from controller.spec import Bundle, find_bundle, load_bundle

__all__ = ["app", "main"]

app = typer.Typer(
    name="rollout",
    help="Put one AI workflow on sanctioned, auditable rails.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

F = TypeVar("F", bound=Callable[..., Any])

WorkflowOption = typer.Option(
    None, "--workflow", "-w", help="Bundle directory (default: the only one under workflows/)."
)
JsonOption = typer.Option(False, "--json", help="Machine-readable JSON on stdout.")


@dataclass
class Settings:
    state: Path


@app.callback()
def _global(
    ctx: typer.Context,
    state: Path = typer.Option(
        Path(".rollout"), "--state", envvar="ROLLOUT_STATE", help="State directory (env ROLLOUT_STATE)."
    ),
) -> None:
    ctx.obj = Settings(state=state)


def settings(ctx: typer.Context) -> Settings:
    return ctx.find_object(Settings) or Settings(state=Path(os.environ.get("ROLLOUT_STATE", ".rollout")))


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def reports_errors(fn: F) -> F:
    """Turn a ``RolloutError`` into one paragraph on stderr (or JSON on stdout) and its exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except RolloutError as exc:
            if kwargs.get("json_output"):
                error: dict[str, Any] = {
                    "type": type(exc).__name__,
                    "message": str(exc),
                    "exit_code": exc.exit_code,
                }
                if isinstance(exc, BundleInvalid):
                    error["problems"] = [p.to_dict() for p in exc.problems]
                print_json({"ok": False, "error": error})
            else:
                err.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False)
            raise typer.Exit(exc.exit_code) from None

    return wrapper  # type: ignore[return-value]


def load(workflow: Path | None) -> Bundle:
    return load_bundle(find_bundle(workflow))


@app.command()
@reports_errors
def validate(workflow: Path | None = WorkflowOption, json_output: bool = JsonOption) -> None:
    """Validate a workflow bundle: every file, every field, every cross-reference."""
    bundle = load(workflow)
    wf = bundle.workflow
    summary = {
        "forbidden_categories": {f.category.value: f.action.value for f in wf.data_boundaries.forbidden},
        "patterns": len(wf.data_boundaries.patterns),
        "prompts": sorted(bundle.prompts),
        "golden_cases": len(bundle.golden.cases),
        "corpus_documents": len(bundle.corpus),
        "cohorts": [c.name for c in wf.rollout.cohorts],
        "flags_file": str(bundle.flags_path),
    }
    if json_output:
        print_json({"ok": True, "workflow": wf.id, "path": str(bundle.root), "summary": summary})
        return
    table = Table(title=f"{wf.id}: valid", show_header=True)
    table.add_column("check")
    table.add_column("result")
    categories = summary["forbidden_categories"]
    table.add_row("forbidden inputs", ", ".join(f"{k} ({v})" for k, v in categories.items()))
    table.add_row("bundle patterns", str(summary["patterns"]))
    table.add_row("prompt templates", ", ".join(summary["prompts"]))
    table.add_row("golden cases", str(summary["golden_cases"]))
    table.add_row("corpus documents", str(summary["corpus_documents"]))
    table.add_row("cohorts", " -> ".join(summary["cohorts"]))
    table.add_row("flags", summary["flags_file"])
    out.print(table)


@app.command()
@reports_errors
def policy(
    workflow: Path | None = WorkflowOption,
    format: str = typer.Option("md", "--format", help="md | json"),
    json_output: bool = JsonOption,
) -> None:
    """Render the one-page published policy and approved tools list from the bundle."""
    from controller.errors import InvalidInput
    from controller.policy import policy_document, render_markdown

    if format not in ("md", "json"):
        raise InvalidInput(f"--format {format!r}: choose md or json.")
    bundle = load(workflow)
    if json_output or format == "json":
        print_json(policy_document(bundle))
    else:
        sys.stdout.write(render_markdown(bundle))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
