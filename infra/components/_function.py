"""The Lambda shape every handler shares (a helper, not a component of its own).

A function gets its own role (assumable by Lambda only), its own log group (encrypted with the
stack's log key) with a retention derived from the bundle, and exactly one inline policy built by the caller from
``infra.policies`` -- never a managed policy, so the policy pack can read every grant.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra import policies
from infra.components.lambda_code import CodeLocation

__all__ = ["LambdaFunction", "create_function"]

RUNTIME = "python3.11"
ARCHITECTURE = "x86_64"  # matches the manylinux2014_x86_64 wheels infra.build_archive installs


@dataclass(frozen=True)
class LambdaFunction:
    role: aws.iam.Role
    role_policy: aws.iam.RolePolicy
    log_group: aws.cloudwatch.LogGroup
    function: aws.lambda_.Function


def create_function(
    name: str,
    *,
    parent: pulumi.Resource,
    code: CodeLocation,
    handler: str,
    description: str,
    environment: Mapping[str, pulumi.Input[str]],
    log_retention_days: int,
    log_kms_key_arn: pulumi.Input[str],
    policy: Callable[[pulumi.Output[str]], pulumi.Input[str]],
    memory_size: int = 512,
    timeout: int = 60,
    dead_letter_arn: pulumi.Input[str] | None = None,
) -> LambdaFunction:
    """``policy`` maps the log group's ARN to the role's one inline policy document."""
    opts = pulumi.ResourceOptions(parent=parent)
    role = aws.iam.Role(
        f"{name}-role",
        description=description,
        assume_role_policy=policies.lambda_assume_role_policy(),
        opts=opts,
    )
    log_group = aws.cloudwatch.LogGroup(
        f"{name}-logs", retention_in_days=log_retention_days, kms_key_id=log_kms_key_arn, opts=opts
    )
    role_policy = aws.iam.RolePolicy(
        f"{name}-policy", role=role.id, policy=policy(log_group.arn), opts=opts
    )
    function = aws.lambda_.Function(
        f"{name}-function",
        description=description,
        runtime=RUNTIME,
        architectures=[ARCHITECTURE],
        handler=handler,
        s3_bucket=code.bucket,
        s3_key=code.key,
        source_code_hash=code.source_code_hash,
        role=role.arn,
        memory_size=memory_size,
        timeout=timeout,
        environment={"variables": dict(environment)},
        logging_config={"log_format": "JSON", "log_group": log_group.name},
        dead_letter_config={"target_arn": dead_letter_arn} if dead_letter_arn is not None else None,
        # The role must hold its permissions before the function can first run.
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[role_policy, log_group, code.uploaded]),
    )
    return LambdaFunction(role, role_policy, log_group, function)
