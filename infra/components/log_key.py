"""``LogEncryptionKey``: the customer-managed KMS key every CloudWatch log group is encrypted with.

Function logs and the API's access logs carry request ids, subjects (pseudonymised in records,
as claims in access logs) and source addresses; CloudWatch's default encryption is an AWS-owned
key nobody can audit or revoke. This key rotates yearly; its policy lets CloudWatch Logs in the
stack's region use it only for this account's log groups (``kms:EncryptionContext:aws:logs:arn``).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra import policies
from infra.components._log_bucket import KMS_DELETION_WINDOW_DAYS

__all__ = ["LogEncryptionKey", "LogEncryptionKeyArgs"]


@dataclass(frozen=True)
class LogEncryptionKeyArgs:
    workflow_id: str
    account_id: pulumi.Input[str]
    """Key administrator; only its log groups may use the key."""
    region: str
    """CloudWatch Logs' regional service principal (``logs.<region>.amazonaws.com``)."""


class LogEncryptionKey(pulumi.ComponentResource):
    key_arn: pulumi.Output[str]

    def __init__(self, name: str, args: LogEncryptionKeyArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-rollout:infra:LogEncryptionKey", name, None, opts)
        key = aws.kms.Key(
            f"{name}-key",
            description=f"ai-rollout {args.workflow_id}: CloudWatch log groups",
            enable_key_rotation=True,
            deletion_window_in_days=KMS_DELETION_WINDOW_DAYS,
            policy=pulumi.Output.from_input(args.account_id).apply(
                lambda account: policies.kms_key_policy(account, logs_region=args.region)
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.key_arn = key.arn
        self.register_outputs({"key_arn": self.key_arn})
