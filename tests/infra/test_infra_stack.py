"""The program under Pulumi mocks: every property asserted on the resource inputs it sends."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pulumi
import pytest
from infra_mocks import ACCOUNT, BUNDLE, MOCKS, PROJECT, REGION, make_config, run_program

from controller.core import provisioning as derive
from infra.config import InvalidStackConfig
from infra.policies import wildcard_problems

T_BUCKET = "aws:s3/bucket:Bucket"
T_VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
T_SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
T_LOCK = "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration"
T_LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
T_PAB = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
T_OWNERSHIP = "aws:s3/bucketOwnershipControls:BucketOwnershipControls"
T_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
T_LOGGING = "aws:s3/bucketLogging:BucketLogging"
T_KEY = "aws:kms/key:Key"
T_ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
T_FUNCTION = "aws:lambda/function:Function"
T_LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"

WF = "internal-docs-qa"
CODE = f"{WF}-lambda-code"
AUDIT, ACCESS, RAW, FLAGS = (
    f"{WF}-audit-log", f"{WF}-audit-log-access-logs", f"{WF}-raw-invocation-logs", f"{WF}-flag-store",
)  # fmt: skip


def statements(document: str) -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for s in json.loads(document)["Statement"]}


def bucket_id(program, prefix: str) -> str:
    return program.named(f"{prefix}-bucket").outputs["bucket"]


def config_of(program, token: str, prefix: str) -> dict[str, Any]:
    (found,) = [r for r in program.of_type(token) if r.inputs.get("bucket") == bucket_id(program, prefix)]
    return found.inputs


def posture(bundle, which: str):
    return bundle.workflow.logging.retention.posture(which)


# --- the audit-log bucket --------------------------------------------------------------------


def test_audit_bucket_is_object_locked_versioned_and_tagged(program, bundle):
    bucket = program.named(f"{AUDIT}-bucket").inputs
    assert bucket["objectLockEnabled"] is True
    retention = bundle.workflow.logging.retention
    assert bucket["tags"] == {
        "ai-rollout:log-class": "audit_log",
        "ai-rollout:retention-posture": retention.audit_log,
        "ai-rollout:workflow": WF,
    }
    assert config_of(program, T_VERSIONING, AUDIT)["versioningConfiguration"] == {"status": "Enabled"}


def test_audit_object_lock_and_lifecycle_come_from_the_audit_posture(program, bundle):
    p = posture(bundle, "audit_log")
    lock = config_of(program, T_LOCK, AUDIT)
    assert lock["objectLockEnabled"] == "Enabled"
    assert lock["rule"] == {"defaultRetention": {"days": p.days, "mode": p.object_lock_mode.upper()}}
    rules = {r["id"]: r for r in config_of(program, T_LIFECYCLE, AUDIT)["rules"]}
    name = bundle.workflow.logging.retention.audit_log
    # Total life == the posture: hidden behind a delete marker a day early, gone a day later.
    assert rules[f"expire-current-{name}"]["expiration"] == {"days": p.days - 1}
    assert rules[f"expire-current-{name}"]["status"] == "Enabled"
    assert rules[f"expire-noncurrent-{name}"]["noncurrentVersionExpiration"] == {"noncurrentDays": 1}
    assert rules[f"expire-noncurrent-{name}"]["abortIncompleteMultipartUpload"] == {"daysAfterInitiation": 1}


def test_audit_bucket_is_kms_encrypted_with_its_own_rotating_key(program):
    key = program.named(f"{AUDIT}-key")
    assert key.inputs["enableKeyRotation"] is True
    (rule,) = config_of(program, T_SSE, AUDIT)["rules"]
    assert rule["applyServerSideEncryptionByDefault"] == {
        "sseAlgorithm": "aws:kms", "kmsMasterKeyId": key.outputs["arn"],
    }  # fmt: skip
    assert rule["bucketKeyEnabled"] is True
    others = {program.named(f"{p}-key").outputs["arn"] for p in (RAW, FLAGS)}
    assert key.outputs["arn"] not in others and len(others) == 2


@pytest.mark.parametrize("prefix", [AUDIT, ACCESS, RAW, FLAGS])
def test_every_bucket_blocks_public_access_and_enforces_bucket_owner(program, prefix):
    pab = config_of(program, T_PAB, prefix)
    assert all(pab[k] is True for k in
               ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"))  # fmt: skip
    assert config_of(program, T_OWNERSHIP, prefix)["rule"] == {"objectOwnership": "BucketOwnerEnforced"}


@pytest.mark.parametrize("prefix", [AUDIT, ACCESS, RAW, FLAGS])
def test_every_bucket_policy_denies_insecure_transport(program, prefix):
    arn = program.named(f"{prefix}-bucket").outputs["arn"]
    tls = statements(config_of(program, T_POLICY, prefix)["policy"])["DenyInsecureTransport"]
    assert tls["Resource"] == [arn, f"{arn}/*"] and tls["Effect"] == "Deny"


@pytest.mark.parametrize("prefix", [AUDIT, RAW, FLAGS])
def test_kms_bucket_policies_refuse_puts_asking_for_another_key(program, prefix):
    st = statements(config_of(program, T_POLICY, prefix)["policy"])
    key_arn = program.named(f"{prefix}-key").outputs["arn"]
    assert st["DenyPutsWithOtherKeys"]["Condition"]["StringNotEquals"] == {
        "s3:x-amz-server-side-encryption-aws-kms-key-id": key_arn
    }
    assert {"DenyNonKmsPuts", "DenyKmsPutsWithoutBucketKey", "DenyCustomerProvidedKeys"} <= set(st)


@pytest.mark.parametrize("prefix", [AUDIT, RAW, FLAGS])
def test_log_buckets_send_server_access_logs_to_the_separate_access_log_bucket(program, prefix):
    logging = config_of(program, T_LOGGING, prefix)
    assert logging["targetBucket"] == bucket_id(program, ACCESS)
    assert not [r for r in program.of_type(T_LOGGING) if r.inputs["bucket"] == bucket_id(program, ACCESS)]


def test_access_log_bucket_is_sse_s3_unlocked_and_kept_per_the_audit_posture(program, bundle):
    bucket = program.named(f"{ACCESS}-bucket").inputs
    assert bucket["objectLockEnabled"] is False  # S3 cannot log into a bucket with default retention
    (rule,) = config_of(program, T_SSE, ACCESS)["rules"]
    assert rule["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "AES256"}
    days = posture(bundle, "audit_log").days
    rules = config_of(program, T_LIFECYCLE, ACCESS)["rules"]
    assert [r.get("expiration", {}).get("days") for r in rules] == [days - 1, None]
    assert [r.get("noncurrentVersionExpiration", {}).get("noncurrentDays") for r in rules] == [None, 1]
    allow = statements(config_of(program, T_POLICY, ACCESS)["policy"])["AllowS3ServerAccessLogs"]
    assert allow["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    logged = sorted(program.named(f"{p}-bucket").outputs["arn"] for p in (AUDIT, RAW, FLAGS, CODE))
    assert allow["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT},
                                  "ArnEquals": {"aws:SourceArn": logged}}  # fmt: skip


# --- raw invocation logs and the redaction function ------------------------------------------


def test_raw_bucket_has_its_own_short_retention_and_no_lock(program, bundle):
    p = posture(bundle, "raw_invocation_logs")
    assert program.named(f"{RAW}-bucket").inputs["objectLockEnabled"] is False
    assert not [r for r in program.of_type(T_LOCK) if r.inputs["bucket"] == bucket_id(program, RAW)]
    rules = config_of(program, T_LIFECYCLE, RAW)["rules"]
    # Unversioned (drained, not kept): an object is gone after exactly the posture's days.
    assert not [r for r in program.of_type(T_VERSIONING) if r.inputs["bucket"] == bucket_id(program, RAW)]
    assert {r.get("expiration", {}).get("days") for r in rules} - {None} == {p.days}
    assert not [r for r in rules if "noncurrentVersionExpiration" in r]
    assert rules[1]["abortIncompleteMultipartUpload"] == {"daysAfterInitiation": 1}
    (rule,) = config_of(program, T_SSE, RAW)["rules"]
    assert rule["applyServerSideEncryptionByDefault"]["kmsMasterKeyId"] == program.named(f"{RAW}-key").outputs["arn"]


def test_raw_bucket_is_readable_only_by_the_redaction_role(program):
    role_arn = program.named(f"{WF}-redaction-role").outputs["arn"]
    st = statements(config_of(program, T_POLICY, RAW)["policy"])
    assert st["DenyReadsExceptRedaction"]["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": role_arn}}
    assert st["AllowBedrockInvocationLogs"]["Principal"] == {"Service": "bedrock.amazonaws.com"}
    key_policy = statements(program.named(f"{RAW}-key").inputs["policy"])
    assert "AllowBedrockInvocationLogEncryption" in key_policy


def test_bedrock_invocation_logging_writes_text_to_the_raw_bucket(program):
    (logging,) = program.of_type(
        "aws:bedrockmodel/invocationLoggingConfiguration:InvocationLoggingConfiguration"
    )
    config = logging.inputs["loggingConfig"]
    assert config["s3Config"] == {"bucketName": bucket_id(program, RAW), "keyPrefix": "bedrock"}
    assert config["textDataDeliveryEnabled"] is True


def test_redaction_function_is_triggered_by_new_raw_objects(program):
    fn = program.named(f"{WF}-redaction-function")
    (notification,) = program.of_type("aws:s3/bucketNotification:BucketNotification")
    assert notification.inputs["bucket"] == bucket_id(program, RAW)
    (target,) = notification.inputs["lambdaFunctions"]
    assert target == {
        "lambdaFunctionArn": fn.outputs["arn"], "events": ["s3:ObjectCreated:*"], "filterPrefix": "bedrock/",
    }  # fmt: skip
    permission = program.named(f"{WF}-redaction-s3-invoke").inputs
    assert permission["principal"] == "s3.amazonaws.com"
    assert permission["sourceArn"] == program.named(f"{RAW}-bucket").outputs["arn"]
    assert permission["sourceAccount"] == ACCOUNT


def test_redaction_function_runs_the_handler_with_a_dead_letter_queue(program, lambda_archive):
    fn = program.named(f"{WF}-redaction-function").inputs
    assert fn["handler"] == "infra.handlers.redaction.handler"
    assert fn["runtime"] == "python3.11" and fn["architectures"] == ["x86_64"]
    code = program.one_of_type("aws:s3/bucketObjectv2:BucketObjectv2").inputs
    assert (fn["s3Bucket"], fn["s3Key"]) == (bucket_id(program, CODE), code["key"])
    dlq = program.named(f"{WF}-redaction-dead-letters")
    assert fn["deadLetterConfig"] == {"targetArn": dlq.outputs["arn"]}
    assert dlq.inputs["sqsManagedSseEnabled"] is True
    env = fn["environment"]["variables"]
    assert env == {
        "ROLLOUT_WORKFLOW": BUNDLE,
        "ROLLOUT_AUDIT_BUCKET": bucket_id(program, AUDIT),
        "ROLLOUT_AUDIT_PREFIX": "invocations/",
        "ROLLOUT_AUDIT_KMS_KEY": program.named(f"{AUDIT}-key").outputs["arn"],
    }


@pytest.mark.parametrize("function", ["redaction", "gateway", "reconcile"])
def test_function_roles_are_least_privilege(program, function):
    role_policy = program.named(f"{WF}-{function}-policy").inputs
    assert role_policy["role"] == f"{WF}-{function}-role-id"
    assert wildcard_problems(role_policy["policy"]) == []
    assume = json.loads(program.named(f"{WF}-{function}-role").inputs["assumeRolePolicy"])
    assert assume["Statement"][0]["Principal"] == {"Service": "lambda.amazonaws.com"}
    assert "managedPolicyArns" not in program.named(f"{WF}-{function}-role").inputs


def test_redaction_role_grants_exactly_the_drain(program):
    st = statements(program.named(f"{WF}-redaction-policy").inputs["policy"])
    raw_arn = program.named(f"{RAW}-bucket").outputs["arn"]
    audit_arn = program.named(f"{AUDIT}-bucket").outputs["arn"]
    assert st["DrainRawInvocationLogs"]["Resource"] == [f"{raw_arn}/bedrock/*"]
    assert st["WriteRedactedRecords"]["Resource"] == [f"{audit_arn}/invocations/*"]
    assert st["DecryptRawInvocationLogs"]["Resource"] == [program.named(f"{RAW}-key").outputs["arn"]]
    assert st["EncryptRedactedRecords"]["Resource"] == [program.named(f"{AUDIT}-key").outputs["arn"]]
    assert st["DeadLetter"]["Resource"] == [program.named(f"{WF}-redaction-dead-letters").outputs["arn"]]


@pytest.mark.parametrize("function", ["redaction", "gateway", "reconcile"])
def test_function_logs_are_kept_per_the_audit_posture_rounded_for_cloudwatch(program, bundle, function):
    days = derive.cloudwatch_retention_days(posture(bundle, "audit_log").days)
    group = program.named(f"{WF}-{function}-logs")
    assert group.inputs["retentionInDays"] == days
    assert group.inputs["kmsKeyId"] == program.named(f"{WF}-log-key-key").outputs["arn"]
    fn = program.named(f"{WF}-{function}-function").inputs
    assert fn["loggingConfig"] == {"logFormat": "JSON", "logGroup": group.outputs["name"]}


# --- the model gateway -----------------------------------------------------------------------


def test_gateway_api_is_http_with_a_jwt_authorizer_for_the_bundles_idp(program, bundle):
    idp = bundle.workflow.sso.idp
    (api,) = program.of_type("aws:apigatewayv2/api:Api")
    assert api.inputs["protocolType"] == "HTTP"
    assert "target" not in api.inputs and "routeKey" not in api.inputs  # no quick-create route
    (authorizer,) = program.of_type("aws:apigatewayv2/authorizer:Authorizer")
    assert authorizer.inputs["authorizerType"] == "JWT"
    assert authorizer.inputs["jwtConfiguration"] == {"issuer": idp.issuer, "audiences": [idp.audience]}
    assert authorizer.inputs["identitySources"] == ["$request.header.Authorization"]


def test_every_route_requires_the_jwt_authorizer(program):
    (authorizer,) = program.of_type("aws:apigatewayv2/authorizer:Authorizer")
    routes = program.of_type("aws:apigatewayv2/route:Route")
    assert [r.inputs["routeKey"] for r in routes] == ["POST /v1/ask"]
    for route in routes:
        assert route.inputs["authorizationType"] == "JWT"
        assert route.inputs["authorizerId"] == f"{authorizer.name}-id"
    (integration,) = program.of_type("aws:apigatewayv2/integration:Integration")
    assert integration.inputs["integrationType"] == "AWS_PROXY"
    assert integration.inputs["integrationUri"] == program.named(f"{WF}-gateway-function").outputs["arn"]
    assert routes[0].inputs["target"] == f"integrations/{integration.name}-id"


def test_gateway_stage_throttles_from_config_and_logs_access(program, bundle, lambda_archive):
    (stage,) = program.of_type("aws:apigatewayv2/stage:Stage")
    config = make_config(PROJECT, lambda_archive)
    assert stage.inputs["defaultRouteSettings"] == {
        "throttlingBurstLimit": config.gateway_throttle_burst,
        "throttlingRateLimit": config.gateway_throttle_rate,
    }
    access = program.named(f"{WF}-gateway-access-logs")
    assert stage.inputs["accessLogSettings"]["destinationArn"] == access.outputs["arn"]
    assert json.loads(stage.inputs["accessLogSettings"]["format"])["requestId"] == "$context.requestId"
    # It names callers (source IP, user agent, subject): kept per the transient posture, encrypted.
    assert access.inputs["retentionInDays"] == derive.cloudwatch_retention_days(
        posture(bundle, "raw_invocation_logs").days
    )
    assert access.inputs["kmsKeyId"] == program.named(f"{WF}-log-key-key").outputs["arn"]


def test_gateway_role_may_invoke_only_the_sanctioned_models_through_the_guardrail(program, bundle):
    st = statements(program.named(f"{WF}-gateway-policy").inputs["policy"])
    models = list(derive.model_arns(bundle.workflow))
    guardrail = derive.guardrail_arn(bundle.workflow, ACCOUNT)
    ident = derive.guardrail_identifier(bundle.workflow, ACCOUNT)
    allow = st["InvokeSanctionedModelsThroughGuardrail"]
    assert allow["Action"] == ["bedrock:InvokeModel"] and allow["Resource"] == models
    assert allow["Condition"] == {"StringEquals": {"bedrock:GuardrailIdentifier": ident}}
    assert st["DenyModelsWithoutGuardrail"]["Effect"] == "Deny"
    assert st["ApplySanctionedGuardrail"]["Resource"] == [guardrail]
    assert ident == f"{bundle.workflow.surface.guardrail.id}:1"


def test_gateway_function_gets_the_controller_lambda_contract(program):
    fn = program.named(f"{WF}-gateway-function").inputs
    assert fn["handler"] == "infra.handlers.gateway.handler"
    env = fn["environment"]["variables"]
    flags = bucket_id(program, FLAGS)
    assert env["ROLLOUT_WORKFLOW"] == BUNDLE
    assert env["ROLLOUT_STORE"] == f"s3://{flags}/control-plane/{WF}"
    assert (env["ROLLOUT_FLAGS_BUCKET"], env["ROLLOUT_FLAGS_KEY"]) == (flags, f"flags/{WF}.flagd.json")
    assert env["ROLLOUT_AUDIT_BUCKET"] == bucket_id(program, AUDIT)
    assert env["ROLLOUT_AUDIT_KMS_KEY"] == program.named(f"{AUDIT}-key").outputs["arn"]
    secret = program.named(f"{WF}-gateway-subject-key").outputs["arn"]
    assert env["ROLLOUT_SUBJECT_KEY_SECRET"] == secret
    st = statements(program.named(f"{WF}-gateway-policy").inputs["policy"])
    assert st["ReadSubjectPseudonymKey"]["Resource"] == [secret]
    permission = program.named(f"{WF}-gateway-api-invoke-post-v1-ask").inputs
    assert permission["principal"] == "apigateway.amazonaws.com"
    execution_arn = program.one_of_type("aws:apigatewayv2/api:Api").outputs["executionArn"]
    assert permission["sourceArn"] == f"{execution_arn}/*/POST/v1/ask"  # this route only, not /*/*


# --- SSO, flag store, scheduled reconcile ------------------------------------------------------


def test_sso_permission_set_is_limited_to_the_sanctioned_models(program, bundle):
    ps = program.named(f"{WF}-sso-permission-set").inputs
    assert ps["name"] == f"ai-{WF}" and ps["sessionDuration"] == "PT1H"
    assert ps["instanceArn"] == "arn:aws:sso:::instance/ssoins-0000000000000000"
    inline = program.named(f"{WF}-sso-model-access").inputs
    st = statements(inline["inlinePolicy"])
    assert st["InvokeSanctionedModelsThroughGuardrail"]["Resource"] == list(derive.model_arns(bundle.workflow))
    assert set(st) == {"InvokeSanctionedModelsThroughGuardrail", "DenyModelsWithoutGuardrail",
                       "ApplySanctionedGuardrail"}  # fmt: skip


def test_sso_assignment_targets_the_first_cohort_group_by_lookup(bundle, lambda_archive):
    MOCKS.calls.clear()
    program = run_program(bundle, make_config(PROJECT, lambda_archive))
    assignment = program.named(f"{WF}-sso-assignment").inputs
    assert assignment["principalType"] == "GROUP" and assignment["principalId"] == "group-ai-pilot"
    assert (assignment["targetType"], assignment["targetId"]) == ("AWS_ACCOUNT", ACCOUNT)
    assert assignment["permissionSetArn"] == program.named(f"{WF}-sso-permission-set").outputs["arn"]
    group = bundle.workflow.rollout.cohort("internal").groups[0]
    lookups = [a for t, a in MOCKS.calls if t == "aws:identitystore/getGroup:getGroup"]
    assert lookups and lookups[-1]["alternateIdentifier"]["uniqueAttribute"]["attributeValue"] == group


def test_sso_config_values_replace_the_lookups(bundle, lambda_archive):
    MOCKS.calls.clear()
    run = run_program(
        bundle,
        make_config(PROJECT, lambda_archive, sso_instance_arn="arn:aws:sso:::instance/ssoins-1",
                    sso_group_id="g-1", sso_account_id="210987654321"),
    )  # fmt: skip
    assignment = run.named(f"{WF}-sso-assignment").inputs
    assert (assignment["instanceArn"], assignment["principalId"], assignment["targetId"]) == (
        "arn:aws:sso:::instance/ssoins-1", "g-1", "210987654321",
    )  # fmt: skip
    tokens = {t for t, _ in MOCKS.calls}
    assert "aws:ssoadmin/getInstances:getInstances" not in tokens
    assert "aws:identitystore/getGroup:getGroup" not in tokens


def test_flag_store_is_locked_and_kept_per_the_control_plane_posture(program, bundle):
    p = posture(bundle, "control_plane")
    name = bundle.workflow.logging.retention.control_plane
    assert program.named(f"{FLAGS}-bucket").inputs["objectLockEnabled"] is True
    assert config_of(program, T_LOCK, FLAGS)["rule"] == {
        "defaultRetention": {"days": p.days, "mode": p.object_lock_mode.upper()}
    }
    rules = {r["id"]: r for r in config_of(program, T_LIFECYCLE, FLAGS)["rules"]}
    current = rules[f"expire-current-{name}"]
    assert current["filter"] == {"prefix": f"control-plane/{WF}/audit/"}  # live flags never expire
    assert current["expiration"] == {"days": p.days - 1}
    # Overwritten flags and state are noncurrent a day, but Object Lock keeps each p.days.
    assert rules[f"expire-noncurrent-{name}"]["noncurrentVersionExpiration"] == {"noncurrentDays": 1}
    (rule,) = config_of(program, T_SSE, FLAGS)["rules"]
    assert rule["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "aws:kms"
    assert config_of(program, T_VERSIONING, FLAGS)["versioningConfiguration"] == {"status": "Enabled"}


def test_reconcile_runs_on_the_configured_schedule(program, lambda_archive):
    rule = program.named(f"{WF}-reconcile-schedule").inputs
    assert rule["scheduleExpression"] == make_config(PROJECT, lambda_archive).reconcile_schedule
    target = program.named(f"{WF}-reconcile-target").inputs
    fn = program.named(f"{WF}-reconcile-function")
    assert target["arn"] == fn.outputs["arn"]
    assert fn.inputs["handler"] == "infra.handlers.reconcile.handler"
    assert program.named(f"{WF}-reconcile-events-invoke").inputs["principal"] == "events.amazonaws.com"
    st = statements(program.named(f"{WF}-reconcile-policy").inputs["policy"])
    flags_arn = program.named(f"{FLAGS}-bucket").outputs["arn"]
    assert st["ReadWriteControlPlane"]["Resource"] == [
        f"{flags_arn}/flags/{WF}.flagd.json", f"{flags_arn}/control-plane/{WF}/*",
    ]  # fmt: skip


def test_reconcile_schedule_is_stack_config(bundle, lambda_archive):
    run = run_program(bundle, make_config(PROJECT, lambda_archive, reconcile_schedule="rate(5 minutes)"))
    assert run.named(f"{WF}-reconcile-schedule").inputs["scheduleExpression"] == "rate(5 minutes)"


# --- shape of the program ------------------------------------------------------------------


def test_components_have_typed_urns_and_prefixed_children(program):
    components = {r.type for r in program.resources if not r.custom}
    assert components == {
        f"ai-rollout:infra:{c}" for c in ("AuditLogBucket", "RawInvocationLogs", "RedactionFunction",
                                          "FlagStore", "ModelGateway", "SsoAccess", "ScheduledReconcile",
                                          "LogEncryptionKey", "LambdaCode")
    }  # fmt: skip
    assert all(r.name.startswith(f"{WF}-") for r in program.resources)


def test_no_iam_users_or_keys_are_created(program):
    assert not [r for r in program.resources if r.type.startswith(("aws:iam/user", "aws:iam/accessKey"))]


def test_stack_outputs_give_an_auditor_what_was_provisioned(program, bundle):
    out = program.outputs
    retention = bundle.workflow.logging.retention
    for which in ("audit_log", "raw_invocation_logs", "control_plane"):
        p = retention.posture(which)
        assert out["retention"][which]["posture"] == getattr(retention, which)
        assert (out["retention"][which]["days"], out["retention"][which]["source"]) == (p.days, p.source)
    assert out["object_lock"] == {
        "audit_log": posture(bundle, "audit_log").object_lock_mode.upper(),
        "control_plane": posture(bundle, "control_plane").object_lock_mode.upper(),
    }
    assert out["buckets"]["audit_log"] == {
        "name": bucket_id(program, AUDIT), "arn": program.named(f"{AUDIT}-bucket").outputs["arn"],
    }  # fmt: skip
    assert out["kms_keys"]["audit_log"] == program.named(f"{AUDIT}-key").outputs["arn"]
    idp = bundle.workflow.sso.idp
    assert (out["gateway"]["authorizer_issuer"], out["gateway"]["authorizer_audience"]) == (idp.issuer, idp.audience)
    assert out["gateway"]["ask_url"].endswith("/v1/ask")
    assert out["gateway"]["api_endpoint"].startswith("https://")
    assert out["sso"]["permission_set_arn"] == program.named(f"{WF}-sso-permission-set").outputs["arn"]
    assert out["flag_store"]["flags_uri"] == f"s3://{bucket_id(program, FLAGS)}/flags/{WF}.flagd.json"
    assert out["models"]["sanctioned_arns"] == list(derive.model_arns(bundle.workflow))


def test_no_resource_is_created_inside_an_apply(bundle, lambda_archive, monkeypatch):
    depth = {"n": 0}
    real_apply, real_init = pulumi.Output.apply, pulumi.Resource.__init__

    def apply(self, func, run_with_unknowns=False):
        def inside(*args, **kwargs):
            depth["n"] += 1
            try:
                return func(*args, **kwargs)
            finally:
                depth["n"] -= 1

        return real_apply(self, inside, run_with_unknowns)

    def init(self, t, name, *args, **kwargs):
        assert depth["n"] == 0, f"{t} {name} created inside an apply"
        real_init(self, t, name, *args, **kwargs)

    monkeypatch.setattr(pulumi.Output, "apply", apply)
    monkeypatch.setattr(pulumi.Resource, "__init__", init)
    run = run_program(bundle, make_config(PROJECT, lambda_archive))
    assert len(run.resources) > 50


def test_a_config_that_does_not_fit_the_bundle_fails_before_any_resource(bundle, lambda_archive):
    with pytest.raises(InvalidStackConfig, match="aws:region"):
        run_program(bundle, make_config(PROJECT, lambda_archive, region="us-east-1"))
    assert MOCKS.resources == []


def test_main_is_a_thin_caller(bundle, lambda_archive, monkeypatch):
    """``infra/__main__.py`` reads config, loads the bundle and exports what ``build`` returns."""
    import runpy

    from pulumi.runtime.settings import get_root_resource

    monkeypatch.setenv("PULUMI_CONFIG", json.dumps({
        "ai-rollout:workflow": BUNDLE, "aws:region": REGION, "ai-rollout:lambdaArchive": str(lambda_archive),
    }))  # fmt: skip
    MOCKS.resources.clear()

    @pulumi.runtime.test
    def main() -> None:
        runpy.run_path(str(PROJECT / "infra" / "__main__.py"), run_name="__main__")

    main()
    exported = get_root_resource().outputs
    assert {"retention", "buckets", "kms_keys", "gateway", "sso", "flag_store"} <= set(exported)
    assert len(MOCKS.resources) > 50


# --- pulumi destroy ------------------------------------------------------------------------------


def _retained(bundle, lambda_archive, monkeypatch) -> tuple[dict[str, bool], Any]:
    """(logical name -> retain_on_delete) for every resource, and the run."""
    import inspect

    seen: dict[str, bool] = {}
    real_init = pulumi.Resource.__init__
    signature = inspect.signature(real_init)

    def init(self, *args, **kwargs):
        bound = signature.bind(self, *args, **kwargs)
        opts = bound.arguments.get("opts")
        seen[bound.arguments["name"]] = bool(opts is not None and opts.retain_on_delete)
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(pulumi.Resource, "__init__", init)
    return seen, run_program(bundle, make_config(PROJECT, lambda_archive))


def test_destroy_leaves_the_evidence_buckets_and_their_keys_in_place(bundle, lambda_archive, monkeypatch):
    retained, run = _retained(bundle, lambda_archive, monkeypatch)
    for prefix in (AUDIT, ACCESS, FLAGS):
        bucket = bucket_id(run, prefix)
        governing = [r.name for r in run.resources if r.inputs.get("bucket") == bucket]
        assert {"lifecycle", "encryption", "policy"} <= {n.rsplit("-", 1)[-1] for n in governing}
        for name in [f"{prefix}-bucket", *governing]:
            assert retained[name], f"{name} would be deleted by pulumi destroy"
        assert run.named(f"{prefix}-bucket").inputs["forceDestroy"] is False
    for prefix in (AUDIT, FLAGS):
        assert retained[f"{prefix}-key"], f"{prefix}-key: destroy would make the evidence unreadable"
        assert run.named(f"{prefix}-key").inputs["deletionWindowInDays"] == 30


def test_destroy_removes_the_raw_bucket_and_schedules_its_key_for_deletion(bundle, lambda_archive, monkeypatch):
    retained, run = _retained(bundle, lambda_archive, monkeypatch)
    assert not retained[f"{RAW}-bucket"] and not retained[f"{RAW}-key"]
    assert run.named(f"{RAW}-bucket").inputs["forceDestroy"] is True  # not evidence: drained anyway
    functions = [r.name for r in run.of_type(T_FUNCTION)]
    assert functions and not [n for n in functions if retained[n]]  # only evidence is kept


@pytest.mark.parametrize("policy", [f"{WF}-gateway-policy", f"{WF}-sso-model-access"])
def test_the_gateway_sends_exactly_the_guardrail_the_iam_condition_compares(program, bundle, policy):
    """Converse's guardrailIdentifier + ":" + guardrailVersion is what bedrock:GuardrailIdentifier
    holds; the program's condition must be that string, or IAM refuses every call."""
    import boto3

    from controller.models.base import ModelRequest
    from controller.models.bedrock import BedrockAdapter

    wf = bundle.workflow
    adapter = BedrockAdapter(region=REGION, guardrail=wf.surface.guardrail,
                             session=boto3.Session(aws_access_key_id="x", aws_secret_access_key="x"))  # fmt: skip
    sent = adapter.converse_arguments(ModelRequest(model_id=wf.surface.default_model, system="s", prompt="p"))
    config = sent["guardrailConfig"]
    doc = program.named(policy).inputs.get("policy") or program.named(policy).inputs["inlinePolicy"]
    condition = statements(doc)["InvokeSanctionedModelsThroughGuardrail"]["Condition"]["StringEquals"]
    assert f"{config['guardrailIdentifier']}:{config['guardrailVersion']}" == condition["bedrock:GuardrailIdentifier"]
    assert derive.GUARDRAIL_ARN.fullmatch(config["guardrailIdentifier"])


