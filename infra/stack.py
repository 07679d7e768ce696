"""Compose the components for one workflow bundle; return the outputs an auditor needs.

``build`` is the whole program minus reading config and exporting, so tests can run it under
Pulumi mocks with any bundle. Every retention period, Object Lock mode, model ARN, IdP issuer
and audience, and SSO group comes from ``bundle.workflow`` (through ``controller.core.provisioning``); stack
config contributes only deployment facts (region, archive path, SSO instance, throttling).
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws

from controller.bundle.models import Bundle
from controller.core import provisioning as derive
from controller.core.provisioning import LogClass
from infra import config as stack_config
from infra import policies
from infra.components import (
    AuditLogBucket,
    AuditLogBucketArgs,
    FlagStore,
    FlagStoreArgs,
    LambdaCode,
    LambdaCodeArgs,
    LogEncryptionKey,
    LogEncryptionKeyArgs,
    ModelGateway,
    ModelGatewayArgs,
    RawInvocationLogs,
    RawInvocationLogsArgs,
    RedactionFunction,
    RedactionFunctionArgs,
    ScheduledReconcile,
    ScheduledReconcileArgs,
    SsoAccess,
    SsoAccessArgs,
)

__all__ = ["build"]


def build(bundle: Bundle, config: stack_config.StackConfig) -> dict[str, Any]:
    """Create every resource for ``bundle``; return the stack outputs (not yet exported)."""
    wf = bundle.workflow
    stack_config.check(config, wf)
    rules = derive.bucket_rules(wf)
    model_arns = derive.model_arns(wf)
    region = config.region
    # The only place numbers meet CloudWatch: the audit posture, rounded up to an allowed value.
    log_days = derive.cloudwatch_retention_days(rules[LogClass.AUDIT_LOG].days)
    # API access logs identify callers: kept per the transient posture, not the audit one.
    access_log_days = derive.cloudwatch_retention_days(rules[LogClass.RAW_INVOCATION_LOGS].days)

    account_id = aws.get_caller_identity_output().account_id
    guardrail_arn = account_id.apply(lambda a: derive.guardrail_arn(wf, a))
    guardrail_identifier = account_id.apply(lambda a: derive.guardrail_identifier(wf, a))
    workflow_path = config.workflow_in_archive
    prefix = wf.id

    log_key = LogEncryptionKey(
        f"{prefix}-log-key", LogEncryptionKeyArgs(workflow_id=wf.id, account_id=account_id, region=region)
    )
    # The access-log bucket admits logs from the raw and flag-store buckets, created after it.
    logged_bucket_arns, resolve_logged_bucket_arns = pulumi.deferred_output()
    audit = AuditLogBucket(
        f"{prefix}-audit-log",
        AuditLogBucketArgs(
            rules=rules[LogClass.AUDIT_LOG],
            access_log_rules=rules[LogClass.S3_ACCESS_LOGS],
            workflow_id=wf.id,
            account_id=account_id,
            other_logged_bucket_arns=logged_bucket_arns,
        ),
    )
    code = LambdaCode(
        f"{prefix}-lambda-code",
        LambdaCodeArgs(rules=rules[LogClass.LAMBDA_CODE], workflow_id=wf.id, archive_path=config.archive_path,
                       access_log_bucket=audit.access_log_bucket_name),
    )  # fmt: skip
    # The raw bucket's policy names the redaction role, whose policy names the raw bucket:
    # resolve the role ARN once the function component exists (no resource cycle, just order).
    reader_role_arn, resolve_reader_role_arn = pulumi.deferred_output()
    raw = RawInvocationLogs(
        f"{prefix}-raw-invocation-logs",
        RawInvocationLogsArgs(
            rules=rules[LogClass.RAW_INVOCATION_LOGS],
            workflow_id=wf.id,
            account_id=account_id,
            region=region,
            reader_role_arn=reader_role_arn,
            access_log_bucket=audit.access_log_bucket_name,
            manage_invocation_logging=config.bedrock_invocation_logging == "manage",
        ),
    )
    redaction = RedactionFunction(
        f"{prefix}-redaction",
        RedactionFunctionArgs(
            code=code.location,
            workflow_path=workflow_path,
            raw_bucket_name=raw.bucket_name,
            raw_bucket_arn=raw.bucket_arn,
            raw_kms_key_arn=raw.kms_key_arn,
            raw_prefix=raw.log_prefix,
            audit_bucket_name=audit.bucket_name,
            audit_bucket_arn=audit.bucket_arn,
            audit_kms_key_arn=audit.kms_key_arn,
            account_id=account_id,
            log_retention_days=log_days,
            log_kms_key_arn=log_key.key_arn,
        ),
    )
    resolve_reader_role_arn(redaction.role_arn)

    flags = FlagStore(
        f"{prefix}-flag-store",
        FlagStoreArgs(
            rules=rules[LogClass.CONTROL_PLANE],
            workflow_id=wf.id,
            account_id=account_id,
            access_log_bucket=audit.access_log_bucket_name,
        ),
    )
    resolve_logged_bucket_arns(pulumi.Output.all(raw.bucket_arn, flags.bucket_arn, code.bucket_arn))
    gateway = ModelGateway(
        f"{prefix}-gateway",
        ModelGatewayArgs(
            code=code.location,
            workflow_id=wf.id,
            workflow_path=workflow_path,
            issuer=wf.sso.idp.issuer,
            audience=wf.sso.idp.audience,
            model_arns=model_arns,
            guardrail_arn=guardrail_arn,
            guardrail_identifier=guardrail_identifier,
            flag_store_name=flags.bucket_name,
            flag_store_arn=flags.bucket_arn,
            flag_kms_key_arn=flags.kms_key_arn,
            flags_key=flags.flags_key,
            store_prefix=flags.store_prefix,
            audit_bucket_name=audit.bucket_name,
            audit_bucket_arn=audit.bucket_arn,
            audit_kms_key_arn=audit.kms_key_arn,
            log_retention_days=log_days,
            log_kms_key_arn=log_key.key_arn,
            access_log_retention_days=access_log_days,
            throttling_burst_limit=config.gateway_throttle_burst,
            throttling_rate_limit=config.gateway_throttle_rate,
        ),
    )
    operator_policy = pulumi.Output.all(flags.bucket_arn, flags.kms_key_arn).apply(
        lambda a: policies.operator_policy(flag_store_arn=a[0], flags_key=flags.flags_key,
                                           store_prefix=flags.store_prefix, flag_kms_key_arn=a[1])
    )  # fmt: skip
    sso = SsoAccess(
        f"{prefix}-sso",
        SsoAccessArgs(
            workflow_id=wf.id,
            model_arns=model_arns,
            guardrail_arn=guardrail_arn,
            guardrail_identifier=guardrail_identifier,
            account_id=config.sso_account_id or account_id,
            group_name=config.group_name(wf),
            session_duration=config.sso_session_duration,
            instance_arn=config.sso_instance_arn,
            identity_store_id=config.identity_store_id,
            group_id=config.sso_group_id,
            operator_policy=operator_policy,
            operator_group_id=config.operator_group_id,
            operator_group_name=config.operator_group_name,
            identity_center_role_arn=config.identity_center_role_arn,
            identity_center_region=config.identity_center_region or region,
        ),
    )
    reconcile = ScheduledReconcile(
        f"{prefix}-reconcile",
        ScheduledReconcileArgs(
            code=code.location,
            workflow_id=wf.id,
            workflow_path=workflow_path,
            schedule_expression=config.reconcile_schedule,
            flag_store_name=flags.bucket_name,
            flag_store_arn=flags.bucket_arn,
            flag_kms_key_arn=flags.kms_key_arn,
            flags_key=flags.flags_key,
            store_prefix=flags.store_prefix,
            log_retention_days=log_days,
            log_kms_key_arn=log_key.key_arn,
        ),
    )

    retention = derive.retention_outputs(wf)
    retention["cloudwatch_logs"] = {
        "posture": rules[LogClass.AUDIT_LOG].posture,
        "source": rules[LogClass.AUDIT_LOG].source,
        "posture_days": rules[LogClass.AUDIT_LOG].days,
        "days": log_days,
        "note": "smallest CloudWatch Logs retention >= the posture's days (0 = never expire)",
        "api_access_logs_days": access_log_days,
        "api_access_logs_posture": rules[LogClass.RAW_INVOCATION_LOGS].posture,
        "kms_key_arn": log_key.key_arn,
    }
    return {
        "workflow": {"id": wf.id, "bundle": config.workflow, "region": region},
        "retention": retention,
        "buckets": {
            "audit_log": {"name": audit.bucket_name, "arn": audit.bucket_arn},
            "s3_access_logs": {
                "name": audit.access_log_bucket_name,
                "arn": audit.access_log_bucket_arn,
            },
            "raw_invocation_logs": {"name": raw.bucket_name, "arn": raw.bucket_arn},
            "control_plane": {"name": flags.bucket_name, "arn": flags.bucket_arn},
            "lambda_code": {"name": code.bucket_name, "arn": code.bucket_arn},
        },
        "kms_keys": {
            "audit_log": audit.kms_key_arn,
            "raw_invocation_logs": raw.kms_key_arn,
            "control_plane": flags.kms_key_arn,
        },
        "object_lock": {
            cls.value: r.object_lock_mode for cls, r in rules.items() if r.object_lock_mode
        },
        "flag_store": {
            "flags_uri": flags.flags_uri,
            "store_uri": flags.store_uri,
            "kms_key_arn": flags.kms_key_arn,
        },
        "gateway": {
            "api_endpoint": gateway.api_endpoint,
            "ask_url": gateway.ask_url,
            "authorizer_issuer": wf.sso.idp.issuer,
            "authorizer_audience": wf.sso.idp.audience,
            "function_name": gateway.function_name,
            "role_arn": gateway.role_arn,
            "access_log_group": gateway.access_log_group,
            "subject_key_secret_arn": gateway.subject_key_secret_arn,
        },
        "models": {
            "sanctioned_arns": list(model_arns),
            "guardrail": guardrail_identifier,
            "invocation_logging": config.bedrock_invocation_logging,
        },
        "sso": {
            "permission_set_arn": sso.permission_set_arn,
            "operator_permission_set_arn": sso.operator_permission_set_arn,
            "identity_center_role_arn": config.identity_center_role_arn,
            "group_id": sso.group_id,
            "group_name": config.group_name(wf) if config.sso_group_id is None else None,
            "instance_arn": sso.instance_arn,
        },
        "redaction": {
            "function_name": redaction.function_name,
            "role_arn": redaction.role_arn,
            "dead_letter_queue_url": redaction.dead_letter_queue_url,
        },
        "reconcile": {
            "function_name": reconcile.function_name,
            "rule_name": reconcile.rule_name,
            "schedule": reconcile.schedule_expression,
        },
    }
