"""controller.core.provisioning: every number and ARN the stack uses, from the bundle alone."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from controller.core import provisioning as derive
from controller.core.provisioning import LogClass

REPO = Path(__file__).resolve().parents[1]
INFRA = REPO / "infra"


@pytest.fixture(scope="module")
def bundle():
    from controller.bundle.models import load_bundle

    return load_bundle(REPO / "workflows" / "internal-docs-qa")


@pytest.mark.parametrize(
    ("days", "expected"),
    [(1, 1), (2, 3), (30, 30), (366, 400), (400, 400), (401, 545), (2555, 2557), (3653, 3653),
     (3654, 0)],
)  # fmt: skip
def test_cloudwatch_retention_is_the_smallest_allowed_value_at_least_the_posture(days, expected):
    assert derive.cloudwatch_retention_days(days) == expected


def test_cloudwatch_retention_refuses_nonsense():
    with pytest.raises(ValueError):
        derive.cloudwatch_retention_days(0)


def test_bucket_rules_come_from_the_retention_postures(bundle):
    retention = bundle.workflow.logging.retention
    rules = derive.bucket_rules(bundle.workflow)
    for log_class, which, locked in [
        (LogClass.AUDIT_LOG, "audit_log", True),
        (LogClass.RAW_INVOCATION_LOGS, "raw_invocation_logs", False),
        (LogClass.CONTROL_PLANE, "control_plane", True),
        (LogClass.S3_ACCESS_LOGS, "audit_log", False),
    ]:
        posture = retention.posture(which)
        r = rules[log_class]
        assert (r.posture, r.days, r.source) == (getattr(retention, which), posture.days, posture.source)
        expected_mode = posture.object_lock_mode.upper() if locked else None
        assert r.object_lock_mode == expected_mode
    sse_s3 = {LogClass.S3_ACCESS_LOGS, LogClass.LAMBDA_CODE}  # S3 log delivery; Lambda reading code
    assert {rules[c].sse_algorithm for c in sse_s3} == {"AES256"}
    assert {rules[c].sse_algorithm for c in LogClass if c not in sse_s3} == {"aws:kms"}
    assert rules[LogClass.LAMBDA_CODE].posture == retention.audit_log  # the code kept as long as its records


def test_model_arns_are_built_from_the_models_and_the_endpoint_region(bundle):
    wf = bundle.workflow
    assert derive.model_arns(wf) == tuple(
        f"arn:aws:bedrock:{wf.surface.endpoint.region}::foundation-model/{m.id}" for m in wf.surface.models
    )


def _with_guardrail(bundle, gid: str, version: str = "1"):
    from controller.bundle.models import Guardrail

    surface = bundle.workflow.surface.model_copy(update={"guardrail": Guardrail(id=gid, version=version)})
    return bundle.workflow.model_copy(update={"surface": surface})


def test_guardrail_arn_and_identifier(bundle):
    wf = bundle.workflow
    g = wf.surface.guardrail
    arn = g.id  # the bundle names its guardrail by ARN (guardrail_problems)
    assert derive.guardrail_problems(wf) == []
    assert derive.guardrail_arn(wf, "123456789012") == arn
    assert derive.guardrail_identifier(wf, "123456789012") == f"{arn}:{g.version}"
    assert derive.is_guardrail_arn(wf, arn)
    assert derive.is_guardrail_arn(wf, f"{arn}:{g.version}", with_version=True)
    assert not derive.is_guardrail_arn(wf, f"{arn}:{g.version}")
    assert not derive.is_guardrail_arn(wf, arn.replace(arn.rsplit("/", 1)[1], "other"))


@pytest.mark.parametrize(
    ("gid", "version", "why"),
    [
        ("gr-docs-qa-0001", "1", "is not a Bedrock guardrail ARN"),  # the old bundle's id
        ("abc123", "1", "is not a Bedrock guardrail ARN"),  # a bare id never equals <ARN>:<version>
        ("arn:aws:bedrock:eu-west-1:123456789012:guardrail/Gr-1", "1", "is not a Bedrock guardrail ARN"),
        ("arn:aws:bedrock:us-east-1:123456789012:guardrail/abc123", "1", "a guardrail applies in its own region"),
        ("arn:aws:bedrock:eu-west-1:123456789012:guardrail/abc123", "v1", "is not a Bedrock guardrail version"),
        ("arn:aws:bedrock:eu-west-1:123456789012:guardrail/abc123", "0", "is not a Bedrock guardrail version"),
    ],
)
def test_a_guardrail_bedrock_would_refuse_is_a_problem(bundle, gid, version, why):
    (problem,) = derive.guardrail_problems(_with_guardrail(bundle, gid, version))
    assert why in problem


def test_draft_and_numbered_guardrail_versions_are_accepted(bundle):
    for version in ("DRAFT", "1", "12345678"):
        wf = _with_guardrail(bundle, "arn:aws:bedrock:eu-west-1:123456789012:guardrail/abc123", version)
        assert derive.guardrail_problems(wf) == []


def test_no_guardrail_means_none(bundle):
    wf = bundle.workflow.model_copy(
        update={"surface": bundle.workflow.surface.model_copy(update={"guardrail": None})}
    )
    assert derive.guardrail_arn(wf, "123456789012") is None
    assert derive.guardrail_identifier(wf, "123456789012") is None
    assert not derive.is_guardrail_arn(wf, "arn:aws:bedrock:eu-west-1:123456789012:guardrail/x")


def _literals(path: Path) -> tuple[set[int], set[str]]:
    """Int and str constants in a module, except CloudWatch's own list of allowed periods."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "CLOUDWATCH_RETENTION_DAYS" for t in node.targets
        ):
            skip |= {id(n) for n in ast.walk(node.value)}
    ints = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and type(n.value) is int
            and id(n) not in skip}  # fmt: skip
    strs = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    return ints, strs


