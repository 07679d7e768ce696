"""Checks of the provisioned configuration (a ``pulumi stack export``) against the bundle.

What the bundle requires comes from ``controller.core.provisioning``, the same rules the infra
program builds from and its policy pack enforces, so the report cannot judge a stack by rules
that differ from the ones that made it. A provisioned value that differs is FAIL naming both
values; a value the export holds as a secret is UNKNOWN (export with ``--show-secrets``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from controller.core.provisioning import LOG_CLASS_TAG, SSE_KMS, BucketRules, is_guardrail_arn, model_arns
from controller.evidence.items.common import plural
from controller.evidence.model import STACK, Check, failed, passed, unknown
from controller.evidence.stack_export import REDACTION_HANDLER, SECRET, Authorizer, PermissionSet, Provisioned

__all__ = [
    "bedrock_grants",
    "bucket_check",
    "gateway_checks",
    "reconcile_schedule_check",
    "redaction_function_check",
]


# --- the SSO-bound gateway (item 1) ---------------------------------------------------------------


def gateway_checks(prov: Provisioned, workflow: Any) -> list[Check]:
    """The JWT authorizer, the routes behind it and the SSO permission set's model access."""
    checks = _authorizer_checks(prov, workflow)
    checks += _route_checks(prov)
    if not prov.permission_sets:
        checks.append(
            failed(
                STACK,
                f"{prov.source} has no IAM Identity Center permission set (aws:ssoadmin/permissionSet:PermissionSet).",
            )
        )
    checks += [_permission_set_check(ps, workflow) for ps in prov.permission_sets]
    return checks


def _authorizer_checks(prov: Provisioned, workflow: Any) -> list[Check]:
    jwt = [a for a in prov.authorizers if a.kind == "JWT"]
    if not jwt:
        return [failed(STACK, f"{prov.source} has no JWT authorizer (aws:apigatewayv2/authorizer:Authorizer).")]
    return [_authorizer_check(a, workflow.sso.idp) for a in jwt]


def _authorizer_check(a: Authorizer, idp: Any) -> Check:
    name = a.urn.rsplit("::", 1)[-1]
    if SECRET in (a.issuer, *a.audiences):
        return unknown(
            STACK,
            f"JWT authorizer {name}: issuer or audience is a secret in this export; export with "
            "--show-secrets to compare it.",
        )
    problems = []
    if a.issuer != idp.issuer:
        problems.append(f"issuer {a.issuer} differs from the bundle's sso.idp.issuer {idp.issuer}")
    if list(a.audiences) != [idp.audience]:
        problems.append(
            f"audiences {', '.join(map(str, a.audiences)) or '(none)'} differ from the bundle's "
            f"sso.idp.audience {idp.audience}"
        )
    if problems:
        return failed(STACK, f"JWT authorizer {name}: {'; '.join(problems)}.")
    return passed(STACK, f"JWT authorizer {name}: issuer {a.issuer}, audience {idp.audience}, as the bundle says.")


def _route_checks(prov: Provisioned) -> list[Check]:
    checks = []
    if not prov.routes:
        checks.append(failed(STACK, f"{prov.source} has no API route (aws:apigatewayv2/route:Route)."))
    open_routes = [r for r in prov.routes if r.authorization_type != "JWT" or not r.authorizer_id]
    if open_routes:
        names = ", ".join(f"{r.route_key} ({r.authorization_type or 'NONE'})" for r in open_routes)
        checks.append(failed(STACK, f"routes not behind the JWT authorizer: {names}."))
    elif prov.routes:
        keys = ", ".join(str(r.route_key) for r in prov.routes)
        checks.append(passed(STACK, f"every route requires the JWT authorizer: {keys}."))
    return checks


def _sanctioned_model_arns(workflow: Any) -> set[str]:
    try:
        return set(model_arns(workflow))
    except ValueError:  # no region: no foundation-model ARN can be the bundle's
        return set()


def _is_bundle_guardrail(workflow: Any, resource: str) -> bool:
    try:
        return is_guardrail_arn(workflow, resource)
    except ValueError:  # a guardrail without a region names no ARN
        return False


def _permission_set_check(ps: PermissionSet, workflow: Any) -> Check:
    """Bedrock may be invoked only on the sanctioned models, and applied only to the bundle's guardrail."""
    grants = bedrock_grants(ps.inline_policy)
    if grants is None:
        return failed(STACK, f"permission set {ps.name}: no readable inline policy, so its model access is not shown.")
    sanctioned = _sanctioned_model_arns(workflow)
    invoked = {res for action, res in grants if action.startswith("bedrock:Invoke")}
    other = {res for action, res in grants if not action.startswith("bedrock:Invoke")}
    extra = sorted((invoked - sanctioned) | {res for res in other if not _is_bundle_guardrail(workflow, res)})
    if extra:
        return failed(
            STACK,
            f"permission set {ps.name} allows Bedrock on resources the bundle does not sanction: {', '.join(extra)}.",
        )
    return passed(
        STACK,
        f"SSO permission set {ps.name} (session {ps.session_duration}) may invoke only the sanctioned "
        f"models: {', '.join(sorted(invoked)) or 'none'}.",
    )


