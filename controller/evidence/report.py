"""The auditor's report: the Definition of Done, item by item, each PASS, FAIL or UNKNOWN with
the evidence that decided it.

    (1) one workflow on sanctioned tools with SSO
    (2) data boundaries published and enforced
    (3) an audit trail for prompts, context and outputs
    (4) a documented review step and a kill switch
    (5) a minimal eval harness used before changes

Verdicts, decided once (``Item.status``):

- an item is a list of checks; each check is PASS, FAIL or UNKNOWN and names its source
  (bundle, flag document, rollout state, eval results, audit chain, request log, stack export);
- an item FAILs when any check fails, else it is UNKNOWN when any check is, else it PASSes;
- evidence that is missing (no eval result, no request record, no stack export, an empty audit
  chain, no live flag document) is UNKNOWN, never PASS; evidence that does not verify (a broken
  chain, an edited eval result, an unreadable log) is FAIL;
- a provisioned value that differs from the bundle (retention days, Object Lock mode, JWT
  issuer...) is FAIL naming both values.

Layers: ``build_report(Evidence) -> Report`` and ``render_markdown`` / ``render_html`` /
``render_json`` are pure. ``read_stack_export(doc)`` parses a ``pulumi stack export`` document
(pure). ``collect_evidence`` is the adapter: the only I/O here.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import html
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from controller.errors import InvalidInput, RolloutError
from controller.evidence.review import ChainAction, EvalRun, RequestLog, Window, detector_categories

__all__ = [
    "ITEMS",
    "RENDERERS",
    "Check",
    "ChainFacts",
    "Evidence",
    "ExpectedBucket",
    "FlagFacts",
    "Item",
    "Provisioned",
    "ReleaseFacts",
    "Report",
    "RequestFacts",
    "StateFacts",
    "Status",
    "Table",
    "Unredacted",
    "build_report",
    "collect_evidence",
    "combine",
    "expected_buckets",
    "load_stack_export",
    "read_stack_export",
    "render",
    "render_html",
    "render_json",
    "render_markdown",
]

REPORT_SCHEMA = "ai-rollout.audit-report/v1"


class Status(StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"
    UNKNOWN = "UNKNOWN"


# Where a check's evidence came from (shown with every check).
BUNDLE, FLAGS, STATE, EVALS, CHAIN, REQUESTS, STACK = (
    "bundle",
    "flag document",
    "rollout state",
    "eval results",
    "audit chain",
    "request log",
    "stack export",
)

ITEMS = (
    (1, "sso", "One workflow on sanctioned tools with SSO"),
    (2, "boundaries", "Data boundaries published and enforced"),
    (3, "audit-trail", "An audit trail for prompts, context and outputs"),
    (4, "review-and-kill-switch", "A documented review step and a kill switch"),
    (5, "eval-before-changes", "A minimal eval harness used before changes"),
)


@dataclass(frozen=True)
class Check:
    status: Status
    source: str
    summary: str

    def to_dict(self) -> dict[str, str]:
        return {"status": self.status.value, "source": self.source, "summary": self.summary}


def _pass(source: str, summary: str) -> Check:
    return Check(Status.PASS, source, summary)


def _fail(source: str, summary: str) -> Check:
    return Check(Status.FAIL, source, summary)


def _unknown(source: str, summary: str) -> Check:
    return Check(Status.UNKNOWN, source, summary)


def combine(statuses: Iterable[Status]) -> Status:
    """FAIL if any is FAIL, else UNKNOWN if any is UNKNOWN (or there is nothing), else PASS."""
    seen = set(statuses)
    if Status.FAIL in seen:
        return Status.FAIL
    if Status.UNKNOWN in seen or not seen:
        return Status.UNKNOWN
    return Status.PASS


@dataclass(frozen=True)
class Item:
    number: int
    key: str
    title: str
    checks: tuple[Check, ...]

    @property
    def status(self) -> Status:
        return combine(c.status for c in self.checks)

    @property
    def rationale(self) -> str:
        """Which evidence decided the verdict: the failing checks, else the unknown ones, else
        every source that passed."""
        status = self.status
        if status is Status.PASS:
            sources = list(dict.fromkeys(c.source for c in self.checks))
            return f"every check passed, on evidence from: {', '.join(sources)}."
        deciding = [c for c in self.checks if c.status is status]
        prefix = "failed" if status is Status.FAIL else "no evidence"
        return f"{prefix}: " + " ".join(f"[{c.source}] {c.summary}" for c in deciding)

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "key": self.key,
            "title": self.title,
            "status": self.status.value,
            "rationale": self.rationale,
            "checks": [c.to_dict() for c in self.checks],
        }


# --- evidence (plain data; collect_evidence fills it) ------------------------------------------


@dataclass(frozen=True)
class FlagFacts:
    """The live flag document the gateway reads."""

    path: str
    sha256: str | None = None
    error: str | None = None  # unreadable or not JSON
    kill_flag: Mapping[str, Any] | None = None
    release_flag: Mapping[str, Any] | None = None
    version: Any = None


@dataclass(frozen=True)
class StateFacts:
    stable: str | None
    candidate: str | None
    candidate_cohorts: tuple[str, ...]
    served: Mapping[str, str]
    kill_engaged: bool
    kill_by: str | None
    kill_at: str | None
    kill_reason: str | None
    revision: int
    off_reason: str | None = None
    kill_pending: bool = False


@dataclass(frozen=True)
class ChainFacts:
    ok: bool
    status: str
    checked: int
    first_bad_seq: int | None
    reason: str | None
    ahead: int
    head_seq: int | None
    head_hash: str | None
    problems: tuple[str, ...] = ()
    actions: tuple[ChainAction, ...] = ()

    @property
    def verified(self) -> bool:
        return self.ok and not self.problems


@dataclass(frozen=True)
class ReleaseFacts:
    """A stored release, re-verified against its digest: what model it names, what it sanctions."""

    digest: str
    adapter: str | None = None
    model_id: str | None = None
    endpoint_kind: str | None = None
    sanctioned_models: tuple[str, ...] = ()
    error: str | None = None


@dataclass(frozen=True)
class Unredacted:
    """A logged prompt or output in which the bundle's detectors still find a value."""

    request_id: str
    eval: bool
    release: str | None
    field: str
    detectors: tuple[str, ...]


@dataclass(frozen=True)
class RequestFacts:
    directory: str
    files: tuple[str, ...]
    decisions: tuple[Mapping[str, Any], ...] = ()  # queries/decisions.sql
    models: tuple[Mapping[str, Any], ...] = ()  # queries/models.sql
    near_misses: tuple[Mapping[str, Any], ...] = ()  # queries/near_misses.sql
    refusals: tuple[Mapping[str, Any], ...] = ()  # queries/refusals.sql
    scanned: int = 0  # logged prompts/outputs re-scanned
    unredacted: tuple[Unredacted, ...] = ()

    def count(self, *, is_eval: bool | None = None, decision: str | None = None, key: str = "records") -> int:
        return sum(
            int(r[key])
            for r in self.decisions
            if (is_eval is None or bool(r["is_eval"]) is is_eval) and (decision is None or r["decision"] == decision)
        )


@dataclass(frozen=True)
class Bucket:
    """One S3 bucket of the stack and the configuration resources that name it."""

    urn: str
    name: str
    log_class: str | None
    posture: str | None
    workflow: str | None
    object_lock_enabled: Any = None
    lock_config: bool = False
    lock_mode: Any = None
    lock_days: Any = None
    lock_years: Any = None
    lifecycle: bool = False
    current_days: tuple[Any, ...] = ()
    noncurrent_days: tuple[Any, ...] = ()
    sse: bool = False
    sse_algorithm: Any = None
    kms_key: Any = None
    versioning: Any = None


@dataclass(frozen=True)
class Authorizer:
    urn: str
    kind: Any
    issuer: Any
    audiences: tuple[Any, ...]


@dataclass(frozen=True)
class Route:
    urn: str
    route_key: Any
    authorization_type: Any
    authorizer_id: Any


@dataclass(frozen=True)
class PermissionSet:
    urn: str
    name: Any
    arn: Any
    session_duration: Any
    inline_policy: Any = None


@dataclass(frozen=True)
class Function:
    urn: str
    name: Any
    handler: Any


@dataclass(frozen=True)
class Schedule:
    urn: str
    expression: Any


@dataclass(frozen=True)
class Provisioned:
    """What a ``pulumi stack export`` says is deployed (resource outputs, else inputs)."""

    source: str
    sha256: str
    stack: str | None
    project: str | None
    pulumi_version: str | None
    time: str | None
    resources: int
    buckets: tuple[Bucket, ...] = ()
    authorizers: tuple[Authorizer, ...] = ()
    routes: tuple[Route, ...] = ()
    permission_sets: tuple[PermissionSet, ...] = ()
    functions: tuple[Function, ...] = ()
    schedules: tuple[Schedule, ...] = ()
    outputs: Mapping[str, Any] = field(default_factory=dict)

    def buckets_of(self, log_class: str, workflow: str) -> list[Bucket]:
        return [b for b in self.buckets if b.log_class == log_class and b.workflow in (workflow, None)]


