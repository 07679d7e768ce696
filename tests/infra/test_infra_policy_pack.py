"""The policy pack: the program's own resources pass; each policy catches a deliberate break.

Validate functions are called directly with pulumi-policy's own argument types
(``ResourceValidationArgs``, ``StackValidationArgs`` of ``PolicyResource``) built from the
resources the mocked program registered (props = what the mock answered: inputs + outputs,
camelCase as the engine sends them). No ``PolicyPack`` is built: that starts a server.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from infra.policy.policies import Expectations, make_policies

WF = "internal-docs-qa"
ALL_POLICIES = [
    "buckets-classified",
    "log-buckets-kms-encrypted",
    "log-buckets-versioned",
    "log-buckets-object-locked",
    "log-buckets-retention",
    "log-buckets-public-access-blocked",
    "log-buckets-tls-only",
    "function-roles-no-wildcards",
    "gateway-routes-behind-jwt",
    "model-access-sanctioned-only",
    "no-iam-users-or-access-keys",
    "trust-policies-name-principals",
    "functions-not-publicly-invocable",
    "kms-keys-rotate",
    "bedrock-invocation-logging-delivers-text",
    "locked-buckets-deny-governance-bypass",
    "raw-logs-readable-only-by-redaction",
]


def _opts() -> PolicyResourceOptions:
    return PolicyResourceOptions(
        protect=False, ignore_changes=[], delete_before_replace=None, aliases=[],
        custom_timeouts=None, additional_secret_outputs=[], parent=None,
    )  # fmt: skip


def resource(type_: str, name: str, props: dict[str, Any]) -> PolicyResource:
    urn = f"urn:pulumi:test::ai-rollout::{type_}::{name}"
    return PolicyResource(type_, props, urn, name, _opts(), None, None, [], {})


def violations(policy: Any, resources: list[PolicyResource]) -> list[tuple[str, str | None]]:
    found: list[tuple[str, str | None]] = []

    def report(message: str, urn: str | None = None) -> None:
        found.append((message, urn))

    if isinstance(policy, StackValidationPolicy):
        policy.validate(StackValidationArgs(resources), report)
    else:
        for r in resources:
            args = ResourceValidationArgs(r.resource_type, r.props, r.urn, r.name, r.opts, None)
            policy.validate(args, report)
    return found


@pytest.fixture(scope="module")
def pack(bundle) -> dict[str, Any]:
    return {p.name: p for p in make_policies(Expectations.from_workflow(bundle.workflow))}


@pytest.fixture
def stack(program) -> list[PolicyResource]:
    """The program's custom resources, deep-copied so a test may break them."""
    return [resource(r.type, r.name, copy.deepcopy(r.outputs)) for r in program.resources if r.custom]


def named(stack: list[PolicyResource], name: str) -> PolicyResource:
    (found,) = [r for r in stack if r.name == name]
    return found


def config_for(stack: list[PolicyResource], type_: str, bucket_prefix: str) -> PolicyResource:
    bucket = named(stack, f"{bucket_prefix}-bucket").props["bucket"]
    (found,) = [r for r in stack if r.resource_type == type_ and r.props.get("bucket") == bucket]
    return found


def edit_policy(r: PolicyResource, key: str, change: Callable[[dict], None]) -> None:
    doc = json.loads(r.props[key])
    change(doc)
    r.props[key] = json.dumps(doc)


def test_the_pack_has_every_policy_and_all_are_mandatory(pack):
    assert list(pack) == ALL_POLICIES
    assert {p.enforcement_level for p in pack.values()} == {EnforcementLevel.MANDATORY}
    kinds = {name: type(p) for name, p in pack.items()}
    assert kinds["log-buckets-object-locked"] is StackValidationPolicy
    assert kinds["no-iam-users-or-access-keys"] is ResourceValidationPolicy


def test_expectations_come_from_the_bundle(bundle):
    expect = Expectations.from_workflow(bundle.workflow)
    assert expect.buckets["audit_log"].days == bundle.workflow.logging.retention.posture("audit_log").days
    assert expect.issuer == bundle.workflow.sso.idp.issuer
    assert len(expect.model_arns) == len(bundle.workflow.surface.models)


@pytest.mark.parametrize("name", ALL_POLICIES)
def test_the_programs_resources_pass_every_policy(pack, stack, name):
    assert violations(pack[name], stack) == []


# --- one deliberate break per policy ----------------------------------------------------------