def test_a_bundle_whose_guardrail_bedrock_would_refuse_fails_before_any_resource(bundle, lambda_archive):
    from controller.bundle.models import Guardrail

    surface = bundle.workflow.surface.model_copy(update={"guardrail": Guardrail(id="gr-docs-qa-0001", version="1")})
    broken = dataclasses.replace(bundle, workflow=bundle.workflow.model_copy(update={"surface": surface}))
    with pytest.raises(InvalidStackConfig, match="is not a Bedrock guardrail ARN"):
        run_program(broken, make_config(PROJECT, lambda_archive))
    assert MOCKS.resources == []


def test_invocation_logging_owned_elsewhere_is_left_alone(bundle, lambda_archive):
    """It is one per account and region: creating it silently replaces an existing one."""
    token = "aws:bedrockmodel/invocationLoggingConfiguration:InvocationLoggingConfiguration"
    run = run_program(bundle, make_config(PROJECT, lambda_archive, bedrock_invocation_logging="external"))
    assert run.of_type(token) == [] and run.outputs["models"]["invocation_logging"] == "external"
    assert run.named(f"{RAW}-bucket")  # the raw bucket and its Bedrock write grant stay
    with pytest.raises(InvalidStackConfig, match="bedrockInvocationLogging is 'replace'"):
        run_program(bundle, make_config(PROJECT, lambda_archive, bedrock_invocation_logging="replace"))


