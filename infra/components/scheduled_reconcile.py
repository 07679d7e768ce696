"""``ScheduledReconcile``: auto-rollback without a person.

An EventBridge rule runs the reconcile Lambda (``infra/handlers/reconcile.py`` ->
``controller.service.rollout.RolloutService.reconcile``) on a schedule from stack config (every 15
minutes by default): a live release whose latest eval failed is rolled back (audited), and the
re-rendered flag document is published to the flag store (never releasing a kill switch). The
role may read and conditionally rewrite the control plane's objects in the flag store and
nothing else; it cannot invoke models.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra import policies
from infra.components._function import create_function
from infra.components.lambda_code import CodeLocation

__all__ = ["ScheduledReconcile", "ScheduledReconcileArgs"]

HANDLER = "infra.handlers.reconcile.handler"


@dataclass(frozen=True)
class ScheduledReconcileArgs:
    code: CodeLocation
    """The deployment archive's S3 object (``LambdaCode``), shared by every function."""
    workflow_id: str
    workflow_path: str
    """The bundle's directory inside the archive."""
    schedule_expression: str
    """EventBridge schedule, e.g. ``rate(15 minutes)`` (stack config ``reconcileSchedule``)."""
    flag_store_name: pulumi.Input[str]
    flag_store_arn: pulumi.Input[str]
    flag_kms_key_arn: pulumi.Input[str]
    flags_key: str
    store_prefix: str
    log_retention_days: int
    log_kms_key_arn: pulumi.Input[str]
    """The stack's CloudWatch Logs key (``LogEncryptionKey``)."""
    """CloudWatch retention of the function's logs (from the audit posture)."""
    memory_size: int = 512
    timeout: int = 120


class ScheduledReconcile(pulumi.ComponentResource):
    function_name: pulumi.Output[str]
    rule_name: pulumi.Output[str]
    schedule_expression: str

    def __init__(
        self, name: str, args: ScheduledReconcileArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("ai-rollout:infra:ScheduledReconcile", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        def policy(log_group_arn: pulumi.Output[str]) -> pulumi.Output[str]:
            return pulumi.Output.all(args.flag_store_arn, args.flag_kms_key_arn, log_group_arn).apply(
                lambda a: policies.reconcile_role_policy(
                    flag_store_arn=a[0],
                    flags_key=args.flags_key,
                    store_prefix=args.store_prefix,
                    flag_kms_key_arn=a[1],
                    log_group_arn=a[2],
                )
            )

        fn = create_function(
            name,
            parent=self,
            code=args.code,
            handler=HANDLER,
            description=f"ai-rollout {args.workflow_id}: scheduled reconcile (auto-rollback)",
            environment={
                "ROLLOUT_WORKFLOW": args.workflow_path,
                "ROLLOUT_STORE": pulumi.Output.concat(
                    "s3://", args.flag_store_name, "/", args.store_prefix
                ),
                "ROLLOUT_STORE_KMS_KEY": args.flag_kms_key_arn,
                "ROLLOUT_FLAGS_BUCKET": args.flag_store_name,
                "ROLLOUT_FLAGS_KEY": args.flags_key,
            },
            log_retention_days=args.log_retention_days,
            log_kms_key_arn=args.log_kms_key_arn,
            policy=policy,
            memory_size=args.memory_size,
            timeout=args.timeout,
        )
        rule = aws.cloudwatch.EventRule(
            f"{name}-schedule",
            description=f"ai-rollout {args.workflow_id}: reconcile {args.schedule_expression}",
            schedule_expression=args.schedule_expression,
            opts=child,
        )
        permission = aws.lambda_.Permission(
            f"{name}-events-invoke",
            action="lambda:InvokeFunction",
            function=fn.function.name,
            principal="events.amazonaws.com",
            source_arn=rule.arn,
            opts=child,
        )
        aws.cloudwatch.EventTarget(
            f"{name}-target",
            rule=rule.name,
            arn=fn.function.arn,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[permission]),
        )

        self.function_name = fn.function.name
        self.rule_name = rule.name
        self.schedule_expression = args.schedule_expression
        self.register_outputs({"function_name": self.function_name, "rule_name": self.rule_name})