@dataclass(frozen=True)
class Evidence:
    """Everything the report judges. ``None`` means the evidence is missing; ``*_error`` that it
    could not be read or did not verify."""

    workflow_id: str
    generated_at: str
    workflow: Any = None  # controller.bundle.models.Workflow; None: workflow.yaml unreadable
    bundle_path: str | None = None
    bundle_problems: tuple[str, ...] = ()
    documents: Mapping[str, bool] = field(default_factory=dict)  # referenced runbook -> exists
    flags: FlagFacts | None = None
    state: StateFacts | None = None
    state_error: str | None = None
    chain: ChainFacts | None = None
    chain_error: str | None = None
    evals: tuple[EvalRun, ...] | None = None
    evals_error: str | None = None
    releases: Mapping[str, ReleaseFacts] = field(default_factory=dict)
    requests: RequestFacts | None = None
    requests_error: str | None = None
    provisioned: Provisioned | None = None


@dataclass(frozen=True)
class Report:
    workflow: str
    generated_at: str
    items: tuple[Item, ...]
    evidence: Mapping[str, Any]  # JSON-ready facts, by source (see _facts)
    tables: tuple[Table, ...]  # the same facts as tables, for md/html

    @property
    def status(self) -> Status:
        return combine(i.status for i in self.items)

    @property
    def counts(self) -> dict[str, int]:
        return {s.value: sum(1 for i in self.items if i.status is s) for s in Status}

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": REPORT_SCHEMA,
            "workflow": self.workflow,
            "generated_at": self.generated_at,
            "overall": self.status.value,
            "counts": self.counts,
            "items": [i.to_dict() for i in self.items],
            "evidence": self.evidence,
        }


@dataclass(frozen=True)
class Table:
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    note: str = ""


# --- the stack export (pure) --------------------------------------------------------------------

_SECRET_SIG = "4dabf18193072939515e22adb298388d"  # pulumi's marker of a secret value
_SECRET = "(secret)"
_T = {
    # pulumi-aws 7 tokens (what infra/ creates), then the 6.x names of the same resources
    "bucket": ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2"),
    "object_lock": (
        "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration",
        "aws:s3/bucketObjectLockConfigurationV2:BucketObjectLockConfigurationV2",
    ),
    "lifecycle": (
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
        "aws:s3/bucketLifecycleConfigurationV2:BucketLifecycleConfigurationV2",
    ),
    "sse": (
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
    ),
    "versioning": ("aws:s3/bucketVersioning:BucketVersioning", "aws:s3/bucketVersioningV2:BucketVersioningV2"),
    "authorizer": ("aws:apigatewayv2/authorizer:Authorizer",),
    "route": ("aws:apigatewayv2/route:Route",),
    "permission_set": ("aws:ssoadmin/permissionSet:PermissionSet",),
    "permission_set_policy": ("aws:ssoadmin/permissionSetInlinePolicy:PermissionSetInlinePolicy",),
    "function": ("aws:lambda/function:Function",),
    "schedule": ("aws:cloudwatch/eventRule:EventRule",),
    "stack": ("pulumi:pulumi:Stack",),
}
LOG_CLASS_TAG = "ai-rollout:log-class"
POSTURE_TAG = "ai-rollout:retention-posture"
WORKFLOW_TAG = "ai-rollout:workflow"
REDACTION_HANDLER = "infra.handlers.redaction.handler"