# --- IAM Identity Center: its own provider, and the operators' permission set ----------------------


def test_operators_get_exactly_the_rollout_cli_on_the_flag_store_and_its_key(program):
    ps = program.named(f"{WF}-sso-ops-permission-set").inputs
    assert ps["name"] == f"ai-{WF}-ops"
    st = statements(program.named(f"{WF}-sso-ops-access").inputs["inlinePolicy"])
    flags_arn = program.named(f"{FLAGS}-bucket").outputs["arn"]
    assert set(st) == {"ListFlagStore", "ReadWriteControlPlane", "UseFlagStoreKey"}
    assert st["ListFlagStore"]["Resource"] == [flags_arn] and "Condition" not in st["ListFlagStore"]
    assert st["ReadWriteControlPlane"]["Resource"] == [f"{flags_arn}/flags/{WF}.flagd.json",
                                                       f"{flags_arn}/control-plane/{WF}/*"]  # fmt: skip
    assert st["UseFlagStoreKey"]["Resource"] == [program.named(f"{FLAGS}-key").outputs["arn"]]
    assert wildcard_problems(program.named(f"{WF}-sso-ops-access").inputs["inlinePolicy"]) == []
    # No operator group configured: the permission set exists, nobody holds it yet.
    assert [r for r in program.of_type("aws:ssoadmin/accountAssignment:AccountAssignment")
            if r.name == f"{WF}-sso-ops-assignment"] == []  # fmt: skip