def test_buckets_classified(pack, stack):
    bucket = named(stack, f"{WF}-audit-log-bucket")
    bucket.props["objectLockEnabled"] = False
    named(stack, f"{WF}-flag-store-bucket").props["tags"]["ai-rollout:retention-posture"] = "other"
    del named(stack, f"{WF}-raw-invocation-logs-bucket").props["tags"]["ai-rollout:log-class"]
    found = [m for m, _ in violations(pack["buckets-classified"], stack)]
    assert len(found) == 3, found
    assert any("must be created with Object Lock enabled" in m for m in found)
    assert any("keeps control_plane under posture" in m for m in found)
    assert any("has no known ai-rollout:log-class tag" in m for m in found)


def test_log_buckets_kms_encrypted(pack, stack):
    sse = config_for(stack, "aws:s3/bucketServerSideEncryptionConfiguration:"
                     "BucketServerSideEncryptionConfiguration", f"{WF}-audit-log")  # fmt: skip
    sse.props["rules"][0]["applyServerSideEncryptionByDefault"] = {"sseAlgorithm": "AES256"}
    found = violations(pack["log-buckets-kms-encrypted"], stack)
    assert [m for m, _ in found] == [f"audit_log bucket '{WF}-audit-log-bucket': default encryption must be aws:kms"]
    assert found[0][1] == named(stack, f"{WF}-audit-log-bucket").urn


def test_log_buckets_kms_encrypted_needs_the_key(pack, stack):
    sse = config_for(stack, "aws:s3/bucketServerSideEncryptionConfiguration:"
                     "BucketServerSideEncryptionConfiguration", f"{WF}-flag-store")  # fmt: skip
    del sse.props["rules"][0]["applyServerSideEncryptionByDefault"]["kmsMasterKeyId"]
    (found,) = violations(pack["log-buckets-kms-encrypted"], stack)
    assert "kmsMasterKeyId" in found[0]


def test_log_buckets_versioned(pack, stack):
    versioning = config_for(stack, "aws:s3/bucketVersioning:BucketVersioning", f"{WF}-audit-log")
    versioning.props["versioningConfiguration"]["status"] = "Suspended"
    (found,) = violations(pack["log-buckets-versioned"], stack)
    assert "versioning must be Enabled" in found[0]


def test_the_drained_raw_bucket_must_not_be_versioned(pack, stack):
    raw = named(stack, f"{WF}-raw-invocation-logs-bucket").props["bucket"]
    stack.append(resource("aws:s3/bucketVersioning:BucketVersioning", "raw-versioning",
                          {"bucket": raw, "versioningConfiguration": {"status": "Enabled"}}))  # fmt: skip
    (found,) = violations(pack["log-buckets-versioned"], stack)
    assert found[0].startswith("raw_invocation_logs bucket") and "must stay off" in found[0]


def test_log_buckets_object_locked_with_the_postures_days_and_mode(pack, stack, bundle):
    lock = config_for(stack, "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration",
                      f"{WF}-audit-log")  # fmt: skip
    lock.props["rule"]["defaultRetention"]["days"] = 30
    flags_lock = config_for(stack, "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration",
                            f"{WF}-flag-store")  # fmt: skip
    stack.remove(flags_lock)
    found = [m for m, _ in violations(pack["log-buckets-object-locked"], stack)]
    audit = bundle.workflow.logging.retention.posture("audit_log")
    assert len(found) == 2, found
    assert any(f"must be {audit.object_lock_mode.upper()} for {audit.days} days" in m for m in found)
    assert any(m.startswith("control_plane bucket") and "no Object Lock configuration" in m for m in found)


def test_log_buckets_object_locked_mode(pack, stack):
    lock = config_for(stack, "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration",
                      f"{WF}-audit-log")  # fmt: skip
    lock.props["rule"]["defaultRetention"]["mode"] = "COMPLIANCE"  # the bundle says governance
    assert len(violations(pack["log-buckets-object-locked"], stack)) == 1


