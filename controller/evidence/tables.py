"""The evidence as tables, for the markdown and HTML report (pure): one table per source, in
the order an auditor reads them (bundle, flag document, state, evals, chain, request log,
provisioned configuration). A source that could not be read is a one-cell table saying why."""

from __future__ import annotations

from collections.abc import Callable

from controller.evidence.facts import ChainFacts, Evidence, FlagFacts, RequestFacts, StateFacts
from controller.evidence.items.common import RETENTION_CLASSES, plural, short
from controller.evidence.model import Table
from controller.evidence.stack_export import Bucket, Provisioned

__all__ = ["evidence_tables"]


def evidence_tables(ev: Evidence) -> tuple[Table, ...]:
    """Every table of the report's "Evidence" section."""
    sections: tuple[Callable[[Evidence], list[Table]], ...] = (
        _bundle_tables,
        _flag_tables,
        _state_tables,
        _eval_tables,
        _chain_tables,
        _request_tables,
        _provisioned_tables,
    )
    return tuple(t for section in sections for t in section(ev))


def _error(title: str, error: str) -> Table:
    return Table(title, ("error",), ((error,),))


def _bundle_tables(ev: Evidence) -> list[Table]:
    wf = ev.workflow
    if wf is None:
        return []
    r = wf.logging.retention

    def posture(which: str) -> str:
        p = r.posture(which)
        lock = " " + str(p.object_lock_mode) if p.object_lock_mode else ""
        return f"{which}: {getattr(r, which)} {plural(p.days, 'day')}{lock}"

    owners = wf.owners
    rows = (
        ("bundle", ev.bundle_path or ev.workflow_id),
        ("valid", "yes" if not ev.bundle_problems else "NO: " + "; ".join(ev.bundle_problems)),
        (
            "owners",
            f"{owners.executive.name} (executive); {owners.operational.name}, {owners.operational.team} (operational)",
        ),
        ("sso.idp", f"{wf.sso.idp.name}: issuer {wf.sso.idp.issuer}, audience {wf.sso.idp.audience}"),
        (
            "surface",
            f"{wf.surface.vendor}, {wf.surface.endpoint.kind.value}: {', '.join(m.id for m in wf.surface.models)}",
        ),
        ("data_boundaries", "; ".join(f"{f.category.value}: {f.action.value}" for f in wf.data_boundaries.forbidden)),
        ("logging.retention", "; ".join(posture(w) for w in RETENTION_CLASSES)),
        ("rollout.approvals", ", ".join(f"{c.name} {c.approvals}" for c in wf.rollout.cohorts)),
        (
            "personal_accounts.exceptions",
            ", ".join(f"{e.subject} until {e.expires}" for e in wf.personal_accounts.exceptions) or "none",
        ),
    )
    return [Table("Bundle", ("field", "value"), rows)]


def _flag_tables(ev: Evidence) -> list[Table]:
    f: FlagFacts | None = ev.flags
    if f is None:
        return []
    kill = (f.kill_flag or {}).get("defaultVariant", "-")
    variants = ((f.release_flag or {}).get("variants") or {}).values()
    rows = (
        ("path", f.path),
        ("sha256", f.sha256 or "-"),
        ("error", f.error or "none"),
        ("metadata.version", str(f.version)),
        ("kill switch (defaultVariant)", str(kill)),
        ("release flag variants", ", ".join(short(v) if isinstance(v, str) else str(v) for v in variants) or "-"),
    )
    return [Table("Current flag document", ("field", "value"), rows)]


def _state_tables(ev: Evidence) -> list[Table]:
    s: StateFacts | None = ev.state
    if s is None:
        return [_error("Rollout state", ev.state_error)] if ev.state_error else []
    rows = (
        ("stable", short(s.stable)),
        ("candidate", f"{short(s.candidate)} ({', '.join(s.candidate_cohorts)})" if s.candidate else "none"),
        ("served", "; ".join(f"{c}: {short(d)}" for c, d in s.served.items())),
        ("kill switch", f"ENGAGED by {s.kill_by} at {s.kill_at}: {s.kill_reason}" if s.kill_engaged else "released"),
        ("revision", str(s.revision)),
        ("turned off", s.off_reason or "no"),
    )
    return [Table("Rollout state", ("field", "value"), rows)]


