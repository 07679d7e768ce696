"""How the rollout commands print: outcomes, dry runs, status, the served table (rich), or JSON."""

from __future__ import annotations

from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from controller.cli.common import err, out, print_json
from controller.core.gates import COHORTS, OFF, Refused
from controller.core.verdict import VERDICT_COLOURS
from controller.service.rollout import Outcome, Preview

__all__ = ["finish", "print_outcome", "print_preview", "print_status", "served_table", "short"]



def short(digest: str | None) -> str:
    return OFF if not digest or digest == OFF else digest[:12]


def served_table(served: dict[str, str], killed: bool) -> Table:
    table = Table(title="served" + (" (KILL SWITCH ENGAGED: everyone gets the fallback)" if killed else ""))
    table.add_column("cohort")
    table.add_column("release")
    for cohort in COHORTS:
        table.add_row(cohort, short(served.get(cohort)))
    return table


def print_outcome(outcome: Outcome) -> None:
    for note in outcome.notes:
        out.print(f"[cyan]repair:[/] {note}", highlight=False)
    if isinstance(outcome.decision, Refused):
        n = len(outcome.reasons)
        err.print(f"[bold red]refused:[/] {outcome.action} ({n} reason{'s' if n != 1 else ''})", highlight=False)
        for reason in outcome.reasons:
            err.print(f" - {reason.message} [dim]({reason.code})[/]", highlight=False)
    elif outcome.decision is not None:
        first, *rest = outcome.reasons
        if outcome.changed:
            seq = outcome.record.seq if outcome.record else "?"
            out.print(f"[bold green]{first.message}[/] [dim](audit seq {seq})[/]", highlight=False)
        else:
            out.print(f"[yellow]nothing to do:[/] {first.message}", highlight=False)
        for reason in rest:
            out.print(f"[yellow]warning:[/] {reason.message}", highlight=False)
    if outcome.flags is not None:
        verb = "rewritten" if outcome.flags.changed else "already up to date"
        out.print(f"flag document {verb}: {outcome.flags.path}", highlight=False)
        for sink in outcome.flags.published:
            out.print(f"published to {sink}", highlight=False)
        if outcome.changed and outcome.action != "approve":  # an approval serves nobody anything new
            out.print(served_table(outcome.flags.served, outcome.flags.killed))


def finish(outcome: Outcome | Preview, json_output: bool, extra: dict[str, Any] | None = None) -> None:
    if json_output:
        print_json({**outcome.to_dict(), **(extra or {})})
    elif isinstance(outcome, Preview):
        print_preview(outcome)
    else:
        print_outcome(outcome)
    if outcome.exit_code:
        raise typer.Exit(outcome.exit_code)


def print_preview(preview: Preview) -> None:
    verdict = "[bold red]would be refused[/]" if preview.refused else "[bold green]would be allowed[/]"
    out.print(f"dry run: {preview.action} {verdict} (nothing was written)", highlight=False)
    for reason in preview.decision.reasons:
        out.print(f" - {reason.message} [dim]({reason.code})[/]", highlight=False)
    if preview.flag_diff:
        out.print("flag document diff:", highlight=False)
        out.print(preview.flag_diff, markup=False, highlight=False, end="")
    else:
        out.print("flag document: no change", highlight=False)


def print_status(report: Any) -> None:
    s = report.state
    table = Table(title=f"{report.workflow}: rollout", show_header=False)
    table.add_column("field")
    table.add_column("value")
    table.add_row("store", report.store)
    table.add_row("stable", short(s.stable) + (f"  (generation {s.generation})" if s.stable else ""))
    if s.off_reason:
        table.add_row("turned off", s.off_reason)
    if s.candidate:
        reached = ", ".join(f"{c} at {t}" for c, t in s.candidate.reached)
        table.add_row("candidate", f"{short(s.candidate.release)}: {reached}")
    else:
        table.add_row("candidate", "none")
    k = s.kill
    table.add_row("kill switch", f"ENGAGED by {k.by} at {k.at}: {k.reason}" if k.engaged else "released")
    if report.kill_pending:
        table.add_row("kill pending", f"engaged while the store was down: {report.kill_pending}")
    head = f"seq {s.head.seq}" if s.head else "empty"
    table.add_row("audit chain", f"{head}, revision {s.revision}")
    if report.pending is not None:
        table.add_row("pending", f"audit seq {report.pending.seq} logged, not applied; the next command completes it")
    if report.problem:
        table.add_row("PROBLEM", report.problem)
    sync = "in sync" if report.flags_in_sync else "STALE: `rollout reconcile` re-renders it"
    table.add_row("flag file", f"{report.flags_path} ({sync})")
    out.print(table)
    out.print(served_table(report.served, s.kill.engaged or bool(report.kill_pending)))
    if report.evals:
        evals = Table(title="latest evals")
        for col in ("release", "role", "verdict", "finished", "result"):
            evals.add_column(col)
        for digest, info in report.evals.items():
            last = info["latest"]
            if info["error"]:
                evals.add_row(short(digest), info["role"], "[red]UNREADABLE[/]", "", info["error"])
            elif last is None:
                evals.add_row(short(digest), info["role"], "none", "", "")
            else:
                colour = VERDICT_COLOURS.get(last["verdict"], "red")
                evals.add_row(
                    short(digest),
                    info["role"],
                    f"[{colour}]{last['verdict']}[/]",
                    last["finished_at"],
                    last["content_hash"][:12],
                )
        out.print(evals)
    for due in report.due:
        out.print(f"[bold red]rollback due:[/] {due}", highlight=False)
    for note in report.no_fresh_evidence:
        out.print(f"[yellow]{escape(note)}[/]", highlight=False)
    nxt = report.next
    if nxt is None:
        out.print("next promotion: nothing to promote (the bundle's release is the stable release)")
    elif nxt["ready"]:
        out.print(f"next promotion: {short(nxt['release'])} -> {nxt['cohort']}: [green]ready[/]", highlight=False)
    else:
        out.print(f"next promotion: {short(nxt['release'])} -> {nxt['cohort']} still needs:", highlight=False)
        for need in nxt["needs"]:
            out.print(f" - {need['message']}", highlight=False)
    if s.last_actions:
        actions = Table(title="last actions")
        for col in ("rev", "at", "operator", "action", "release", "reason"):
            actions.add_column(col)
        for a in s.last_actions:
            actions.add_row(str(a.revision), a.at, a.operator, a.action, short(a.release), a.reason or "")
        out.print(actions)
