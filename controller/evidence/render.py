"""The auditor's report rendered: markdown, one self-contained HTML file, or JSON (pure).

Every renderer takes a ``controller.evidence.model.Report`` and returns text; ``RENDERERS``
maps the ``--format`` names to them (``renderer`` refuses any other). Markdown and HTML escape
whatever they show (bundle problems, paths and summaries come from files an operator controls).
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from typing import Any

from controller.errors import InvalidInput
from controller.evidence.model import Item, Report, Status, Table

__all__ = ["RENDERERS", "render_html", "render_json", "render_markdown", "renderer"]


def _md_cell(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _counts(report: Report) -> str:
    counts = report.counts
    return f"({counts['PASS']} PASS, {counts['FAIL']} FAIL, {counts['UNKNOWN']} UNKNOWN)"


def render_markdown(report: Report) -> str:
    lines = [
        f"# Definition of Done: {report.workflow}",
        "",
        f"Generated {report.generated_at} by `rollout audit report`. Overall: **{report.status.value}** "
        f"{_counts(report)}. Missing evidence is UNKNOWN, never PASS.",
        "",
        "| # | Definition of Done | Verdict | Rationale |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {item.number} | {_md_cell(item.title)} | **{item.status.value}** | {_md_cell(item.rationale)} |"
        for item in report.items
    ]
    for item in report.items:
        lines += ["", f"## {item.number}. {item.title}: {item.status.value}", ""]
        lines += [f"- **{c.status.value}** ({c.source}): {c.summary}" for c in item.checks]
    lines += ["", "## Evidence"]
    for table in report.tables:
        lines += _md_evidence(table)
    return "\n".join(lines) + "\n"


def _md_evidence(table: Table) -> list[str]:
    lines = ["", f"### {table.title}", ""]
    if table.note:
        lines += [_md_cell(table.note), ""]
    if not table.rows:
        return [*lines, "(none)"]
    lines.append("| " + " | ".join(_md_cell(c) for c in table.columns) + " |")
    lines.append("|" + "---|" * len(table.columns))
    return lines + ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in table.rows]


_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:72rem;
color:#1b1f24;padding:0 1rem}
h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem}h3{font-size:1rem;margin-top:1.5rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0}th,td{border:1px solid #d0d7de;padding:.35rem .5rem;
text-align:left;vertical-align:top}th{background:#f6f8fa}code{font-family:ui-monospace,monospace}
.PASS{background:#dafbe1;color:#116329}.FAIL{background:#ffebe9;color:#a40e26}.UNKNOWN{background:#fff8c5;color:#7d4e00}
.badge{font-weight:600;padding:.1rem .4rem;border-radius:.3rem;white-space:nowrap}.note{color:#57606a}
td.wrap{word-break:break-word}
"""


def _badge(status: Status) -> str:
    return f'<span class="badge {status.value}">{status.value}</span>'


def render_html(report: Report) -> str:
    """One self-contained HTML file: inline CSS, no scripts, no external fonts, images or links."""
    e = html.escape
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Definition of Done: {e(report.workflow)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Definition of Done: {e(report.workflow)}</h1>",
        f"<p>Generated {e(report.generated_at)} by <code>rollout audit report</code>. Overall: "
        f"{_badge(report.status)} {_counts(report)}. Missing evidence is UNKNOWN, never PASS.</p>",
        "<table><thead><tr><th>#</th><th>Definition of Done</th><th>Verdict</th><th>Rationale</th></tr></thead><tbody>",
    ]
    out += [
        f"<tr><td>{item.number}</td><td>{e(item.title)}</td><td>{_badge(item.status)}</td>"
        f'<td class="wrap">{e(item.rationale)}</td></tr>'
        for item in report.items
    ]
    out.append("</tbody></table>")
    for item in report.items:
        out += _html_item(item)
    out.append("<h2>Evidence</h2>")
    for table in report.tables:
        out += _html_evidence(table)
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def _html_item(item: Item) -> list[str]:
    e = html.escape
    return [
        f"<h2>{item.number}. {e(item.title)} {_badge(item.status)}</h2>",
        "<table><thead><tr><th>Verdict</th><th>Source</th><th>Evidence</th></tr></thead><tbody>",
        *(
            f'<tr><td>{_badge(c.status)}</td><td>{e(c.source)}</td><td class="wrap">{e(c.summary)}</td></tr>'
            for c in item.checks
        ),
        "</tbody></table>",
    ]


def _html_evidence(table: Table) -> list[str]:
    e = html.escape
    out = [f"<h3>{e(table.title)}</h3>"]
    if table.note:
        out.append(f'<p class="note">{e(table.note)}</p>')
    if not table.rows:
        return [*out, '<p class="note">(none)</p>']
    out.append("<table><thead><tr>" + "".join(f"<th>{e(c)}</th>" for c in table.columns) + "</tr></thead><tbody>")
    out += ["<tr>" + "".join(f'<td class="wrap">{e(str(v))}</td>' for v in row) + "</tr>" for row in table.rows]
    return [*out, "</tbody></table>"]


def render_json(report: Report) -> str:
    return json.dumps(report.to_dict(), indent=2, sort_keys=True) + "\n"


RENDERERS: dict[str, Callable[[Report], str]] = {"md": render_markdown, "html": render_html, "json": render_json}


def renderer(fmt: str) -> Callable[[Report], str]:
    """The renderer for ``--format fmt``; ``InvalidInput`` for a format there is none for."""
    if fmt not in RENDERERS:
        raise InvalidInput(f"--format {fmt!r}: choose md, html or json.")
    return RENDERERS[fmt]
