"""``RawInvocationLogs``: the short-lived bucket Bedrock writes unredacted invocation logs to.

Bedrock model-invocation logging (account- and region-wide, so it also records direct model
use outside the gateway) delivers text to this bucket. The redaction function drains every
object as it lands; the raw_invocation_logs posture's expiry is the backstop. Only the
redaction function's role may read objects (bucket policy), and only Bedrock, from this account
and region, may write them. SSE-KMS with its own key, which Bedrock may use to encrypt.
It is not Object-Locked: draining means deleting.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from controller.core.provisioning import BucketRules
from infra import policies
from infra.components._log_bucket import KMS_DELETION_WINDOW_DAYS, create_log_bucket

__all__ = ["RawInvocationLogs", "RawInvocationLogsArgs"]


@dataclass(frozen=True)
class RawInvocationLogsArgs:
    rules: BucketRules
    """The raw_invocation_logs posture: short expiry, SSE-KMS, no Object Lock."""
    workflow_id: str
    """Tagged on the bucket (``ai-rollout:workflow``)."""
    account_id: pulumi.Input[str]
    """The deploying account (Bedrock's source account)."""
    region: str
    """The bundle's Bedrock region: invocation logging is configured per region."""
    reader_role_arn: pulumi.Input[str]
    """The only principal that may read raw objects: the redaction function's role."""
    access_log_bucket: pulumi.Input[str]
    """Where this bucket's S3 server access logs go."""
    manage_invocation_logging: bool = True
    """Create the account/region's Bedrock invocation logging configuration (stack config
    ``bedrockInvocationLogging``). There is one per region: creating it replaces any other."""
    log_prefix: str = "bedrock"
    """Key prefix Bedrock writes under (it appends ``/AWSLogs/<account>/...``)."""


class RawInvocationLogs(pulumi.ComponentResource):
    bucket_name: pulumi.Output[str]
    bucket_arn: pulumi.Output[str]
    kms_key_arn: pulumi.Output[str]
    log_prefix: str

    def __init__(
        self, name: str, args: RawInvocationLogsArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("ai-rollout:infra:RawInvocationLogs", name, None, opts)

        key = aws.kms.Key(
            f"{name}-key",
            description=f"ai-rollout {args.workflow_id}: raw Bedrock invocation logs",
            enable_key_rotation=True,
            deletion_window_in_days=KMS_DELETION_WINDOW_DAYS,
            policy=pulumi.Output.from_input(args.account_id).apply(
                lambda account: policies.kms_key_policy(account, bedrock_region=args.region)
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        raw = create_log_bucket(
            name,
            parent=self,
            rules=args.rules,
            workflow_id=args.workflow_id,
            kms_key_arn=key.arn,
            access_log_bucket=args.access_log_bucket,
        )
        bucket_policy = aws.s3.BucketPolicy(
            f"{name}-policy",
            bucket=raw.bucket.id,
            policy=pulumi.Output.all(
                raw.bucket.arn, key.arn, args.reader_role_arn, args.account_id
            ).apply(
                lambda a: policies.raw_bucket_policy(
                    a[0], a[1], a[2], a[3], args.region, args.log_prefix
                )
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[raw.public_access_block]),
        )
        # Bedrock checks that it can write (bucket policy + key) when logging is configured.
        if args.manage_invocation_logging:
            self._invocation_logging(name, raw.bucket.id, args, depends_on=[bucket_policy, key])

        self.bucket_name = raw.bucket.id
        self.bucket_arn = raw.bucket.arn
        self.kms_key_arn = key.arn
        self.log_prefix = args.log_prefix
        self.register_outputs(
            {
                "bucket_name": self.bucket_name,
                "bucket_arn": self.bucket_arn,
                "kms_key_arn": self.kms_key_arn,
            }
        )

    def _invocation_logging(
        self, name: str, bucket: pulumi.Input[str], args: RawInvocationLogsArgs, depends_on: list
    ) -> None:
        aws.bedrockmodel.InvocationLoggingConfiguration(
            f"{name}-invocation-logging",
            logging_config={
                "text_data_delivery_enabled": True,
                "image_data_delivery_enabled": False,
                "embedding_data_delivery_enabled": False,
                "video_data_delivery_enabled": False,
                "s3_config": {"bucket_name": bucket, "key_prefix": args.log_prefix},
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on),
        )
