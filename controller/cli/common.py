"""What every ``rollout`` command module shares: settings, the store, output, error reporting
and the common options.

It lives apart from ``controller.cli`` (which builds the app and registers the command modules)
so that the command modules import it directly, with no import cycle.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from controller.bundle.models import Bundle, Workflow, find_bundle, load_bundle
from controller.errors import BundleInvalid, RolloutError

__all__ = [
    "AdapterOption",
    "JsonErrorsGroup",
    "JsonOption",
    "Settings",
    "WorkflowOption",
    "err",
    "flag",
    "load",
    "load_policy",
    "out",
    "print_json",
    "reports_errors",
    "settings",
    "state_store",
]

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

F = TypeVar("F", bound=Callable[..., Any])

WorkflowOption = typer.Option(
    None,
    "--workflow",
    "-w",
    envvar="ROLLOUT_WORKFLOW",
    help="Workflow id or bundle directory (env ROLLOUT_WORKFLOW; default: the only bundle under workflows/).",
)
def flag(name: str, help: str, **kwargs: Any) -> Any:
    """An on/off option, shown in --help without a ``<bool>`` metavar."""
    return typer.Option(False, name, metavar=" ", help=help, **kwargs)


JsonOption = flag("--json", "Machine-readable JSON on stdout.")


@dataclass
class Settings:
    state: Path
    store_url: str | None = None
    flags_s3: str | None = None


def settings(ctx: typer.Context) -> Settings:
    return ctx.find_object(Settings) or Settings(state=Path(os.environ.get("ROLLOUT_STATE", ".rollout")))


def state_store(ctx: typer.Context) -> Any:
    """The one store every command uses: ``--store`` / ROLLOUT_STORE, else the state directory."""
    from controller.adapters import open_store
    from controller.service.compose import open_local_store

    s = settings(ctx)
    return open_store(s.store_url) if s.store_url else open_local_store(s.state)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


class JsonErrorsGroup(TyperGroup):
    """The app's root group: with ``--json`` anywhere on the command line, a usage error (unknown
    option, bad choice, missing argument) is ``{"ok": false, "error": ...}`` on stdout like every
    other failure, with exit code 2; without it, typer's own message on stderr."""

    def main(self, args: Any = None, *pos: Any, standalone_mode: bool = True, **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, *pos, standalone_mode=False, **extra)
        argv = list(sys.argv[1:] if args is None else args)
        try:
            rv = super().main(argv, *pos, standalone_mode=False, **extra)
        except typer.Abort:
            err.print("Aborted.")
            sys.exit(1)
        except typer.TyperException as exc:  # typer's click: UsageError, BadParameter, NoSuchOption, ...
            code = int(getattr(exc, "exit_code", 2))
            if "--json" in argv:
                message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
                message = message.replace("Value error, ", "")  # typer's pydantic coercion prefix
                error = {"type": type(exc).__name__, "message": message, "exit_code": code}
                print_json({"ok": False, "error": error})
            else:
                from typer import rich_utils

                rich_utils.rich_format_error(exc)  # type: ignore[arg-type]
            sys.exit(code)
        sys.exit(rv if isinstance(rv, int) else 0)


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
                err.print(f"[bold red]error:[/] {escape(str(exc))}", markup=True, highlight=False)
            raise typer.Exit(exc.exit_code) from None

    return wrapper  # type: ignore[return-value]


def load(workflow: Path | None) -> Bundle:
    return load_bundle(find_bundle(workflow))


AdapterOption = typer.Option(
    None,
    "--adapter",
    envvar="ROLLOUT_MODEL_ADAPTER",
    help="Model adapter: the bundle's endpoint (default) or 'local', the offline baseline.",
)


def load_policy(
    workflow: Path | None, *, require_workflow: bool = False
) -> tuple[Path, Bundle | None, Workflow | None, tuple[str, ...]]:
    """(bundle dir, bundle or None, workflow or None, the bundle's problems).

    A bundle that does not validate (an expired exception, a missing runbook) still yields its
    workflow.yaml when that parses: enough to kill, roll back, render flags and report on it,
    while its problems refuse any promotion. When even workflow.yaml does not parse, the
    ``BundleInvalid`` is raised if ``require_workflow``, else the workflow is None.
    """
    from pydantic import ValidationError

    from controller.bundle.yamlio import YamlSyntaxError, load_yaml

    path = find_bundle(workflow)
    try:
        bundle = load_bundle(path)
    except BundleInvalid as exc:
        problems = tuple(str(p) for p in exc.problems)
        try:
            wf = Workflow.model_validate(load_yaml(path / "workflow.yaml").data)
        except (ValidationError, YamlSyntaxError, OSError):
            if require_workflow:
                raise exc from None
            return path, None, None, problems
        return path, None, wf, problems
    return path, bundle, bundle.workflow, ()


class CohortName(StrEnum):
    """The cohorts, in promotion order (``controller.core.gates.COHORTS``)."""

    INTERNAL = "internal"
    LIMITED = "limited"
    GENERAL = "general"