def _lifecycle(stack, prefix):
    return config_for(stack, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", prefix)


def test_log_buckets_retention(pack, stack, bundle):
    lifecycle = _lifecycle(stack, f"{WF}-audit-log")
    lifecycle.props["rules"][0]["expiration"]["days"] = 30
    flags = _lifecycle(stack, f"{WF}-flag-store")
    flags.props["rules"] = [r for r in flags.props["rules"] if "noncurrentVersionExpiration" not in r]
    found = [m for m, _ in violations(pack["log-buckets-retention"], stack)]
    assert len(found) == 2, found
    assert any("current after 30 days" in m for m in found)
    assert any(m.startswith("control_plane") and "noncurrent versions" in m for m in found)


def test_log_buckets_retention_is_the_total_life_not_twice_it(pack, stack, bundle):
    """The old lifecycle (current after N, noncurrent another N) kept objects 2N days."""
    days = bundle.workflow.logging.retention.posture("audit_log").days
    rules = _lifecycle(stack, f"{WF}-audit-log").props["rules"]
    rules[0]["expiration"]["days"] = days
    rules[1]["noncurrentVersionExpiration"]["noncurrentDays"] = days
    (found,) = [m for m, _ in violations(pack["log-buckets-retention"], stack)]
    assert f"{days} days in total (current {days - 1} + noncurrent 1" in found
    assert f"current after {days} days" in found and f"noncurrent after {days} days" in found


def test_log_buckets_retention_refuses_a_fixed_date(pack, stack):
    rules = _lifecycle(stack, f"{WF}-audit-log-access-logs").props["rules"]
    rules.append({"id": "purge", "status": "Enabled", "filter": {},
                  "expiration": {"date": "2027-01-01T00:00:00Z"}})  # fmt: skip
    (found,) = [m for m, _ in violations(pack["log-buckets-retention"], stack)]
    assert "purge: expires everything on the fixed date 2027-01-01" in found


def test_log_buckets_retention_aborts_incomplete_uploads_within_a_day(pack, stack, bundle):
    rules = _lifecycle(stack, f"{WF}-raw-invocation-logs").props["rules"]
    rules[1]["abortIncompleteMultipartUpload"]["daysAfterInitiation"] = 400
    (found,) = [m for m, _ in violations(pack["log-buckets-retention"], stack)]
    assert "incomplete uploads kept 400 days" in found


def test_log_buckets_public_access_blocked(pack, stack):
    pab = config_for(stack, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", f"{WF}-audit-log")
    pab.props["blockPublicPolicy"] = False
    (found,) = violations(pack["log-buckets-public-access-blocked"], stack)
    assert "blockPublicPolicy" in found[0]


def test_log_buckets_tls_only(pack, stack):
    policy = config_for(stack, "aws:s3/bucketPolicy:BucketPolicy", f"{WF}-audit-log-access-logs")
    edit_policy(policy, "policy", lambda d: d.update(
        Statement=[s for s in d["Statement"] if s["Sid"] != "DenyInsecureTransport"]))  # fmt: skip
    (found,) = violations(pack["log-buckets-tls-only"], stack)
    assert found[0].startswith("s3_access_logs bucket") and "aws:SecureTransport" in found[0]


def test_function_roles_no_wildcards(pack, stack):
    policy = named(stack, f"{WF}-redaction-policy")
    edit_policy(policy, "policy", lambda d: d["Statement"].append(
        {"Sid": "Oops", "Effect": "Allow", "Action": ["s3:*"], "Resource": ["*"]}))  # fmt: skip
    stack.append(resource("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "admin",
                          {"role": "r", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}))  # fmt: skip
    found = [m for m, _ in violations(pack["function-roles-no-wildcards"], stack)]
    assert any("Oops: wildcard action 's3:*'" in m for m in found)
    assert any("Oops: wildcard resource '*'" in m for m in found)
    assert any("'admin'" in m and "managed policy" in m for m in found)


def test_gateway_routes_behind_jwt(pack, stack):
    (route,) = [r for r in stack if r.resource_type == "aws:apigatewayv2/route:Route"]
    route.props["authorizationType"] = "NONE"
    (authorizer,) = [r for r in stack if r.resource_type == "aws:apigatewayv2/authorizer:Authorizer"]
    authorizer.props["jwtConfiguration"]["issuer"] = "https://accounts.google.com"
    authorizer.props["jwtConfiguration"]["audiences"].append("someone-else")
    found = [m for m, _ in violations(pack["gateway-routes-behind-jwt"], stack)]
    assert len(found) == 3, found
    assert any("'POST /v1/ask' must use the JWT authorizer" in m for m in found)
    assert any("issuer 'https://accounts.google.com'" in m for m in found)
    assert any("audiences" in m for m in found)


def test_model_access_sanctioned_only(pack, stack):
    gateway = named(stack, f"{WF}-gateway-policy")

    def widen(doc: dict) -> None:
        allow = next(s for s in doc["Statement"] if s["Sid"] == "InvokeSanctionedModelsThroughGuardrail")
        allow["Resource"].append("arn:aws:bedrock:eu-west-1::foundation-model/meta.llama3-70b-instruct-v1:0")
        del allow["Condition"]

    edit_policy(gateway, "policy", widen)
    sso = named(stack, f"{WF}-sso-model-access")
    edit_policy(sso, "inlinePolicy", lambda d: d["Statement"].append(
        {"Sid": "Console", "Effect": "Allow", "Action": ["bedrock:ListFoundationModels"],
         "Resource": ["*"]}))  # fmt: skip
    found = [m for m, _ in violations(pack["model-access-sanctioned-only"], stack)]
    assert len(found) == 3, found
    assert any("outside the sanctioned ARNs" in m and "meta.llama3" in m for m in found)
    assert any("must require the bundle's guardrail" in m for m in found)
    assert any("Console: bedrock actions beyond invoke" in m for m in found)


def test_no_iam_users_or_access_keys(pack, stack):
    stack.append(resource("aws:iam/user:User", "ci-bot", {"name": "ci-bot"}))
    stack.append(resource("aws:iam/accessKey:AccessKey", "ci-bot-key", {"user": "ci-bot"}))
    found = [m for m, _ in violations(pack["no-iam-users-or-access-keys"], stack)]
    assert len(found) == 2 and all("no IAM users or long-lived keys" in m for m in found)


def test_an_unclassified_bucket_is_caught(pack, stack):
    stack.append(resource("aws:s3/bucket:Bucket", "scratch", {"bucket": "scratch", "tags": {}}))
    (found,) = violations(pack["buckets-classified"], stack)
    assert "'scratch' has no known ai-rollout:log-class tag" in found[0]


def test_the_pack_entry_point_builds_its_policies_from_the_bundle():
    """``__main__`` is only ever run by the CLI (it starts a server); check what it would run."""
    import ast
    from pathlib import Path

    source = (Path(__file__).resolve().parents[2] / "infra" / "policy" / "__main__.py").read_text()
    calls = {n.func.id for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Call)
             and isinstance(n.func, ast.Name)}  # fmt: skip
    assert {"PolicyPack", "make_policies", "load_bundle", "find_bundle"} <= calls


def test_model_access_accepts_the_inference_profile_of_a_sanctioned_model(bundle, stack):
    """Some models in some regions are callable only through a cross-region inference profile:
    the grant names the profile and the foundation model in each region it routes to."""
    model = bundle.workflow.surface.models[0]
    profile_id = f"eu.{model.id}"
    surface = bundle.workflow.surface.model_copy(update={
        "models": [model.model_copy(update={"id": profile_id})], "default_model": profile_id})  # fmt: skip
    pack = {p.name: p for p in make_policies(Expectations.from_workflow(bundle.workflow.model_copy(
        update={"surface": surface})))}  # fmt: skip
    gateway = named(stack, f"{WF}-gateway-policy")

    def through_profile(doc: dict) -> None:
        for s in doc["Statement"]:
            if s["Sid"] in ("InvokeSanctionedModelsThroughGuardrail", "DenyModelsWithoutGuardrail"):
                s["Resource"] = [f"arn:aws:bedrock:eu-west-1:123456789012:inference-profile/{profile_id}",
                                 f"arn:aws:bedrock:eu-central-1::foundation-model/{model.id}"]  # fmt: skip

    edit_policy(gateway, "policy", through_profile)
    assert [m for m, _ in violations(pack["model-access-sanctioned-only"], [gateway])] == []
    edit_policy(gateway, "policy", lambda d: d["Statement"][0]["Resource"].append(
        "arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.meta.llama3-70b-instruct-v1:0"))  # fmt: skip
    (found,) = [m for m, _ in violations(pack["model-access-sanctioned-only"], [gateway])]
    assert "outside the sanctioned ARNs" in found and "eu.meta.llama3" in found


# --- the classes a first review found the pack missed: one violating resource each ----------------


def test_an_allow_with_not_action_in_a_role_or_permission_set_is_caught(pack, stack):
    everything_else = {"Sid": "AllButIam", "Effect": "Allow", "NotAction": ["iam:*"], "Resource": ["*"]}
    edit_policy(named(stack, f"{WF}-reconcile-policy"), "policy", lambda d: d["Statement"].append(everything_else))
    edit_policy(named(stack, f"{WF}-sso-model-access"), "inlinePolicy",
                lambda d: d["Statement"].append(everything_else))  # fmt: skip
    found = [m for m, _ in violations(pack["function-roles-no-wildcards"], stack)]
    assert len([m for m in found if "AllButIam: NotAction/NotResource" in m]) == 2, found
    assert any(f"'{WF}-sso-model-access'" in m for m in found)


@pytest.mark.parametrize("type_", ["aws:iam/policyAttachment:PolicyAttachment",
                                   "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
                                   "aws:iam/groupPolicyAttachment:GroupPolicyAttachment"])  # fmt: skip
def test_an_aws_managed_admin_policy_attachment_is_caught(pack, stack, type_):
    stack.append(resource(type_, "admin", {"roles": ["r"], "role": "r",
                                           "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}))  # fmt: skip
    (found,) = [m for m, _ in violations(pack["function-roles-no-wildcards"], stack)]
    assert "AdministratorAccess" in found and "managed policy" in found


@pytest.mark.parametrize("principal", ["*", {"AWS": "*"}, {"AWS": ["arn:aws:iam::123456789012:root", "*"]}])
def test_a_trust_policy_with_a_wildcard_principal_is_caught(pack, stack, principal):
    role = named(stack, f"{WF}-gateway-role")
    edit_policy(role, "assumeRolePolicy", lambda d: d["Statement"].append(
        {"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}))  # fmt: skip
    (found,) = [m for m, _ in violations(pack["trust-policies-name-principals"], stack)]
    assert f"role '{WF}-gateway-role'" in found and "any principal" in found


def test_a_public_function_url_is_caught(pack, stack):
    stack.append(resource("aws:lambda/functionUrl:FunctionUrl", "open",
                          {"functionName": "f", "authorizationType": "NONE"}))  # fmt: skip
    (found,) = [m for m, _ in violations(pack["functions-not-publicly-invocable"], stack)]
    assert "function URL 'open' is public" in found


def test_a_lambda_permission_for_everyone_is_caught(pack, stack):
    permission = named(stack, f"{WF}-gateway-api-invoke-post-v1-ask")
    permission.props["principal"] = "*"
    (found,) = [m for m, _ in violations(pack["functions-not-publicly-invocable"], stack)]
    assert "principal '*'" in found


def test_a_lambda_permission_without_a_source_is_caught(pack, stack):
    del named(stack, f"{WF}-reconcile-events-invoke").props["sourceArn"]
    (found,) = [m for m, _ in violations(pack["functions-not-publicly-invocable"], stack)]
    assert "without a sourceArn" in found


def test_a_kms_key_without_rotation_is_caught(pack, stack):
    named(stack, f"{WF}-flag-store-key").props["enableKeyRotation"] = False
    (found,) = [m for m, _ in violations(pack["kms-keys-rotate"], stack)]
    assert f"'{WF}-flag-store-key'" in found


@pytest.mark.parametrize("key", ["alias/aws/s3", "arn:aws:kms:eu-west-1:123456789012:alias/aws/s3"])
def test_sse_kms_with_the_aws_managed_s3_key_is_caught(pack, stack, key):
    sse = config_for(stack, "aws:s3/bucketServerSideEncryptionConfiguration:"
                     "BucketServerSideEncryptionConfiguration", f"{WF}-audit-log")  # fmt: skip
    sse.props["rules"][0]["applyServerSideEncryptionByDefault"]["kmsMasterKeyId"] = key
    (found,) = [m for m, _ in violations(pack["log-buckets-kms-encrypted"], stack)]
    assert "alias/aws/s3" in found and found.startswith("audit_log bucket")


def test_bedrock_invocation_logging_without_text_delivery_is_caught(pack, stack):
    (logging,) = [r for r in stack if r.resource_type.endswith("InvocationLoggingConfiguration")]
    logging.props["loggingConfig"]["textDataDeliveryEnabled"] = False
    (found,) = [m for m, _ in violations(pack["bedrock-invocation-logging-delivers-text"], stack)]
    assert "textDataDeliveryEnabled must be true" in found


def test_removing_the_raw_buckets_read_deny_is_caught(pack, stack):
    policy = config_for(stack, "aws:s3/bucketPolicy:BucketPolicy", f"{WF}-raw-invocation-logs")
    edit_policy(policy, "policy", lambda d: d.update(
        Statement=[s for s in d["Statement"] if s["Sid"] != "DenyReadsExceptRedaction"]))  # fmt: skip
    (found,) = violations(pack["raw-logs-readable-only-by-redaction"], stack)
    assert found[0].startswith("raw_invocation_logs bucket") and "redaction role" in found[0]


def test_a_locked_bucket_whose_policy_allows_governance_bypass_is_caught(pack, stack):
    policy = config_for(stack, "aws:s3/bucketPolicy:BucketPolicy", f"{WF}-audit-log")
    edit_policy(policy, "policy", lambda d: d.update(
        Statement=[s for s in d["Statement"] if s["Sid"] != "DenyGovernanceBypass"]))  # fmt: skip
    (found,) = violations(pack["locked-buckets-deny-governance-bypass"], stack)
    assert found[0].startswith("audit_log bucket") and "BypassGovernanceRetention" in found[0]