def _eval_tables(ev: Evidence) -> list[Table]:
    title = "Eval results per release"
    if ev.evals_error:
        return [_error(title, ev.evals_error)]
    rows = tuple(
        (
            r.digest,
            r.finished_at,
            r.verdict,
            ", ".join(f"{k} {v:.2f}" for k, v in r.rates.items()),
            r.model,
            r.content_hash,
        )
        for r in ev.evals or ()
    )
    columns = ("release", "finished", "verdict", "rates", "model", "content hash")
    return [Table(title, columns, rows, note="" if ev.evals else "no eval result is stored")]


def _chain_verdict(c: ChainFacts) -> str:
    verdict = (
        f"ok: {c.checked} records, head seq {c.head_seq} {c.head_hash or ''}"
        if c.ok
        else f"BROKEN at seq {c.first_bad_seq}: {c.reason}"
    )
    return verdict + ("; " + "; ".join(c.problems) if c.problems else "")


def _chain_tables(ev: Evidence) -> list[Table]:
    title = "Control-plane audit chain"
    if ev.chain_error:
        return [_error(title, ev.chain_error)]
    c = ev.chain
    if c is None:
        return []
    rows = tuple(
        (str(a.seq), a.time, a.operator, a.action, short(a.release) if a.release else "", a.reason or "")
        for a in c.actions
    )
    columns = ("seq", "time", "operator", "action", "release", "reason")
    return [Table(title, columns, rows, note=f"`rollout audit verify`: {_chain_verdict(c)}")]


def _request_tables(ev: Evidence) -> list[Table]:
    if ev.requests_error:
        return [_error("Request log", ev.requests_error)]
    q: RequestFacts | None = ev.requests
    if q is None:
        return []
    decisions = tuple(
        (
            "yes" if r["is_eval"] else "no",
            str(r["decision"]),
            str(r["records"]),
            str(r["first_time"]),
            str(r["last_time"]),
        )
        for r in q.decisions
    )
    note = (
        f"{q.directory}: {plural(len(q.files), 'file')}; {q.scanned} logged prompts/outputs re-scanned, "
        f"{plural(len(q.unredacted), 'unredacted finding')}"
    )
    tables = [
        Table("Request log: records by decision", ("eval", "decision", "records", "first", "last"), decisions, note)
    ]
    if q.near_misses:
        columns = ("location", "category", "action", "decision", "requests", "findings")
        tables.append(
            Table(
                "Request log: forbidden input found (user requests)",
                ("where", *columns[1:]),
                tuple(tuple(str(r[k]) for k in columns) for r in q.near_misses),
            )
        )
    if q.unredacted:
        tables.append(
            Table(
                "Request log: values found again in logged text",
                ("request", "eval", "release", "field", "detectors"),
                tuple(
                    (u.request_id, "yes" if u.eval else "no", short(u.release), u.field, ", ".join(u.detectors))
                    for u in q.unredacted
                ),
            )
        )
    return tables


def _provisioned_tables(ev: Evidence) -> list[Table]:
    p: Provisioned | None = ev.provisioned
    if p is None:
        return []
    rows = (
        ("file", f"{p.source} (sha256 {p.sha256[:16]})"),
        ("stack", f"{p.project}/{p.stack}"),
        ("exported", f"{p.time} by pulumi {p.pulumi_version}"),
        ("resources", str(p.resources)),
        *(
            (
                f"authorizer {a.urn.rsplit('::', 1)[-1]}",
                f"{a.kind}: issuer {a.issuer}, audiences {', '.join(map(str, a.audiences))}",
            )
            for a in p.authorizers
        ),
        *((f"route {r.route_key}", f"{r.authorization_type} ({r.authorizer_id})") for r in p.routes),
        *((f"permission set {s.name}", f"{s.arn}, session {s.session_duration}") for s in p.permission_sets),
    )
    columns = ("log class", "bucket", "posture", "Object Lock", "lifecycle days", "encryption", "versioning")
    return [
        Table("Provisioned configuration (pulumi stack export)", ("field", "value"), rows),
        Table("Provisioned buckets", columns, tuple(_bucket_row(b) for b in p.buckets)),
    ]


def _bucket_row(b: Bucket) -> tuple[str, ...]:
    if b.lock_config:
        amount, unit = (b.lock_days, "days") if b.lock_days is not None else (b.lock_years, "years")
        lock = f"{b.lock_mode} {amount} {unit}"
    else:
        lock = "none"
    current = "/".join(map(str, b.current_days)) or "-"
    noncurrent = "/".join(map(str, b.noncurrent_days)) or "-"
    lifecycle = f"current {current}, noncurrent {noncurrent}"
    return (
        str(b.log_class),
        b.name,
        str(b.posture),
        lock,
        lifecycle,
        f"{b.sse_algorithm or 'none'}",
        str(b.versioning),
    )