def bedrock_grants(policy: Any) -> list[tuple[str, str]] | None:
    """(action, resource) of every Allow statement naming a bedrock action; None if unreadable."""
    if policy is None or policy == SECRET:
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


# --- log buckets (items 2 and 3) ------------------------------------------------------------------


def bucket_check(prov: Provisioned, want: BucketRules, workflow: str) -> Check:
    """Every bucket of ``want.log_class`` is configured as the bundle's retention posture says."""
    label = want.log_class.value
    found = prov.buckets_of(label, workflow)
    if not found:
        return failed(STACK, f"{prov.source} has no bucket tagged {LOG_CLASS_TAG}={label} for workflow {workflow}.")
    problems = [p for b in found for p in _bucket_problems(b, want, f"{label} bucket {b.name}")]
    if problems:
        return failed(STACK, "; ".join(problems) + ".")
    b = found[0]
    lock = f", Object Lock {b.lock_mode} {b.lock_days} days" if want.object_lock_mode else ", no Object Lock (drained)"
    exp = want.expiry
    split = (
        f"current {exp.current_days} + noncurrent {exp.noncurrent_days}, versioning Enabled"
        if exp.noncurrent_days is not None
        else "unversioned"
    )
    return passed(
        STACK,
        f"{label} bucket {b.name}: lifecycle {plural(want.days, 'day')} in total ({split}){lock}, "
        f"SSE-KMS ({b.kms_key}): as posture {want.posture} says.",
    )


def _bucket_problems(b: Any, want: BucketRules, where: str) -> list[str]:
    rule = f"the bundle's posture {want.posture} requires"
    problems: list[str] = []
    if b.posture is not None and b.posture != want.posture:
        problems.append(f"{where} is tagged with posture {b.posture}; the bundle names {want.posture}")
    problems += _lifecycle_problems(b, want, where, rule)
    if want.object_lock_mode is not None:
        problems += _object_lock_problems(b, want, where, rule)
    if b.sse_algorithm != want.sse_algorithm or (want.sse_algorithm == SSE_KMS and not b.kms_key):
        problems.append(
            f"{where}: default encryption {b.sse_algorithm or 'none'} "
            f"(key {b.kms_key or 'none'}); SSE-KMS with the bucket's own key is required"
        )
    if want.versioned and b.versioning != "Enabled":
        problems.append(f"{where}: versioning {b.versioning or 'not configured'}; Enabled is required")
    if not want.versioned and b.versioning == "Enabled":
        problems.append(f"{where}: versioning Enabled keeps drained objects a day past the posture; must be off")
    return problems


def _lifecycle_problems(b: Any, want: BucketRules, where: str, rule: str) -> list[str]:
    if not b.lifecycle:
        return [f"{where} has no lifecycle configuration; {rule} expiry after {want.days} days"]
    exp = want.expiry
    total = f" ({want.days} in total)" if exp.noncurrent_days is not None else ""
    problems = []
    expected = (("current", b.current_days, exp.current_days), ("noncurrent", b.noncurrent_days, exp.noncurrent_days))
    for which, days, want_days in expected:
        if want_days is None:  # an unversioned bucket has no noncurrent versions to expire
            continue
        if not days or any(d != want_days for d in days):
            got = ", ".join(map(str, days)) or "never"
            problems.append(
                f"{where}: lifecycle expires {which} versions after {got} days; {rule} {want_days} days{total}"
            )
    return problems


def _object_lock_problems(b: Any, want: BucketRules, where: str, rule: str) -> list[str]:
    problems = []
    if b.object_lock_enabled is not True:
        problems.append(f"{where} was not created with Object Lock (objectLockEnabled {b.object_lock_enabled})")
    if not b.lock_config:
        problems.append(
            f"{where} has no Object Lock default retention; {rule} {want.object_lock_mode} for {want.days} days"
        )
        return problems
    if b.lock_mode != want.object_lock_mode:
        problems.append(f"{where}: Object Lock mode {b.lock_mode}; {rule} {want.object_lock_mode}")
    if b.lock_days != want.days:
        got = f"{b.lock_days} days" if b.lock_days is not None else f"{b.lock_years} years"
        problems.append(f"{where}: Object Lock default retention {got}; {rule} {want.days} days")
    return problems


# --- functions and schedules (items 2 and 5) -------------------------------------------------------


def redaction_function_check(prov: Provisioned) -> Check:
    fns = [f for f in prov.functions if f.handler == REDACTION_HANDLER]
    if not fns:
        return failed(STACK, f"{prov.source} has no function with handler {REDACTION_HANDLER}.")
    return passed(
        STACK,
        f"redaction function {fns[0].name} ({REDACTION_HANDLER}) drains raw invocation logs into the audit bucket.",
    )


def reconcile_schedule_check(prov: Provisioned) -> Check:
    if not prov.schedules:
        return failed(STACK, f"{prov.source} has no scheduled reconcile (aws:cloudwatch/eventRule:EventRule).")
    exprs = ", ".join(str(s.expression) for s in prov.schedules)
    return passed(STACK, f"scheduled reconcile ({exprs}) rolls back a live release whose latest eval fails.")
