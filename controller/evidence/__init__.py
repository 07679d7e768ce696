"""Evidence for auditors and operators: the audit report and the weekly review.

Everything here reads; nothing writes. The pure parts judge plain data; ``collect`` is the
only I/O (the evidence collector both commands use):

    model.py          verdicts (PASS / FAIL / UNKNOWN), checks, items, the report, tables
    facts.py          the evidence judged: Evidence (report), ReviewEvidence (review), their parts
    stack_export.py   a `pulumi stack export` read into data
    items/            the five Definition-of-Done items, one module each, and their checks
    tables.py         the report's evidence as tables
    render.py         the report as markdown, HTML or JSON
    report.py         build_report(Evidence) -> Report, the evidence as JSON, the --fail-on exit code
    request_log.py    the review window, the request-log SQL (DuckDB and Athena), RequestLog
    review.py         the weekly review and its exit code
    collect.py        the collector: state, chain, evals, flags, request log, stack export
"""