def test_the_operator_group_is_assigned_when_configured(bundle, lambda_archive):
    run = run_program(bundle, make_config(PROJECT, lambda_archive, operator_group_name="ai-rollout-operators"))
    assignment = run.named(f"{WF}-sso-ops-assignment").inputs
    assert assignment["permissionSetArn"] == run.named(f"{WF}-sso-ops-permission-set").outputs["arn"]
    assert (assignment["targetType"], assignment["targetId"]) == ("AWS_ACCOUNT", ACCOUNT)


def test_identity_center_resources_use_their_own_assume_role_provider(bundle, lambda_archive):
    role = "arn:aws:iam::210987654321:role/ai-rollout-identity-center"
    MOCKS.calls.clear()
    run = run_program(bundle, make_config(PROJECT, lambda_archive, identity_center_role_arn=role,
                                          identity_center_region="eu-central-1"))  # fmt: skip
    provider = run.named(f"{WF}-sso-identity-center")
    assert provider.type == "pulumi:providers:aws"
    assert provider.inputs["region"] == "eu-central-1"
    assert json.loads(provider.inputs["assumeRoles"])[0]["roleArn"] == role
    sso_types = ("aws:ssoadmin/", "aws:identitystore/")
    sso = [r for r in run.resources if r.type.startswith(sso_types)]
    ref = f"pulumi:providers:aws::{provider.name}::"  # how a provider reference names it
    assert sso and all(r.provider and ref in r.provider for r in sso), [(r.name, r.provider) for r in sso]
    others = [r for r in run.resources if r.custom and not r.type.startswith((*sso_types, "pulumi:providers"))]
    assert others and not [r.name for r in others if r.provider and ref in r.provider]
    lookups = [p for t, _, p in MOCKS.calls_with_provider if t.startswith(("aws:ssoadmin/", "aws:identitystore/"))]
    assert lookups and all(p and ref in p for p in lookups)


