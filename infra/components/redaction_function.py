"""``RedactionFunction``: drains raw invocation logs into the audit bucket, redacted.

Every object created in the raw bucket triggers the Lambda (``infra/handlers/redaction.py``),
which redacts every string with the project's own engine (``controller.boundaries`` +
``controller.boundaries.redactor``, the code behind ``rollout redact``), writes the record to the audit
bucket with SSE-KMS and deletes the raw object version. Failed events (after Lambda's
asynchronous retries) land in an SSE-encrypted dead-letter queue. The role may do exactly that
and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra import policies
from infra.components._function import create_function
from infra.components.lambda_code import CodeLocation

__all__ = ["RedactionFunction", "RedactionFunctionArgs"]

HANDLER = "infra.handlers.redaction.handler"


@dataclass(frozen=True)
class RedactionFunctionArgs:
    code: CodeLocation
    """The deployment archive's S3 object (``LambdaCode``), shared by every function."""
    workflow_path: str
    """The bundle's directory inside the archive; its data boundaries define the detectors."""
    raw_bucket_name: pulumi.Input[str]
    raw_bucket_arn: pulumi.Input[str]
    raw_kms_key_arn: pulumi.Input[str]
    raw_prefix: str
    """Only objects under this prefix (Bedrock's delivery prefix) trigger the function."""
    audit_bucket_name: pulumi.Input[str]
    audit_bucket_arn: pulumi.Input[str]
    audit_kms_key_arn: pulumi.Input[str]
    account_id: pulumi.Input[str]
    """S3 may invoke the function only for this account's bucket."""
    log_retention_days: int
    log_kms_key_arn: pulumi.Input[str]
    """The stack's CloudWatch Logs key (``LogEncryptionKey``)."""
    """CloudWatch retention of the function's own logs (derived from the audit posture)."""
    audit_prefix: str = "invocations/"
    """Where redacted invocation logs are written in the audit bucket."""
    memory_size: int = 1024
    timeout: int = 300


class RedactionFunction(pulumi.ComponentResource):
    function_name: pulumi.Output[str]
    function_arn: pulumi.Output[str]
    role_arn: pulumi.Output[str]
    dead_letter_queue_url: pulumi.Output[str]

    def __init__(
        self, name: str, args: RedactionFunctionArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("ai-rollout:infra:RedactionFunction", name, None, opts)

        dlq = aws.sqs.Queue(
            f"{name}-dead-letters",
            sqs_managed_sse_enabled=True,
            message_retention_seconds=14 * 24 * 3600,  # SQS maximum; holds S3 keys, not content
            opts=pulumi.ResourceOptions(parent=self),
        )
        raw_prefix = f"{args.raw_prefix.strip('/')}/"

        def policy(log_group_arn: pulumi.Output[str]) -> pulumi.Output[str]:
            return pulumi.Output.all(
                args.raw_bucket_arn,
                args.raw_kms_key_arn,
                args.audit_bucket_arn,
                args.audit_kms_key_arn,
                dlq.arn,
                log_group_arn,
            ).apply(
                lambda a: policies.redaction_role_policy(
                    raw_bucket_arn=a[0],
                    raw_prefix=raw_prefix,
                    raw_kms_key_arn=a[1],
                    audit_bucket_arn=a[2],
                    audit_prefix=args.audit_prefix,
                    audit_kms_key_arn=a[3],
                    dead_letter_queue_arn=a[4],
                    log_group_arn=a[5],
                )
            )

        fn = create_function(
            name,
            parent=self,
            code=args.code,
            handler=HANDLER,
            description="ai-rollout: redact Bedrock invocation logs into the audit bucket",
            environment={
                "ROLLOUT_WORKFLOW": args.workflow_path,
                "ROLLOUT_AUDIT_BUCKET": args.audit_bucket_name,
                "ROLLOUT_AUDIT_PREFIX": args.audit_prefix,
                "ROLLOUT_AUDIT_KMS_KEY": args.audit_kms_key_arn,
            },
            log_retention_days=args.log_retention_days,
            log_kms_key_arn=args.log_kms_key_arn,
            policy=policy,
            memory_size=args.memory_size,
            timeout=args.timeout,
            dead_letter_arn=dlq.arn,
        )
        permission = aws.lambda_.Permission(
            f"{name}-s3-invoke",
            action="lambda:InvokeFunction",
            function=fn.function.name,
            principal="s3.amazonaws.com",
            source_arn=args.raw_bucket_arn,
            source_account=args.account_id,
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws.s3.BucketNotification(
            f"{name}-trigger",
            bucket=args.raw_bucket_name,
            lambda_functions=[
                {
                    "lambda_function_arn": fn.function.arn,
                    "events": ["s3:ObjectCreated:*"],
                    "filter_prefix": raw_prefix,
                }
            ],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[permission]),
        )

        self.function_name = fn.function.name
        self.function_arn = fn.function.arn
        self.role_arn = fn.role.arn
        self.dead_letter_queue_url = dlq.url
        self.register_outputs(
            {
                "function_name": self.function_name,
                "function_arn": self.function_arn,
                "role_arn": self.role_arn,
                "dead_letter_queue_url": self.dead_letter_queue_url,
            }
        )
