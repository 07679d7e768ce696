"""``AuditLogBucket``: where redacted invocation logs and gateway request records are kept.

Versioned, Object-Locked with the audit posture's mode and days as default retention, expired
(current and noncurrent versions) after the same days, SSE-KMS with a dedicated rotating key,
public access blocked, BucketOwnerEnforced, TLS-only and KMS-only puts. Its server access logs
go to a separate access-log bucket (which the other log buckets share).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from controller.core.provisioning import BucketRules
from infra import policies
from infra.components._log_bucket import KMS_DELETION_WINDOW_DAYS, create_log_bucket, kept

__all__ = ["AuditLogBucket", "AuditLogBucketArgs"]


@dataclass(frozen=True)
class AuditLogBucketArgs:
    rules: BucketRules
    """The audit_log posture: retention days, Object Lock mode, SSE-KMS."""
    access_log_rules: BucketRules
    """The s3_access_logs rules for the separate server-access-log bucket."""
    workflow_id: str
    """Tagged on every bucket (``ai-rollout:workflow``)."""
    account_id: pulumi.Input[str]
    """The deploying account: key administrator and the only source of access logs."""
    other_logged_bucket_arns: pulumi.Input[list[str]]
    """The other buckets whose server access logs land here (``aws:SourceArn``)."""


class AuditLogBucket(pulumi.ComponentResource):
    bucket_name: pulumi.Output[str]
    bucket_arn: pulumi.Output[str]
    kms_key_arn: pulumi.Output[str]
    access_log_bucket_name: pulumi.Output[str]
    access_log_bucket_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: AuditLogBucketArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("ai-rollout:infra:AuditLogBucket", name, None, opts)

        access = create_log_bucket(
            f"{name}-access-logs",
            parent=self,
            rules=args.access_log_rules,
            workflow_id=args.workflow_id,
            kms_key_arn=None,
            access_log_bucket=None,  # never log the access-log bucket into itself
        )
        key = aws.kms.Key(
            f"{name}-key",
            description=f"ai-rollout {args.workflow_id}: audit log bucket encryption",
            enable_key_rotation=True,
            deletion_window_in_days=KMS_DELETION_WINDOW_DAYS,
            policy=pulumi.Output.from_input(args.account_id).apply(policies.kms_key_policy),
            opts=kept(args.rules, self),
        )
        audit = create_log_bucket(
            name,
            parent=self,
            rules=args.rules,
            workflow_id=args.workflow_id,
            kms_key_arn=key.arn,
            access_log_bucket=access.bucket.id,
        )
        aws.s3.BucketPolicy(
            f"{name}-policy",
            bucket=audit.bucket.id,
            policy=pulumi.Output.all(audit.bucket.arn, key.arn).apply(
                lambda a: policies.audit_bucket_policy(*a)
            ),
            opts=kept(args.rules, self, depends_on=[audit.public_access_block]),
        )

        aws.s3.BucketPolicy(
            f"{name}-access-logs-policy",
            bucket=access.bucket.id,
            policy=pulumi.Output.all(access.bucket.arn, args.account_id, audit.bucket.arn,
                                     args.other_logged_bucket_arns).apply(
                lambda a: policies.access_log_bucket_policy(a[0], a[1], [a[2], *a[3]])
            ),
            opts=kept(args.access_log_rules, self, depends_on=[access.public_access_block]),
        )

        self.bucket_name = audit.bucket.id
        self.bucket_arn = audit.bucket.arn
        self.kms_key_arn = key.arn
        self.access_log_bucket_name = access.bucket.id
        self.access_log_bucket_arn = access.bucket.arn
        self.register_outputs(
            {
                "bucket_name": self.bucket_name,
                "bucket_arn": self.bucket_arn,
                "kms_key_arn": self.kms_key_arn,
                "access_log_bucket_name": self.access_log_bucket_name,
                "access_log_bucket_arn": self.access_log_bucket_arn,
            }
        )