def test_an_identity_center_role_that_is_not_a_role_arn_is_refused(bundle, lambda_archive):
    with pytest.raises(InvalidStackConfig, match="identityCenterRoleArn 'ai-admin' is not an IAM role ARN"):
        run_program(bundle, make_config(PROJECT, lambda_archive, identity_center_role_arn="ai-admin"))



def test_the_archive_is_uploaded_once_and_every_function_runs_that_object(program, lambda_archive):
    import base64
    import hashlib

    (obj,) = program.of_type("aws:s3/bucketObjectv2:BucketObjectv2")
    assert obj.inputs["source"].path == str(lambda_archive)
    digest = hashlib.sha256(lambda_archive.read_bytes()).digest()
    assert obj.inputs["key"] == f"lambda/{digest.hex()}.zip"  # a new build is a new object
    functions = program.of_type(T_FUNCTION)
    assert len(functions) == 3
    for fn in functions:
        assert "code" not in fn.inputs  # no inline upload
        assert (fn.inputs["s3Bucket"], fn.inputs["s3Key"]) == (bucket_id(program, CODE), obj.inputs["key"])
        assert fn.inputs["sourceCodeHash"] == base64.b64encode(digest).decode()
    bucket = program.named(f"{CODE}-bucket").inputs
    assert bucket["tags"]["ai-rollout:log-class"] == "lambda_code"
    assert config_of(program, T_VERSIONING, CODE)["versioningConfiguration"] == {"status": "Enabled"}
