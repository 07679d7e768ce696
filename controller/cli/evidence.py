"""Evidence for auditors and operators: ``rollout audit report`` and ``rollout review``.

``register(app, audit)`` adds ``report`` to the ``audit`` group (which ``controller.cli``
creates) and ``review`` to the app. These commands parse options, call the evidence collector
(``controller.evidence.collect``) and the pure judges (``controller.evidence.report``,
``controller.evidence.review``, which also decide the exit codes), and render. Everything here
is read-only: no state, flag document or log is written (``--out`` writes only the report file).

Exit codes: 0 the report or review was produced (whatever its verdicts: they are in the
document), 1 ``review`` found evidence that does not verify or cannot be read (a broken audit
chain, an edited eval result, an unreachable store), 2 invalid input (a bad ``--stack-export``
file, ``--format`` or ``--since``).
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from controller.cli.common import (
    JsonOption,
    WorkflowOption,
    err,
    load_policy,
    print_json,
    reports_errors,
    settings,
    state_store,
)
from controller.cli.common import out as console

__all__ = ["register"]


def _service(ctx: typer.Context, workflow: Any) -> Any:
    """Read-only: the store named by the global --store (default: the state directory)."""
    from controller.service.compose import StatePaths, evidence_signer, rollout_service

    store = state_store(ctx)
    flags = StatePaths(settings(ctx).state).flags(workflow.id)
    return rollout_service(workflow, store, flags, signer=evidence_signer(settings(ctx).state))


def _write_atomically(path: Path, text: str) -> None:
    from controller.adapters.atomic import write_atomic

    write_atomic(path, text.encode("utf-8"))


# --- rollout audit report ---------------------------------------------------------------------


def audit_report(
    ctx: typer.Context,
    stack_export: Path | None = typer.Option(
        None,
        "--stack-export",
        help="The JSON of `pulumi stack export` for the workflow's stack: the provisioned buckets, "
        "JWT authorizer and permission set are compared with the bundle. Without it those are UNKNOWN.",
    ),
    format: str = typer.Option("md", "--format", help="md | html | json"),
    out: Path | None = typer.Option(None, "--out", help="Write the report to this file (default: stdout)."),
    workflow: Path | None = WorkflowOption,
    fail_on: str | None = typer.Option(
        None,
        "--fail-on",
        help="Exit 1 when the overall verdict is FAIL (`fail`) or anything but PASS (`unknown`); "
        "for CI gates. Default: exit 0 whatever the verdicts.",
    ),
    json_output: bool = JsonOption,
) -> None:
    """The Definition of Done, item by item: PASS, FAIL or UNKNOWN with the evidence for each.

    Evidence: the bundle, the live flag document, the rollout state, eval results per release,
    the control-plane audit chain (verified), the request log (DuckDB) and, with
    --stack-export, the provisioned configuration. Missing evidence is UNKNOWN, never PASS.
    Read-only; exit 0 whatever the verdicts (--format json has `overall`) unless --fail-on."""
    reports_errors(_audit_report)(
        ctx,
        stack_export=stack_export,
        fmt="json" if json_output else format,
        out=out,
        workflow=workflow,
        fail_on=fail_on,
        json_output=json_output,
    )


def _audit_report(
    ctx: typer.Context,
    *,
    stack_export: Path | None,
    fmt: str,
    out: Path | None,
    workflow: Path | None,
    json_output: bool,
    fail_on: str | None = None,
) -> None:
    from controller.errors import InvalidInput
    from controller.evidence.collect import collect_evidence
    from controller.evidence.render import renderer
    from controller.evidence.report import FAIL_ON, build_report, report_exit_code
    from controller.service.compose import StatePaths

    render = renderer(fmt)
    if fail_on is not None and fail_on not in FAIL_ON:
        raise InvalidInput(f"--fail-on {fail_on!r}: choose fail or unknown.")
    path, _, wf, problems = load_policy(workflow)
    if wf is None:
        raise InvalidInput(
            f"{path}/workflow.yaml cannot be read, so there is no policy to report on:\n - " + "\n - ".join(problems)
        )
    paths = StatePaths(settings(ctx).state)
    report = build_report(
        collect_evidence(
            workflow_id=wf.id,
            workflow=wf,
            bundle_path=path,
            bundle_problems=problems,
            service=_service(ctx, wf),
            flags_path=paths.flags(wf.id),
            requests_dir=paths.requests,
            stack_export=stack_export,
            now=dt.datetime.now(dt.UTC),
        )
    )
    text = render(report)
    if out is None:
        sys.stdout.write(text)
    else:
        _write_atomically(out, text)
        counts = report.counts
        summary = ", ".join(f"#{i.number} {i.status.value}" for i in report.items)
        console.print(
            f"audit report written to {out}: overall {report.status.value} ({summary}; "
            f"{counts['PASS']} PASS, {counts['FAIL']} FAIL, {counts['UNKNOWN']} UNKNOWN)",
            highlight=False,
            markup=False,
        )
    code = report_exit_code(report, fail_on)
    if code:
        raise typer.Exit(code)


# --- rollout review ---------------------------------------------------------------------------


def review(
    ctx: typer.Context,
    since: str = typer.Option("7d", "--since", help="How far back: 30m, 24h, 7d..."),
    athena_sql: str | None = typer.Option(
        None,
        "--athena-sql",
        metavar="BUCKET",
        help="Print the Athena DDL and this review's queries over s3://BUCKET/requests/ (the audit "
        "bucket) for the --since window, instead of running the review locally.",
    ),
    workflow: Path | None = WorkflowOption,
    json_output: bool = JsonOption,
) -> None:
    """The weekly review: usage, near-misses, fallbacks, policy violations, golden-set
    regressions, exceptions and control-plane actions of the last --since.

    Reads the request log (<state>/requests/*.jsonl, eval records excluded from usage) with
    DuckDB, the eval results and the audit chain. Exit 1 when evidence does not verify."""
    reports_errors(_review)(
        ctx, since=since, athena_sql=athena_sql, workflow=workflow, json_output=json_output
    )


def _review(
    ctx: typer.Context,
    *,
    since: str,
    athena_sql: str | None,
    workflow: Path | None,
    json_output: bool,
) -> None:
    from controller.bundle.models import parse_duration
    from controller.errors import InvalidInput
    from controller.evidence.collect import collect_review
    from controller.evidence.request_log import Window, athena_script, detector_categories
    from controller.evidence.review import review_exit_code, review_of
    from controller.service.compose import StatePaths

    try:
        duration = parse_duration(since)
    except ValueError as exc:
        raise InvalidInput(f"--since {since!r}: {exc}.") from None
    now = dt.datetime.now(dt.UTC)
    window = Window.last(duration, now)
    path, _, wf, bundle_problems = load_policy(workflow)
    if wf is None:
        raise InvalidInput(f"{path}/workflow.yaml cannot be read:\n - " + "\n - ".join(bundle_problems))
    if athena_sql is not None:
        sys.stdout.write(athena_script(athena_sql, detector_categories(wf), window))
        return
    evidence = collect_review(
        workflow=wf,
        bundle_path=path,
        bundle_problems=bundle_problems,
        service=_service(ctx, wf),
        requests_dir=StatePaths(settings(ctx).state).requests,
        window=window,
        now=now,
    )
    review = review_of(evidence)
    if json_output:
        print_json(review.to_dict())
    else:
        _print_review(review)
    code = review_exit_code(evidence)
    if code:
        raise typer.Exit(code)


def _table(title: str, columns: list[str], rows: list[list[Any]], empty: str) -> Any:
    if not rows:
        return f"[bold]{title}[/]: {empty}"
    table = Table(title=title)
    for c in columns:
        table.add_column(c)
    for row in rows:
        table.add_row(*(str(v) for v in row))
    return table


def _short(v: Any) -> str:
    """A digest as its first 12 characters; anything else as it is."""
    s = str(v)
    return s[:12] if len(s) == 64 else s


_USAGE_KEYS = (
    "day",
    "cohort",
    "variant",
    "requests",
    "subjects",
    "answered",
    "fallback",
    "blocked",
    "disabled",
    "refused",
)


def _usage(r: Any) -> Any:
    return _table(
        "1. Usage by day and cohort (and the release it was served)",
        ["day", "cohort", "release", "requests", "subjects", "answered", "fallback", "blocked", "disabled", "refused"],
        [[_short(u[k]) if k == "variant" else u[k] for k in _USAGE_KEYS] for u in r.usage],
        "no user requests",
    )


def _near_misses(r: Any) -> list[Any]:
    tables = [
        _table(
            "2. Near-misses: forbidden input in questions, by category",
            ["category", "action", "blocked", "let through (redacted)", "values found"],
            [[c, v["action"], v["blocked"], v["let_through"], v["findings"]] for c, v in r.by_category.items()],
            "none",
        )
    ]
    if r.redactions:
        keys = ("location", "category", "decision", "requests", "findings")
        tables.append(
            _table(
                "   Redactions in retrieved context and model output",
                ["where", "category", "decision", "requests", "values"],
                [[x[k] for k in keys] for x in r.redactions],
                "none",
            )
        )
    return tables


def _fallbacks(r: Any) -> Any:
    return _table(
        "3. Fallbacks and disabled requests",
        ["decision", "reason", "requests"],
        [[f["decision"], f["reason"], f["requests"]] for f in r.fallbacks],
        "none",
    )


def _violations(r: Any) -> Any:
    rows = [["blocked", c, n] for c, n in r.blocked.items()]
    rows += [["identity refused", x["reason"], x["requests"]] for x in r.refusals]
    rows += [["ANSWERED WITH FORBIDDEN INPUT", c, n] for c, n in r.answered_with_forbidden_input.items()]
    return _table("4. Policy violations", ["kind", "category / reason", "requests"], rows, "none")


def _regressions(r: Any) -> Any:
    return _table(
        "5. Golden-set regressions (passed before, fail now)",
        ["case", "category", "passed in", "fails in", "same release"],
        [
            [
                g.case_id,
                g.category,
                f"{_short(g.passed_release)} {g.passed_at[:16]}",
                f"{_short(g.failed_release)} {g.failed_at[:16]}",
                "yes" if g.same_release else "no",
            ]
            for g in r.regressions
        ],
        "none",
    )


def _exceptions(r: Any) -> Any:
    return _table(
        "6. Personal-account exceptions",
        ["subject", "owner", "expires", "days left", "status"],
        [
            [e.subject, e.owner, e.expires, e.days_left, e.status.upper() if e.status != "ok" else "ok"]
            for e in r.exceptions
        ],
        "none granted",
    )


def _changes(r: Any) -> Any:
    return _table(
        "7. Control-plane actions",
        ["seq", "time", "operator", "action", "release", "reason"],
        [[a.seq, a.time, a.operator, a.action, _short(a.release or ""), a.reason or ""] for a in r.changes],
        "none in this window",
    )


def _print_review(r: Any) -> None:
    w = r.window.to_dict()
    totals = r.totals
    console.print(
        f"[bold]{r.workflow}: weekly review[/] {w['since']} .. {w['until']}  "
        f"({totals['requests']} user requests: {totals['answered']} answered, {totals['fallback']} fallback, "
        f"{totals['blocked']} blocked, {totals['disabled']} disabled, {totals['refused']} refused)",
        highlight=False,
    )
    sections = (
        _usage(r),
        *_near_misses(r),
        _fallbacks(r),
        _violations(r),
        _regressions(r),
        _exceptions(r),
        _changes(r),
    )
    for section in sections:
        console.print(section)
    kill = r.kill_switch or {}
    state = (
        f"ENGAGED by {kill.get('by')} at {kill.get('at')}: {kill.get('reason')}" if kill.get("engaged") else "released"
    )
    console.print(f"kill switch: {state}", highlight=False)
    for p in r.problems:
        err.print(f"[bold red]problem:[/] {p}", highlight=False)


# --- registration -----------------------------------------------------------------------------


def register(app: typer.Typer, audit: typer.Typer) -> None:
    """Add ``review`` to ``app`` and ``report`` to its ``audit`` group."""
    app.command("review")(review)
    audit.command("report")(audit_report)