def test_infra_code_writes_no_retention_number_model_id_or_idp_value(bundle):
    wf = bundle.workflow
    days = {p.days for p in wf.logging.retention.postures.values() if p.days > 1}
    values = [m.id for m in wf.surface.models] + [wf.sso.idp.issuer, wf.sso.idp.audience]
    values += [wf.surface.guardrail.id] if wf.surface.guardrail else []
    for path in sorted(INFRA.rglob("*.py")):
        ints, strs = _literals(path)
        assert not ints & days, f"{path}: retention days {ints & days} written in code"
        for text in strs:
            assert not any(v in text for v in values), f"{path}: bundle value written in code: {text!r}"


@pytest.mark.parametrize(
    ("days", "versioned", "current", "noncurrent"),
    [(400, True, 399, 1), (2555, True, 2554, 1), (2, True, 1, 1), (1, False, 1, None), (30, False, 30, None)],
)
def test_expiry_keeps_an_object_exactly_the_postures_days_in_total(days, versioned, current, noncurrent):
    exp = derive.expiry(days, versioned=versioned)
    assert (exp.current_days, exp.noncurrent_days) == (current, noncurrent)
    assert exp.total_days == days
    assert exp.abort_multipart_days == derive.ABORT_INCOMPLETE_MULTIPART_DAYS == 1


def test_a_versioned_bucket_cannot_keep_an_object_one_day():
    with pytest.raises(ValueError, match="at least 2 days"):
        derive.expiry(1, versioned=True)


def test_the_raw_bucket_is_unversioned_and_every_other_class_versioned(bundle):
    rules = derive.bucket_rules(bundle.workflow)
    assert {c for c, r in rules.items() if not r.versioned} == {LogClass.RAW_INVOCATION_LOGS}
    assert derive.retention_problems(bundle.workflow) == []


def test_a_one_day_posture_on_a_versioned_class_is_a_problem(bundle):
    retention = bundle.workflow.logging.retention
    postures = dict(retention.postures)
    postures[retention.audit_log] = postures[retention.audit_log].model_copy(update={"days": 1})
    workflow = bundle.workflow.model_copy(
        update={"logging": bundle.workflow.logging.model_copy(
            update={"retention": retention.model_copy(update={"postures": postures})})}
    )  # fmt: skip
    (problem,) = [p for p in derive.retention_problems(workflow) if "audit_log buckets" in p]
    assert f"postures.{retention.audit_log}" in problem and "at least 2 days" in problem