def _unsecret(value: Any) -> Any:
    """Replace pulumi's secret envelopes with a marker (an export without --show-secrets)."""
    if isinstance(value, Mapping):
        if _SECRET_SIG in value:
            return _SECRET
        return {k: _unsecret(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unsecret(v) for v in value]
    return value


def _prop(resource: Mapping[str, Any], *path: str) -> Any:
    """A property from the resource's outputs (what the provider reports), else its inputs."""
    for side in ("outputs", "inputs"):
        value: Any = resource.get(side) or {}
        for part in path:
            value = value.get(part) if isinstance(value, Mapping) else None
        if value is not None:
            return _unsecret(value)
    return None


def _number(value: Any) -> Any:
    """JSON numbers from state are floats (400.0): show and compare them as integers."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def read_stack_export(doc: Any, *, source: str = "stack export", sha256: str = "") -> Provisioned:
    """Parse the JSON of ``pulumi stack export``; ``InvalidInput`` if it is not one. Pure."""
    deployment = doc.get("deployment") if isinstance(doc, Mapping) else None
    resources = deployment.get("resources") if isinstance(deployment, Mapping) else None
    if not isinstance(resources, list):
        raise InvalidInput(
            f'{source}: not a `pulumi stack export` document (expected {{"version": 3, "deployment": '
            '{"resources": [...]}}).'
        )
    live = [r for r in resources if isinstance(r, Mapping) and not r.get("delete")]

    def of(kind: str) -> list[Mapping[str, Any]]:
        return [r for r in live if r.get("type") in _T[kind]]

    def by_bucket(kind: str) -> dict[str, Mapping[str, Any]]:
        return {str(_prop(r, "bucket")): r for r in of(kind)}

    locks, lifecycles, sses, versions = (by_bucket(k) for k in ("object_lock", "lifecycle", "sse", "versioning"))
    buckets = []
    for r in of("bucket"):
        name = str(_prop(r, "bucket") or r.get("id") or "")
        tags = _prop(r, "tags") or {}
        lock, life, sse, ver = locks.get(name), lifecycles.get(name), sses.get(name), versions.get(name)
        rules = (_prop(life, "rules") or []) if life else []
        enabled = [x for x in rules if isinstance(x, Mapping) and x.get("status", "Enabled") == "Enabled"]
        current = tuple(
            _number(x["expiration"].get("days")) for x in enabled if isinstance(x.get("expiration"), Mapping)
        )
        noncurrent = tuple(
            _number(x["noncurrentVersionExpiration"].get("noncurrentDays"))
            for x in enabled
            if isinstance(x.get("noncurrentVersionExpiration"), Mapping)
        )
        sse_rules = (_prop(sse, "rules") or []) if sse else []
        default = next((x.get("applyServerSideEncryptionByDefault") for x in sse_rules if isinstance(x, Mapping)), None)
        default = default if isinstance(default, Mapping) else {}
        buckets.append(
            Bucket(
                urn=str(r.get("urn", "")),
                name=name,
                log_class=tags.get(LOG_CLASS_TAG) if isinstance(tags, Mapping) else None,
                posture=tags.get(POSTURE_TAG) if isinstance(tags, Mapping) else None,
                workflow=tags.get(WORKFLOW_TAG) if isinstance(tags, Mapping) else None,
                object_lock_enabled=_prop(r, "objectLockEnabled"),
                lock_config=lock is not None,
                lock_mode=_prop(lock, "rule", "defaultRetention", "mode") if lock else None,
                lock_days=_number(_prop(lock, "rule", "defaultRetention", "days")) if lock else None,
                lock_years=_number(_prop(lock, "rule", "defaultRetention", "years")) if lock else None,
                lifecycle=life is not None,
                current_days=current,
                noncurrent_days=noncurrent,
                sse=sse is not None,
                sse_algorithm=default.get("sseAlgorithm"),
                kms_key=default.get("kmsMasterKeyId"),
                versioning=_prop(ver, "versioningConfiguration", "status") if ver else None,
            )
        )
    policies = {str(_prop(r, "permissionSetArn")): _prop(r, "inlinePolicy") for r in of("permission_set_policy")}
    permission_sets = []
    for r in of("permission_set"):
        arn = _prop(r, "arn")
        policy = policies.get(str(arn))
        if policy is None and len(policies) == 1 and len(of("permission_set")) == 1:
            policy = next(iter(policies.values()))
        permission_sets.append(
            PermissionSet(str(r.get("urn", "")), _prop(r, "name"), arn, _prop(r, "sessionDuration"), policy)
        )
    stack = next(iter(of("stack")), None)
    manifest = deployment.get("manifest") if isinstance(deployment.get("manifest"), Mapping) else {}
    stack_name = project = None
    if stack is not None:
        parts = str(stack.get("urn", "")).split("::")
        if len(parts) >= 2:
            stack_name, project = parts[0].removeprefix("urn:pulumi:"), parts[1]
    return Provisioned(
        source=source,
        sha256=sha256,
        stack=stack_name,
        project=project,
        pulumi_version=manifest.get("version"),
        time=manifest.get("time"),
        resources=len(live),
        buckets=tuple(buckets),
        authorizers=tuple(
            Authorizer(
                str(r.get("urn", "")),
                _prop(r, "authorizerType"),
                _prop(r, "jwtConfiguration", "issuer"),
                tuple(_prop(r, "jwtConfiguration", "audiences") or ()),
            )
            for r in of("authorizer")
        ),
        routes=tuple(
            Route(str(r.get("urn", "")), _prop(r, "routeKey"), _prop(r, "authorizationType"), _prop(r, "authorizerId"))
            for r in of("route")
        ),
        permission_sets=tuple(permission_sets),
        functions=tuple(Function(str(r.get("urn", "")), _prop(r, "name"), _prop(r, "handler")) for r in of("function")),
        schedules=tuple(Schedule(str(r.get("urn", "")), _prop(r, "scheduleExpression")) for r in of("schedule")),
        outputs=_unsecret((stack or {}).get("outputs") or {}),
    )


# --- what the bundle says must be provisioned (mirrors infra.derive; a test keeps them equal) ---


@dataclass(frozen=True)
class ExpectedBucket:
    log_class: str
    posture: str
    days: int
    object_lock_mode: str | None  # as S3 spells it: GOVERNANCE | COMPLIANCE


def expected_buckets(workflow: Any) -> dict[str, ExpectedBucket]:
    """Per log class the program creates from the bundle: posture, days, Object Lock mode."""
    retention = workflow.logging.retention

    def rule(log_class: str, which: str, lock: bool) -> ExpectedBucket:
        posture = retention.posture(which)
        mode = posture.object_lock_mode.upper() if lock and posture.object_lock_mode else None
        return ExpectedBucket(log_class, getattr(retention, which), posture.days, mode)

    return {
        "audit_log": rule("audit_log", "audit_log", True),
        "control_plane": rule("control_plane", "control_plane", True),
        "raw_invocation_logs": rule("raw_invocation_logs", "raw_invocation_logs", False),
    }


def _sanctioned_arns(workflow: Any) -> set[str]:
    region = workflow.surface.endpoint.region or ""
    return {f"arn:aws:bedrock:{region}::foundation-model/{m.id}" for m in workflow.surface.models}


# --- the checks (pure) ---------------------------------------------------------------------------


def _short(digest: str | None) -> str:
    return "off" if not digest or digest == "off" else digest[:12]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _posture_text(posture: Any) -> str:
    lock = f" {posture.object_lock_mode}" if posture.object_lock_mode else ""
    return f"{_plural(posture.days, 'day')}{lock} ({posture.source})"


def _duration(td: dt.timedelta) -> str:
    """As the bundle writes durations: 7d, 24h, 30m."""
    seconds = int(td.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _bundle_valid(ev: Evidence) -> Check:
    if ev.workflow is None:
        problems = "; ".join(ev.bundle_problems) or "not found"
        return _unknown(BUNDLE, f"the bundle could not be read: {problems}")
    if ev.bundle_problems:
        return _fail(BUNDLE, f"the bundle does not validate: {'; '.join(ev.bundle_problems)}")
    return _pass(BUNDLE, f"the bundle {ev.bundle_path or ev.workflow_id} validates (`rollout validate`).")


def _release_sanctioned(rel: ReleaseFacts | None, digest: str, workflow: Any) -> Check | None:
    """None when sanctioned; else the failing/unknown check."""
    if rel is None or rel.error:
        why = rel.error if rel is not None else "it was not read"
        return _fail(STATE, f"release {_short(digest)} cannot be verified: {why}")
    if rel.adapter == "local":
        return None
    if rel.model_id not in rel.sanctioned_models or rel.adapter != rel.endpoint_kind:
        return _fail(
            STATE,
            f"release {_short(digest)} names model {rel.model_id} ({rel.adapter}), not one its bundle "
            f"sanctions ({', '.join(rel.sanctioned_models)} via {rel.endpoint_kind}).",
        )
    return None


def _model_text(rel: ReleaseFacts, workflow: Any = None) -> str:
    if rel.adapter == "local":
        return f"{_short(rel.digest)}: {rel.model_id} (the offline local baseline; no vendor is called)"
    text = f"{_short(rel.digest)}: {rel.model_id} via {rel.adapter}"
    if workflow is not None and rel.model_id not in {m.id for m in workflow.surface.models}:
        text += " (sanctioned by that release's bundle, not by the current one: a change since)"
    return text


def _served_checks(ev: Evidence) -> list[Check]:
    if ev.state_error:
        return [_fail(STATE, f"the rollout state cannot be read: {ev.state_error}")]
    if ev.state is None:
        return [_unknown(STATE, "there is no rollout state: nothing has been released to anyone.")]
    digests = sorted({d for d in ev.state.served.values() if d and d != "off"})
    if not digests:
        return [_unknown(STATE, "no release is served to any cohort, so no sanctioned use is shown yet.")]
    problems = [c for d in digests if (c := _release_sanctioned(ev.releases.get(d), d, ev.workflow))]
    if problems:
        return problems
    served = "; ".join(f"{c} -> {_short(d)}" for c, d in ev.state.served.items())
    models = "; ".join(_model_text(ev.releases[d], ev.workflow) for d in digests)
    return [_pass(STATE, f"served: {served}. Every served release names a model its bundle sanctions: {models}.")]


def _requests_missing(ev: Evidence) -> Check | None:
    if ev.requests_error:
        return _fail(REQUESTS, f"the request log cannot be read: {ev.requests_error}")
    if ev.requests is None or ev.requests.count(is_eval=False) == 0:
        where = ev.requests.directory if ev.requests is not None else "the state directory"
        return _unknown(REQUESTS, f"no user request is recorded in {where}.")
    return None


def _item_sso(ev: Evidence) -> Item:
    checks = [_bundle_valid(ev)]
    wf = ev.workflow
    if wf is not None:
        idp = wf.sso.idp
        checks.append(
            _pass(
                BUNDLE,
                f"SSO required through {idp.name} (issuer {idp.issuer}, audience {idp.audience}, tokens at "
                f"most {_duration(idp.max_token_lifetime)}); domains {', '.join(wf.sso.allowed_email_domains)}; groups "
                f"{', '.join(wf.sso.allowed_groups)}; personal accounts not allowed; sanctioned surface: "
                f"{wf.surface.vendor} {wf.surface.endpoint.kind.value}, models "
                f"{', '.join(m.id for m in wf.surface.models)}; approved tools: "
                f"{', '.join(t.name for t in wf.surface.approved_tools)}.",
            )
        )
        today = dt.date.fromisoformat(ev.generated_at[:10])
        expired = [e for e in wf.personal_accounts.exceptions if e.expires < today]
        if expired:
            names = ", ".join(f"{e.subject} (expired {e.expires.isoformat()})" for e in expired)
            checks.append(_fail(BUNDLE, f"personal-account exceptions past their expiry: {names}."))
    checks += _served_checks(ev)
    missing = _requests_missing(ev)
    if missing:
        checks.append(missing)
    else:
        req = ev.requests
        assert req is not None
        unverified = sum(
            int(r["without_subject"]) for r in req.decisions if not r["is_eval"] and r["decision"] != "refused"
        )
        refused = ", ".join(f"{r['reason']} x{r['requests']}" for r in req.refusals) or "none"
        past = req.count(is_eval=False) - req.count(is_eval=False, decision="refused")
        if unverified:
            checks.append(
                _fail(REQUESTS, f"{_plural(unverified, 'request')} past the identity check carry no verified subject.")
            )
        else:
            checks.append(
                _pass(
                    REQUESTS,
                    f"every one of {_plural(past, 'user request')} past the identity check "
                    f"carries a verified, pseudonymous subject; refused identities: {refused}.",
                )
            )
        bad = []
        used = []
        for row in req.models:
            rel = ev.releases.get(str(row["release_digest"]))
            if rel is None or rel.error:
                bad.append(f"release {_short(row['release_digest'])} answered {row['requests']} but cannot be verified")
            elif (row["adapter"], row["model_id"]) != (rel.adapter, rel.model_id):
                bad.append(
                    f"{row['requests']} answers of release {_short(rel.digest)} came from {row['model_id']} "
                    f"({row['adapter']}), not the release's {rel.model_id} ({rel.adapter})"
                )
            elif (problem := _release_sanctioned(rel, rel.digest, wf)) is not None:
                bad.append(problem.summary)
            else:
                used.append(f"{_model_text(rel, wf)} x{row['requests']}")
        if bad:
            checks.append(_fail(REQUESTS, "; ".join(bad) + "."))
        elif used:
            checks.append(
                _pass(
                    REQUESTS,
                    f"answered user requests came only from the model their release sanctions: {'; '.join(used)}.",
                )
            )
    checks += _gateway_checks(ev)
    return _item(1, checks)


def _gateway_checks(ev: Evidence) -> list[Check]:
    prov, wf = ev.provisioned, ev.workflow
    if prov is None:
        return [
            _unknown(
                STACK,
                "no `pulumi stack export` was given (--stack-export), so the JWT authorizer and "
                "the SSO permission set are not shown.",
            )
        ]
    if wf is None:
        return [_unknown(STACK, "without the bundle the provisioned gateway cannot be compared with it.")]
    checks: list[Check] = []
    idp = wf.sso.idp
    jwt = [a for a in prov.authorizers if a.kind == "JWT"]
    if not jwt:
        checks.append(_fail(STACK, f"{prov.source} has no JWT authorizer (aws:apigatewayv2/authorizer:Authorizer)."))
    for a in jwt:
        if _SECRET in (a.issuer, *a.audiences):
            checks.append(
                _unknown(
                    STACK,
                    f"JWT authorizer {a.urn.rsplit('::', 1)[-1]}: issuer or audience is a secret "
                    "in this export; export with --show-secrets to compare it.",
                )
            )
            continue
        problems = []
        if a.issuer != idp.issuer:
            problems.append(f"issuer {a.issuer} differs from the bundle's sso.idp.issuer {idp.issuer}")
        if list(a.audiences) != [idp.audience]:
            problems.append(
                f"audiences {', '.join(map(str, a.audiences)) or '(none)'} differ from the bundle's "
                f"sso.idp.audience {idp.audience}"
            )
        name = a.urn.rsplit("::", 1)[-1]
        if problems:
            checks.append(_fail(STACK, f"JWT authorizer {name}: {'; '.join(problems)}."))
        else:
            checks.append(
                _pass(STACK, f"JWT authorizer {name}: issuer {a.issuer}, audience {idp.audience}, as the bundle says.")
            )
    if not prov.routes:
        checks.append(_fail(STACK, f"{prov.source} has no API route (aws:apigatewayv2/route:Route)."))
    open_routes = [r for r in prov.routes if r.authorization_type != "JWT" or not r.authorizer_id]
    if open_routes:
        names = ", ".join(f"{r.route_key} ({r.authorization_type or 'NONE'})" for r in open_routes)
        checks.append(_fail(STACK, f"routes not behind the JWT authorizer: {names}."))
    elif prov.routes:
        keys = ", ".join(str(r.route_key) for r in prov.routes)
        checks.append(_pass(STACK, f"every route requires the JWT authorizer: {keys}."))
    if not prov.permission_sets:
        checks.append(
            _fail(
                STACK,
                f"{prov.source} has no IAM Identity Center permission set (aws:ssoadmin/permissionSet:PermissionSet).",
            )
        )
    sanctioned = _sanctioned_arns(wf)
    for ps in prov.permission_sets:
        grants = _bedrock_grants(ps.inline_policy)
        if grants is None:
            checks.append(
                _fail(STACK, f"permission set {ps.name}: no readable inline policy, so its model access is not shown.")
            )
            continue
        extra = sorted(
            {res for action, res in grants if action.startswith("bedrock:Invoke") and res not in sanctioned}
            | {
                res
                for action, res in grants
                if not action.startswith("bedrock:Invoke") and not _is_bundle_guardrail(res, wf)
            }
        )
        if extra:
            checks.append(
                _fail(
                    STACK,
                    f"permission set {ps.name} allows Bedrock on resources the bundle does not "
                    f"sanction: {', '.join(extra)}.",
                )
            )
        else:
            models = sorted({res for action, res in grants if action.startswith("bedrock:Invoke")})
            checks.append(
                _pass(
                    STACK,
                    f"SSO permission set {ps.name} (session {ps.session_duration}) may invoke only "
                    f"the sanctioned models: {', '.join(models) or 'none'}.",
                )
            )
    return checks


def _is_bundle_guardrail(resource: str, workflow: Any) -> bool:
    g = workflow.surface.guardrail
    return g is not None and (resource == g.id or resource.split(":guardrail/")[-1] == g.id)


def _bedrock_grants(policy: Any) -> list[tuple[str, str]] | None:
    """(action, resource) of every Allow statement naming a bedrock action; None if unreadable."""
    if policy is None or policy == _SECRET:
        return None
    try:
        doc = json.loads(policy) if isinstance(policy, str) else policy
    except ValueError:
        return None
    statements = doc.get("Statement") if isinstance(doc, Mapping) else None
    if isinstance(statements, Mapping):
        statements = [statements]
    if not isinstance(statements, list):
        return None

    def listed(value: Any) -> list[str]:
        return [str(v) for v in (value if isinstance(value, list) else [value]) if v is not None]

    grants = []
    for s in statements:
        if not isinstance(s, Mapping) or s.get("Effect") != "Allow":
            continue
        for action in listed(s.get("Action")):
            if action.lower().startswith("bedrock:") or action == "*":
                grants += [(action, r) for r in listed(s.get("Resource"))]
    return grants


def _eval_of(ev: Evidence, digest: str) -> list[EvalRun]:
    return sorted((r for r in ev.evals or () if r.digest == digest), key=lambda r: (r.finished_at, r.key))


def _evals_missing(ev: Evidence) -> Check | None:
    if ev.evals_error:
        return _fail(EVALS, f"stored eval results do not verify: {ev.evals_error}")
    if not ev.evals:
        return _unknown(EVALS, "no eval result is stored (`rollout eval run` has not run).")
    return None


def _served_digests(ev: Evidence) -> list[str]:
    if ev.state is None:
        return []
    return sorted({d for d in ev.state.served.values() if d and d != "off"})


def _item_boundaries(ev: Evidence) -> Item:
    checks = [_bundle_valid(ev)]
    wf = ev.workflow
    if wf is not None:
        parts = []
        for f in wf.data_boundaries.forbidden:
            parts.append(f"{f.category.value} ({f.action.value}: {', '.join(f.detectors)})")
        checks.append(
            _pass(
                BUNDLE,
                "published (`rollout policy` renders it from the same bundle): forbidden "
                f"{'; '.join(parts)}; {_plural(len(wf.data_boundaries.patterns), 'bundle pattern')}; "
                f"redaction ({wf.logging.redaction.strategy}) applies to {', '.join(wf.logging.redaction.applies_to)}.",
            )
        )
    # enforced, as the evals show: policy-compliance of every served release
    missing = _evals_missing(ev)
    if missing:
        checks.append(missing)
    else:
        served = _served_digests(ev)
        if not served:
            checks.append(
                _unknown(EVALS, "no release is served, so no served release's policy-compliance eval is shown.")
            )
        for digest in served:
            runs = _eval_of(ev, digest)
            if not runs:
                checks.append(_unknown(EVALS, f"served release {_short(digest)} has no stored eval."))
                continue
            last = runs[-1]
            rate = last.rates.get("policy-compliance")
            if rate is None or rate < 1.0:
                checks.append(
                    _fail(
                        EVALS,
                        f"the latest eval of served release {_short(digest)} ({last.content_hash[:12]}) "
                        f"scored policy-compliance {rate if rate is not None else 'not at all'}, not 1.0.",
                    )
                )
            else:
                checks.append(
                    _pass(
                        EVALS,
                        f"the latest eval of served release {_short(digest)} "
                        f"({last.content_hash[:12]}, {last.finished_at}) scored policy-compliance 1.0.",
                    )
                )
    # enforced, as the request log shows
    missing = _requests_missing(ev)
    if missing:
        checks.append(missing)
    else:
        req = ev.requests
        assert req is not None
        prompt = [r for r in req.near_misses if r["location"] == "prompt"]
        through = {}
        for r in prompt:
            if r["action"] == "block" and r["decision"] != "blocked":
                through[r["category"]] = through.get(r["category"], 0) + int(r["requests"])
        blocked = {}
        redacted = {}
        for r in prompt:
            target = blocked if r["decision"] == "blocked" else redacted
            target[r["category"]] = target.get(r["category"], 0) + int(r["requests"])
        if through:
            names = ", ".join(f"{c} x{n}" for c, n in sorted(through.items()))
            checks.append(
                _fail(REQUESTS, f"user requests answered although their question held a `block` category: {names}.")
            )
        else:
            b = ", ".join(f"{c} x{n}" for c, n in sorted(blocked.items())) or "none"
            r_ = ", ".join(f"{c} x{n}" for c, n in sorted(redacted.items())) or "none"
            checks.append(
                _pass(
                    REQUESTS,
                    f"no user request with a `block` category was answered; blocked: {b}; "
                    f"answered with values redacted: {r_}.",
                )
            )
        promoted = {a.release for a in (ev.chain.actions if ev.chain else ()) if a.action == "promote"}
        user = [u for u in req.unredacted if not u.eval]
        served_evals = [u for u in req.unredacted if u.eval and u.release in promoted]
        other = [u for u in req.unredacted if u.eval and u.release not in promoted]
        if user or served_evals:
            found = user + served_evals
            kinds = sorted({d for u in found for d in u.detectors})
            checks.append(
                _fail(
                    REQUESTS,
                    f"{_plural(len(found), 'logged prompt/output')} still hold values the bundle's "
                    f"detectors find ({', '.join(kinds)}): written to the audit trail unredacted.",
                )
            )
        else:
            note = ""
            if other:
                rels = sorted({_short(u.release) for u in other})
                note = (
                    f" ({_plural(len(other), 'eval record')} of never-promoted release(s) {', '.join(rels)} hold "
                    "values the current detectors find: evals of a release with weaker boundaries, which "
                    "the gate refused.)"
                )
            checks.append(
                _pass(
                    REQUESTS,
                    f"re-scanning {_plural(req.scanned, 'logged prompt/output')} with the bundle's "
                    f"detectors found no unredacted value in user traffic.{note}",
                )
            )
    # enforced, as provisioned: invocation logs are redacted and their raw copies short-lived
    prov = ev.provisioned
    if prov is None:
        checks.append(
            _unknown(
                STACK,
                "no `pulumi stack export` was given, so the raw invocation-log bucket and "
                "the redaction function are not shown.",
            )
        )
    elif wf is not None:
        checks.append(_bucket_check(prov, expected_buckets(wf)["raw_invocation_logs"], wf.id))
        fns = [f for f in prov.functions if f.handler == REDACTION_HANDLER]
        if fns:
            checks.append(
                _pass(
                    STACK,
                    f"redaction function {fns[0].name} ({REDACTION_HANDLER}) drains raw invocation "
                    "logs into the audit bucket.",
                )
            )
        else:
            checks.append(_fail(STACK, f"{prov.source} has no function with handler {REDACTION_HANDLER}."))
    return _item(2, checks)


def _bucket_check(prov: Provisioned, want: ExpectedBucket, workflow: str) -> Check:
    label = want.log_class
    found = prov.buckets_of(label, workflow)
    if not found:
        return _fail(STACK, f"{prov.source} has no bucket tagged {LOG_CLASS_TAG}={label} for workflow {workflow}.")
    problems: list[str] = []
    for b in found:
        where = f"{label} bucket {b.name}"
        rule = f"the bundle's posture {want.posture} requires"
        if b.posture is not None and b.posture != want.posture:
            problems.append(f"{where} is tagged with posture {b.posture}; the bundle names {want.posture}")
        if not b.lifecycle:
            problems.append(f"{where} has no lifecycle configuration; {rule} expiry after {want.days} days")
        else:
            if not b.current_days or any(d != want.days for d in b.current_days):
                got = ", ".join(map(str, b.current_days)) or "never"
                problems.append(
                    f"{where}: lifecycle expires current versions after {got} days; {rule} {want.days} days"
                )
            if not b.noncurrent_days or any(d != want.days for d in b.noncurrent_days):
                got = ", ".join(map(str, b.noncurrent_days)) or "never"
                problems.append(
                    f"{where}: lifecycle expires noncurrent versions after {got} days; {rule} {want.days} days"
                )
        if want.object_lock_mode is not None:
            if b.object_lock_enabled is not True:
                problems.append(f"{where} was not created with Object Lock (objectLockEnabled {b.object_lock_enabled})")
            if not b.lock_config:
                problems.append(
                    f"{where} has no Object Lock default retention; {rule} {want.object_lock_mode} for {want.days} days"
                )
            else:
                if b.lock_mode != want.object_lock_mode:
                    problems.append(f"{where}: Object Lock mode {b.lock_mode}; {rule} {want.object_lock_mode}")
                if b.lock_days != want.days:
                    got = f"{b.lock_days} days" if b.lock_days is not None else f"{b.lock_years} years"
                    problems.append(f"{where}: Object Lock default retention {got}; {rule} {want.days} days")
        if b.sse_algorithm != "aws:kms" or not b.kms_key:
            problems.append(
                f"{where}: default encryption {b.sse_algorithm or 'none'} "
                f"(key {b.kms_key or 'none'}); SSE-KMS with the bucket's own key is required"
            )
        if b.versioning != "Enabled":
            problems.append(f"{where}: versioning {b.versioning or 'not configured'}; Enabled is required")
    if problems:
        return _fail(STACK, "; ".join(problems) + ".")
    b = found[0]
    lock = f", Object Lock {b.lock_mode} {b.lock_days} days" if want.object_lock_mode else ", no Object Lock (drained)"
    return _pass(
        STACK,
        f"{label} bucket {b.name}: lifecycle {_plural(want.days, 'day')} (current and noncurrent){lock}, "
        f"SSE-KMS ({b.kms_key}), versioning Enabled: as posture {want.posture} says.",
    )


def _chain_check(ev: Evidence) -> Check:
    if ev.chain_error:
        return _fail(CHAIN, f"the control-plane audit chain cannot be read: {ev.chain_error}")
    chain = ev.chain
    if chain is None or (chain.ok and chain.checked == 0 and not chain.problems):
        return _unknown(CHAIN, "the control-plane audit chain is empty: no rollout action is recorded yet.")
    if not chain.ok:
        return _fail(CHAIN, f"`rollout audit verify` fails: BROKEN at seq {chain.first_bad_seq}: {chain.reason}.")
    if chain.problems:
        return _fail(CHAIN, f"the chain verifies but: {'; '.join(chain.problems)}.")
    ahead = (
        f"; {chain.ahead} record(s) beyond the state's head (a command the next one completes)" if chain.ahead else ""
    )
    return _pass(
        CHAIN,
        f"`rollout audit verify`: {chain.checked} records verified, head seq {chain.head_seq} "
        f"({(chain.head_hash or '')[:12]}){ahead}.",
    )


def _item_trail(ev: Evidence) -> Item:
    checks = [_bundle_valid(ev)]
    wf = ev.workflow
    if wf is not None:
        retention = wf.logging.retention
        postures = "; ".join(
            f"{which.replace('_', ' ')}: {getattr(retention, which)} = {_posture_text(retention.posture(which))}"
            for which in ("audit_log", "raw_invocation_logs", "control_plane")
        )
        checks.append(
            _pass(
                BUNDLE,
                f"every request logs {', '.join(wf.logging.required_fields)}, redacted "
                f"({', '.join(wf.logging.redaction.applies_to)}); retention: {postures}.",
            )
        )
    missing = _requests_missing(ev)
    if missing:
        checks.append(missing)
    else:
        req = ev.requests
        assert req is not None
        answered = [r for r in req.decisions if r["decision"] == "answered"]
        gaps = {
            k: sum(int(r[k]) for r in answered)
            for k in (
                "without_subject",
                "without_release",
                "without_prompt_template",
                "without_context_sources",
                "without_model",
                "without_output",
            )
        }
        gaps = {k: v for k, v in gaps.items() if v}
        by = ", ".join(f"{r['decision']} {r['records']}" for r in req.decisions if not r["is_eval"])
        evals = req.count(is_eval=True)
        if gaps:
            names = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in gaps.items())
            checks.append(_fail(REQUESTS, f"answered records lack what the trail needs: {names}."))
        else:
            checks.append(
                _pass(
                    REQUESTS,
                    f"{_plural(req.count(), 'record')} in {_plural(len(req.files), 'file')}; user "
                    f"requests by decision: {by}; {evals} eval records; every answered record "
                    "names its prompt template (id, version, sha256), context sources, model "
                    "and redacted output.",
                )
            )
    checks.append(_chain_check(ev))
    prov = ev.provisioned
    if prov is None:
        checks.append(
            _unknown(
                STACK,
                "no `pulumi stack export` was given, so the audit-log and control-plane buckets' "
                "retention, Object Lock and encryption are not shown.",
            )
        )
    elif wf is not None:
        want = expected_buckets(wf)
        checks.append(_bucket_check(prov, want["audit_log"], wf.id))
        checks.append(_bucket_check(prov, want["control_plane"], wf.id))
    return _item(3, checks)


def _chain_actions(ev: Evidence) -> tuple[list[ChainAction] | None, Check | None]:
    """The chain's records when they can be evidence; else the check saying why not."""
    if ev.chain_error or ev.chain is None:
        return None, _unknown(CHAIN, "the control-plane audit chain could not be read.")
    if not ev.chain.verified:
        return None, _unknown(
            CHAIN, "the audit chain does not verify, so its records are not evidence here (see item 3)."
        )
    return list(ev.chain.actions), None


def _item_review(ev: Evidence) -> Item:
    checks = [_bundle_valid(ev)]
    wf = ev.workflow
    if wf is not None:
        kinds = ", ".join(h.kind for h in wf.review.human_verification)
        checks.append(
            _pass(BUNDLE, f"human verification rules for {kinds}; accountability: {wf.review.accountability}")
        )
        docs = {
            "review checklist": wf.review.checklist,
            "accountability runbook": wf.review.accountability_runbook,
            "kill-switch runbook": wf.kill_switch.runbook,
            "fallback runbook": wf.fallback.runbook,
            "weekly review runbook": wf.ongoing.runbook,
        }
        absent = [f"{name} {path}" for name, path in docs.items() if not ev.documents.get(path, False)]
        if absent:
            checks.append(_fail(BUNDLE, f"documents the bundle references are missing: {', '.join(absent)}."))
        else:
            checks.append(
                _pass(
                    BUNDLE,
                    f"documented: {', '.join(f'{n} ({p})' for n, p in docs.items())}; "
                    f"who may pull the kill switch: {wf.kill_switch.who_may_pull}",
                )
            )
    # the kill switch, as the gateway reads it
    flags = ev.flags
    if flags is None or (flags.error is None and flags.sha256 is None):
        where = flags.path if flags is not None else "the state directory"
        checks.append(
            _unknown(
                FLAGS,
                f"there is no live flag document at {where}: the gateway fails closed, but no kill switch is shown.",
            )
        )
    elif flags.error:
        checks.append(_fail(FLAGS, f"the live flag document {flags.path} cannot be read: {flags.error}."))
    elif wf is not None:
        key = wf.rollout.kill_switch_flag
        kill = flags.kill_flag
        variants = (kill or {}).get("variants") or {}
        if not kill or set(variants.values()) != {True, False}:
            checks.append(_fail(FLAGS, f"the live flag document {flags.path} has no boolean kill-switch flag {key}."))
        else:
            engaged = variants.get(kill.get("defaultVariant")) is True
            state = "ENGAGED: every request gets the fallback" if engaged else "released"
            by = ""
            if ev.state is not None and ev.state.kill_engaged:
                by = f" (by {ev.state.kill_by} at {ev.state.kill_at}: {ev.state.kill_reason})"
            checks.append(
                _pass(
                    FLAGS,
                    f"kill switch {key} is in the live flag document {flags.path} "
                    f"(sha256 {flags.sha256[:12] if flags.sha256 else '?'}), now {state}{by}; "
                    "`rollout kill --reason ...` engages it without any gate.",
                )
            )
    # the review step, as the chain shows: every promotion had the approvals the bundle requires
    actions, problem = _chain_actions(ev)
    if problem is not None:
        checks.append(problem)
    elif wf is not None and actions is not None:
        promotions = [a for a in actions if a.action == "promote"]
        short = []
        for a in promotions:
            evidence = a.evidence if isinstance(a.evidence, Mapping) else {}
            cohort = str(evidence.get("cohort", ""))
            approvers = [p for p in evidence.get("approved_by") or [] if p != a.operator]
            need = next((c.approvals for c in wf.rollout.cohorts if c.name == cohort), None)
            if need is None or len(approvers) < need:
                short.append(f"seq {a.seq} ({cohort or '?'}: {len(approvers)} of {need if need is not None else '?'})")
        kills = [a for a in actions if a.action in ("kill", "release-kill")]
        drills = (
            f"; kill switch used {_plural(len(kills), 'time')} (seq {', '.join(str(a.seq) for a in kills)})"
            if kills
            else ""
        )
        if short:
            checks.append(_fail(CHAIN, f"promotions without the approvals the bundle requires: {', '.join(short)}."))
        elif promotions:
            checks.append(
                _pass(
                    CHAIN,
                    f"{_plural(len(promotions), 'promotion')}, each with the approvals its cohort "
                    f"requires (internal {wf.rollout.cohort('internal').approvals}, limited "
                    f"{wf.rollout.cohort('limited').approvals}, general "
                    f"{wf.rollout.cohort('general').approvals}){drills}.",
                )
            )
        else:
            checks.append(_pass(CHAIN, f"no promotion recorded yet, so no approval was due{drills}."))
    return _item(4, checks)


def _item_eval(ev: Evidence) -> Item:
    checks = [_bundle_valid(ev)]
    wf = ev.workflow
    if wf is not None:
        thresholds = ", ".join(f"{k.value} {v}" for k, v in wf.eval.thresholds.items())
        checks.append(
            _pass(
                BUNDLE,
                f"golden set {wf.eval.golden_set}; thresholds {thresholds}; a result counts for "
                f"{_duration(wf.eval.max_result_age)}; the gate promotes only a release with a passing, "
                "fresh eval of exactly that release.",
            )
        )
    missing = _evals_missing(ev)
    if missing:
        checks.append(missing)
    else:
        runs = ev.evals or ()
        releases = sorted({r.digest for r in runs})
        passed = sum(1 for r in runs if r.verdict == "PASS")
        checks.append(
            _pass(
                EVALS,
                f"{_plural(len(runs), 'verified eval result')} for {_plural(len(releases), 'release')} "
                f"({passed} PASS, {len(runs) - passed} FAIL), each stored under its release digest "
                "with its content hash.",
            )
        )
        for digest in _served_digests(ev):
            mine = _eval_of(ev, digest)
            if not mine:
                checks.append(_unknown(EVALS, f"served release {_short(digest)} has no stored eval."))
            elif mine[-1].verdict != "PASS":
                checks.append(
                    _fail(
                        EVALS,
                        f"served release {_short(digest)}: its latest eval "
                        f"({mine[-1].content_hash[:12]}, {mine[-1].finished_at}) FAILED and it is "
                        "still served (`rollout reconcile` rolls it back).",
                    )
                )
            else:
                stale = ""
                if wf is not None:
                    age = _age(ev.generated_at, mine[-1].finished_at)
                    if age is not None and age > wf.eval.max_result_age:
                        stale = f"; it is older than {_duration(wf.eval.max_result_age)}: re-run `rollout eval run`"
                checks.append(
                    _pass(
                        EVALS,
                        f"served release {_short(digest)}: latest eval PASS "
                        f"({mine[-1].content_hash[:12]}, {mine[-1].finished_at}){stale}.",
                    )
                )
    actions, problem = _chain_actions(ev)
    if problem is not None:
        checks.append(problem)
    elif actions is not None:
        promotions = [a for a in actions if a.action == "promote"]
        if not promotions:
            checks.append(
                _unknown(CHAIN, "no promotion is recorded, so the eval has not yet been shown to gate a change.")
            )
        else:
            runs_by_hash = {r.content_hash: r for r in ev.evals or ()}
            bad = []
            for a in promotions:
                ref = (a.evidence or {}).get("eval") if isinstance(a.evidence, Mapping) else None
                run = runs_by_hash.get(str((ref or {}).get("content_hash")))
                if not isinstance(ref, Mapping) or ref.get("verdict") != "PASS":
                    bad.append(f"seq {a.seq} names no passing eval")
                elif run is None:
                    bad.append(
                        f"seq {a.seq} names eval {str(ref.get('content_hash'))[:12]}, "
                        "which is not among the stored results"
                    )
                elif run.digest != a.release or run.verdict != "PASS":
                    bad.append(
                        f"seq {a.seq} promoted {_short(a.release)} on eval {run.content_hash[:12]} of "
                        f"{_short(run.digest)} ({run.verdict})"
                    )
                elif (_age(a.time, run.finished_at) or dt.timedelta(0)) < dt.timedelta(0):
                    bad.append(f"seq {a.seq} happened before its eval finished ({run.finished_at})")
            rollbacks = [a for a in actions if a.action == "auto-rollback"]
            caught = f"; {_plural(len(rollbacks), 'automatic rollback')} after a failing eval" if rollbacks else ""
            if bad:
                checks.append(
                    _fail(CHAIN, f"promotions not backed by a passing eval of the promoted release: {'; '.join(bad)}.")
                )
            else:
                checks.append(
                    _pass(
                        CHAIN,
                        f"each of {_plural(len(promotions), 'promotion')} names a stored, passing eval "
                        f"of exactly the promoted release, finished before it{caught}.",
                    )
                )
    prov = ev.provisioned
    if prov is not None:  # supplementary: the schedule that acts on a failing re-evaluation
        if prov.schedules:
            exprs = ", ".join(str(s.expression) for s in prov.schedules)
            checks.append(
                _pass(STACK, f"scheduled reconcile ({exprs}) rolls back a live release whose latest eval fails.")
            )
        else:
            checks.append(
                _fail(STACK, f"{prov.source} has no scheduled reconcile (aws:cloudwatch/eventRule:EventRule).")
            )
    return _item(5, checks)


def _age(now: str, then: str) -> dt.timedelta | None:
    try:
        a = dt.datetime.fromisoformat(now.replace("Z", "+00:00"))
        b = dt.datetime.fromisoformat(then.replace("Z", "+00:00"))
    except ValueError:
        return None
    return a - b


def _item(number: int, checks: Sequence[Check]) -> Item:
    _, key, title = ITEMS[number - 1]
    return Item(number, key, title, tuple(checks))


def build_report(evidence: Evidence) -> Report:
    """The Definition of Done, judged on ``evidence``. Pure."""
    items = (
        _item_sso(evidence),
        _item_boundaries(evidence),
        _item_trail(evidence),
        _item_review(evidence),
        _item_eval(evidence),
    )
    return Report(evidence.workflow_id, evidence.generated_at, items, _facts(evidence), _tables(evidence))


# --- evidence as data and as tables (pure) -------------------------------------------------------


def _jsonable(value: Any) -> Any:
    return json.loads(
        json.dumps(value, default=lambda v: dataclasses.asdict(v) if dataclasses.is_dataclass(v) else str(v))
    )


def _facts(ev: Evidence) -> dict[str, Any]:
    wf = ev.workflow
    bundle: dict[str, Any] = {
        "path": ev.bundle_path,
        "valid": wf is not None and not ev.bundle_problems,
        "problems": list(ev.bundle_problems),
        "documents": dict(ev.documents),
    }
    if wf is not None:
        bundle.update(
            sso={
                "idp": wf.sso.idp.name,
                "issuer": wf.sso.idp.issuer,
                "audience": wf.sso.idp.audience,
                "domains": wf.sso.allowed_email_domains,
                "groups": wf.sso.allowed_groups,
            },
            models=[m.id for m in wf.surface.models],
            endpoint=wf.surface.endpoint.kind.value,
            boundaries={f.category.value: f.action.value for f in wf.data_boundaries.forbidden},
            retention={
                w: {
                    "posture": getattr(wf.logging.retention, w),
                    "days": wf.logging.retention.posture(w).days,
                    "object_lock_mode": wf.logging.retention.posture(w).object_lock_mode,
                }
                for w in ("audit_log", "raw_invocation_logs", "control_plane")
            },
            approvals={c.name: c.approvals for c in wf.rollout.cohorts},
            exceptions=[e.model_dump(mode="json") for e in wf.personal_accounts.exceptions],
        )
    return _jsonable(
        {
            "bundle": bundle,
            "flags": ev.flags,
            "state": ev.state if ev.state_error is None else {"error": ev.state_error},
            "audit_chain": (
                {"error": ev.chain_error}
                if ev.chain_error
                else None
                if ev.chain is None
                else {
                    **{k: v for k, v in dataclasses.asdict(ev.chain).items() if k != "actions"},
                    "actions": [a.to_dict() for a in ev.chain.actions],
                }
            ),
            "evals": {"error": ev.evals_error} if ev.evals_error else [r.to_dict() for r in ev.evals or ()],
            "releases": dict(ev.releases),
            "requests": {"error": ev.requests_error} if ev.requests_error else ev.requests,
            "provisioned": ev.provisioned,
        }
    )


def _tables(ev: Evidence) -> tuple[Table, ...]:
    tables: list[Table] = []
    wf = ev.workflow
    if wf is not None:
        r = wf.logging.retention
        tables.append(
            Table(
                "Bundle",
                ("field", "value"),
                (
                    ("bundle", ev.bundle_path or ev.workflow_id),
                    ("valid", "yes" if not ev.bundle_problems else "NO: " + "; ".join(ev.bundle_problems)),
                    (
                        "owners",
                        f"{wf.owners.executive.name} (executive); {wf.owners.operational.name}, "
                        f"{wf.owners.operational.team} (operational)",
                    ),
                    ("sso.idp", f"{wf.sso.idp.name}: issuer {wf.sso.idp.issuer}, audience {wf.sso.idp.audience}"),
                    (
                        "surface",
                        f"{wf.surface.vendor}, {wf.surface.endpoint.kind.value}: "
                        f"{', '.join(m.id for m in wf.surface.models)}",
                    ),
                    (
                        "data_boundaries",
                        "; ".join(f"{f.category.value}: {f.action.value}" for f in wf.data_boundaries.forbidden),
                    ),
                    (
                        "logging.retention",
                        "; ".join(
                            f"{w}: {getattr(r, w)} {_plural(r.posture(w).days, 'day')}"
                            f"{' ' + str(r.posture(w).object_lock_mode) if r.posture(w).object_lock_mode else ''}"
                            for w in ("audit_log", "raw_invocation_logs", "control_plane")
                        ),
                    ),
                    ("rollout.approvals", ", ".join(f"{c.name} {c.approvals}" for c in wf.rollout.cohorts)),
                    (
                        "personal_accounts.exceptions",
                        ", ".join(f"{e.subject} until {e.expires}" for e in wf.personal_accounts.exceptions) or "none",
                    ),
                ),
            )
        )
    f = ev.flags
    if f is not None:
        kill = (f.kill_flag or {}).get("defaultVariant", "-")
        tables.append(
            Table(
                "Current flag document",
                ("field", "value"),
                (
                    ("path", f.path),
                    ("sha256", f.sha256 or "-"),
                    ("error", f.error or "none"),
                    ("metadata.version", str(f.version)),
                    ("kill switch (defaultVariant)", str(kill)),
                    (
                        "release flag variants",
                        ", ".join(
                            _short(v) if isinstance(v, str) else str(v)
                            for v in ((f.release_flag or {}).get("variants") or {}).values()
                        )
                        or "-",
                    ),
                ),
            )
        )
    s = ev.state
    if s is not None:
        tables.append(
            Table(
                "Rollout state",
                ("field", "value"),
                (
                    ("stable", _short(s.stable)),
                    (
                        "candidate",
                        f"{_short(s.candidate)} ({', '.join(s.candidate_cohorts)})" if s.candidate else "none",
                    ),
                    ("served", "; ".join(f"{c}: {_short(d)}" for c, d in s.served.items())),
                    (
                        "kill switch",
                        f"ENGAGED by {s.kill_by} at {s.kill_at}: {s.kill_reason}" if s.kill_engaged else "released",
                    ),
                    ("revision", str(s.revision)),
                    ("turned off", s.off_reason or "no"),
                ),
            )
        )
    elif ev.state_error:
        tables.append(Table("Rollout state", ("error",), ((ev.state_error,),)))
    if ev.evals_error:
        tables.append(Table("Eval results per release", ("error",), ((ev.evals_error,),)))
    else:
        tables.append(
            Table(
                "Eval results per release",
                ("release", "finished", "verdict", "rates", "model", "content hash"),
                tuple(
                    (
                        r.digest,
                        r.finished_at,
                        r.verdict,
                        ", ".join(f"{k} {v:.2f}" for k, v in r.rates.items()),
                        r.model,
                        r.content_hash,
                    )
                    for r in ev.evals or ()
                ),
                note="" if ev.evals else "no eval result is stored",
            )
        )
    c = ev.chain
    if ev.chain_error:
        tables.append(Table("Control-plane audit chain", ("error",), ((ev.chain_error,),)))
    elif c is not None:
        verdict = (
            f"ok: {c.checked} records, head seq {c.head_seq} {c.head_hash or ''}"
            if c.ok
            else f"BROKEN at seq {c.first_bad_seq}: {c.reason}"
        )
        if c.problems:
            verdict += "; " + "; ".join(c.problems)
        tables.append(
            Table(
                "Control-plane audit chain",
                ("seq", "time", "operator", "action", "release", "reason"),
                tuple(
                    (str(a.seq), a.time, a.operator, a.action, _short(a.release) if a.release else "", a.reason or "")
                    for a in c.actions
                ),
                note=f"`rollout audit verify`: {verdict}",
            )
        )
    q = ev.requests
    if ev.requests_error:
        tables.append(Table("Request log", ("error",), ((ev.requests_error,),)))
    elif q is not None:
        tables.append(
            Table(
                "Request log: records by decision",
                ("eval", "decision", "records", "first", "last"),
                tuple(
                    (
                        "yes" if r["is_eval"] else "no",
                        str(r["decision"]),
                        str(r["records"]),
                        str(r["first_time"]),
                        str(r["last_time"]),
                    )
                    for r in q.decisions
                ),
                note=f"{q.directory}: {_plural(len(q.files), 'file')}; {q.scanned} logged prompts/outputs re-scanned, "
                f"{_plural(len(q.unredacted), 'unredacted finding')}",
            )
        )
        if q.near_misses:
            tables.append(
                Table(
                    "Request log: forbidden input found (user requests)",
                    ("where", "category", "action", "decision", "requests", "findings"),
                    tuple(
                        tuple(str(r[k]) for k in ("location", "category", "action", "decision", "requests", "findings"))
                        for r in q.near_misses
                    ),
                )
            )
        if q.unredacted:
            tables.append(
                Table(
                    "Request log: values found again in logged text",
                    ("request", "eval", "release", "field", "detectors"),
                    tuple(
                        (u.request_id, "yes" if u.eval else "no", _short(u.release), u.field, ", ".join(u.detectors))
                        for u in q.unredacted
                    ),
                )
            )
    p = ev.provisioned
    if p is not None:
        tables.append(
            Table(
                "Provisioned configuration (pulumi stack export)",
                ("field", "value"),
                (
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
                    *(
                        (f"permission set {s.name}", f"{s.arn}, session {s.session_duration}")
                        for s in p.permission_sets
                    ),
                ),
            )
        )
        tables.append(
            Table(
                "Provisioned buckets",
                ("log class", "bucket", "posture", "Object Lock", "lifecycle days", "encryption", "versioning"),
                tuple(
                    (
                        str(b.log_class),
                        b.name,
                        str(b.posture),
                        f"{b.lock_mode} {b.lock_days if b.lock_days is not None else b.lock_years} "
                        f"{'days' if b.lock_days is not None else 'years'}"
                        if b.lock_config
                        else "none",
                        f"current {'/'.join(map(str, b.current_days)) or '-'}, "
                        f"noncurrent {'/'.join(map(str, b.noncurrent_days)) or '-'}",
                        f"{b.sse_algorithm or 'none'}",
                        str(b.versioning),
                    )
                    for b in p.buckets
                ),
            )
        )
    return tuple(tables)


# --- rendering (pure) ----------------------------------------------------------------------------


def _md_cell(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def render_markdown(report: Report) -> str:
    counts = report.counts
    lines = [
        f"# Definition of Done: {report.workflow}",
        "",
        f"Generated {report.generated_at} by `rollout audit report`. Overall: **{report.status.value}** "
        f"({counts['PASS']} PASS, {counts['FAIL']} FAIL, {counts['UNKNOWN']} UNKNOWN). Missing evidence is "
        "UNKNOWN, never PASS.",
        "",
        "| # | Definition of Done | Verdict | Rationale |",
        "|---|---|---|---|",
    ]
    for item in report.items:
        lines.append(
            f"| {item.number} | {_md_cell(item.title)} | **{item.status.value}** | {_md_cell(item.rationale)} |"
        )
    for item in report.items:
        lines += ["", f"## {item.number}. {item.title}: {item.status.value}", ""]
        lines += [f"- **{c.status.value}** ({c.source}): {c.summary}" for c in item.checks]
    lines += ["", "## Evidence"]
    for table in report.tables:
        lines += ["", f"### {table.title}", ""]
        if table.note:
            lines += [_md_cell(table.note), ""]
        if table.rows:
            lines.append("| " + " | ".join(_md_cell(c) for c in table.columns) + " |")
            lines.append("|" + "---|" * len(table.columns))
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in table.rows]
        else:
            lines.append("(none)")
    return "\n".join(lines) + "\n"


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


def render_html(report: Report) -> str:
    """One self-contained HTML file: inline CSS, no scripts, no external fonts, images or links."""
    e = html.escape
    counts = report.counts

    def badge(status: Status) -> str:
        return f'<span class="badge {status.value}">{status.value}</span>'

    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Definition of Done: {e(report.workflow)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Definition of Done: {e(report.workflow)}</h1>",
        f"<p>Generated {e(report.generated_at)} by <code>rollout audit report</code>. Overall: {badge(report.status)} "
        f"({counts['PASS']} PASS, {counts['FAIL']} FAIL, {counts['UNKNOWN']} UNKNOWN). Missing evidence is UNKNOWN, "
        "never PASS.</p>",
        "<table><thead><tr><th>#</th><th>Definition of Done</th><th>Verdict</th><th>Rationale</th></tr></thead><tbody>",
    ]
    for item in report.items:
        out.append(
            f"<tr><td>{item.number}</td><td>{e(item.title)}</td><td>{badge(item.status)}</td>"
            f'<td class="wrap">{e(item.rationale)}</td></tr>'
        )
    out.append("</tbody></table>")
    for item in report.items:
        out.append(f"<h2>{item.number}. {e(item.title)} {badge(item.status)}</h2>")
        out.append("<table><thead><tr><th>Verdict</th><th>Source</th><th>Evidence</th></tr></thead><tbody>")
        out += [
            f'<tr><td>{badge(c.status)}</td><td>{e(c.source)}</td><td class="wrap">{e(c.summary)}</td></tr>'
            for c in item.checks
        ]
        out.append("</tbody></table>")
    out.append("<h2>Evidence</h2>")
    for table in report.tables:
        out.append(f"<h3>{e(table.title)}</h3>")
        if table.note:
            out.append(f'<p class="note">{e(table.note)}</p>')
        if table.rows:
            out.append(
                "<table><thead><tr>" + "".join(f"<th>{e(c)}</th>" for c in table.columns) + "</tr></thead><tbody>"
            )
            out += ["<tr>" + "".join(f'<td class="wrap">{e(str(v))}</td>' for v in row) + "</tr>" for row in table.rows]
            out.append("</tbody></table>")
        else:
            out.append('<p class="note">(none)</p>')
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def render_json(report: Report) -> str:
    return json.dumps(report.to_dict(), indent=2, sort_keys=True) + "\n"


RENDERERS: dict[str, Callable[[Report], str]] = {"md": render_markdown, "html": render_html, "json": render_json}


def render(report: Report, fmt: str) -> str:
    if fmt not in RENDERERS:
        raise InvalidInput(f"--format {fmt!r}: choose md, html or json.")
    return RENDERERS[fmt](report)


# --- the adapter: gather the evidence ------------------------------------------------------------


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_stack_export(path: Path) -> Provisioned:
    """Read and parse a ``pulumi stack export`` file; ``InvalidInput`` (exit 2) if it is not one."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InvalidInput(f"--stack-export {path}: cannot read it ({exc.strerror}).") from None
    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise InvalidInput(f"--stack-export {path}: not JSON ({exc}).") from None
    return read_stack_export(doc, source=str(path), sha256=_sha256(data))


def _flag_facts(path: Path, workflow: Any) -> FlagFacts:
    if not path.exists():
        return FlagFacts(str(path))
    try:
        data = path.read_bytes()
        doc = json.loads(data)
    except (OSError, ValueError) as exc:
        return FlagFacts(str(path), error=str(exc))
    flags = doc.get("flags") if isinstance(doc, Mapping) else None
    if not isinstance(flags, Mapping):
        return FlagFacts(str(path), _sha256(data), error="no `flags` object")
    kill = flags.get(workflow.rollout.kill_switch_flag) if workflow is not None else None
    release = flags.get(workflow.rollout.release_flag) if workflow is not None else None
    meta = doc.get("metadata") if isinstance(doc.get("metadata"), Mapping) else {}
    return FlagFacts(str(path), _sha256(data), None, kill, release, meta.get("version"))


def _release_facts(store: Any, digest: str) -> ReleaseFacts:
    from controller.core.release import load_release

    try:
        release = load_release(store, digest)
    except RolloutError as exc:
        return ReleaseFacts(digest, error=str(exc))
    model = release.model
    surface = release.workflow.surface
    return ReleaseFacts(
        digest, model.adapter, model.model_id, surface.endpoint.kind.value, tuple(m.id for m in surface.models)
    )


def _rescan(rows: Iterable[Mapping[str, Any]], workflow: Any) -> tuple[int, list[Unredacted]]:
    """Run the bundle's detectors over logged (already redacted) prompts and outputs."""
    from controller.boundaries.redactor import bundle_redactor

    redactor = bundle_redactor(workflow.data_boundaries)
    scanned, found = 0, []
    for row in rows:
        for name in ("prompt", "output"):
            text = row.get(name)
            if not text:
                continue
            scanned += 1
            findings = redactor.scan(str(text))
            if findings:
                found.append(
                    Unredacted(
                        str(row["request_id"]),
                        bool(row["is_eval"]),
                        row.get("release_digest"),
                        name,
                        tuple(sorted({f.type for f in findings})),
                    )
                )
    return scanned, found


def collect_evidence(
    *,
    workflow_id: str,
    workflow: Any,
    bundle_path: Path | None,
    bundle_problems: Sequence[str],
    service: Any,
    flags_path: Path,
    requests_dir: Path,
    stack_export: Path | None,
    now: dt.datetime,
) -> Evidence:
    """Gather the evidence for ``build_report``: the adapter, and the only I/O of this module.

    ``service`` is the workflow's ``controller.service.rollout.RolloutService`` (its store holds the
    state, the audit chain, releases and eval results). Nothing is written anywhere."""
    from controller.core.audit import AuditRecord
    from controller.core.gates import served
    from controller.evals.scoring import list_all_results

    store = service.store
    documents: dict[str, bool] = {}
    if workflow is not None and bundle_path is not None:
        for rel in (
            workflow.review.checklist,
            workflow.review.accountability_runbook,
            workflow.kill_switch.runbook,
            workflow.fallback.runbook,
            workflow.ongoing.runbook,
        ):
            documents[rel] = (bundle_path / rel).is_file()

    state = state_error = None
    try:
        loaded = service.load(repair=False)
        s = loaded.state
        if loaded.version is not None or s.revision:
            state = StateFacts(
                stable=s.stable,
                candidate=s.candidate.release if s.candidate else None,
                candidate_cohorts=s.candidate.cohorts if s.candidate else (),
                served=served(s),
                kill_engaged=s.kill.engaged,
                kill_by=s.kill.by,
                kill_at=s.kill.at,
                kill_reason=s.kill.reason,
                revision=s.revision,
                off_reason=s.off_reason,
                kill_pending=service.kill_pending() is not None,
            )
    except RolloutError as exc:
        state_error = str(exc)

    chain = chain_error = None
    try:
        result, problems = service.verify()
        records = service.history()
        chain = ChainFacts(
            ok=result.ok,
            status=str(result.status),
            checked=result.checked,
            first_bad_seq=result.first_bad_seq,
            reason=result.reason,
            ahead=result.ahead,
            head_seq=result.head.seq if result.head else None,
            head_hash=result.head.hash if result.head else None,
            problems=tuple(problems),
            actions=tuple(ChainAction.from_record(r) for r in records if isinstance(r, AuditRecord)),
        )
    except RolloutError as exc:
        chain_error = str(exc)

    evals = evals_error = None
    try:
        verifier = getattr(service, "signer", None)  # the evaluator's key, when the service has one
        evals = tuple(EvalRun.from_result(r) for r in list_all_results(store, verifier=verifier))
    except RolloutError as exc:
        evals_error = str(exc)

    requests = requests_error = None
    detectors = detector_categories(workflow) if workflow is not None else []
    try:
        with RequestLog(requests_dir, detectors) as log:
            everything = Window.everything()
            rows = {name: log.query(name, everything) for name in ("decisions", "models", "near_misses", "refusals")}
            scanned, unredacted = _rescan(log.query("texts", everything), workflow) if workflow is not None else (0, [])
            requests = RequestFacts(
                directory=str(requests_dir),
                files=tuple(p.name for p in log.files),
                decisions=tuple(_jsonable(rows["decisions"])),
                models=tuple(_jsonable(rows["models"])),
                near_misses=tuple(_jsonable(rows["near_misses"])),
                refusals=tuple(_jsonable(rows["refusals"])),
                scanned=scanned,
                unredacted=tuple(unredacted),
            )
    except RolloutError as exc:
        requests_error = str(exc)

    digests = set(state.served.values()) if state else set()
    digests |= {str(r["release_digest"]) for r in (requests.models if requests else ()) if r.get("release_digest")}
    releases = {d: _release_facts(store, d) for d in sorted(digests) if d and d != "off"}

    return Evidence(
        workflow_id=workflow_id,
        generated_at=now.astimezone(dt.UTC).isoformat(timespec="seconds"),
        workflow=workflow,
        bundle_path=str(bundle_path) if bundle_path is not None else None,
        bundle_problems=tuple(bundle_problems),
        documents=documents,
        flags=_flag_facts(flags_path, workflow),
        state=state,
        state_error=state_error,
        chain=chain,
        chain_error=chain_error,
        evals=evals,
        evals_error=evals_error,
        releases=releases,
        requests=requests,
        requests_error=requests_error,
        provisioned=load_stack_export(stack_export) if stack_export is not None else None,
    )
