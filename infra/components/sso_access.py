"""``SsoAccess``: the workflow's IAM Identity Center permission set, assigned to its group.

The permission set's only grant is its inline policy: invoke the sanctioned model ARNs, only
through the bundle's guardrail when one is configured (the same statements the gateway role
gets, from ``infra.policies.model_access_statements``). Direct use is still recorded: Bedrock
model-invocation logging is account-wide, so those calls are drained through redaction into
the audit bucket like the gateway's. The instance, identity store and group come from stack
config when set, else from lookups (``ssoadmin.get_instances``, ``identitystore.get_group`` by
display name).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra import policies

__all__ = ["SsoAccess", "SsoAccessArgs"]


@dataclass(frozen=True)
class SsoAccessArgs:
    workflow_id: str
    """Names the permission set (``ai-<workflow>``, at most 32 characters)."""
    model_arns: Sequence[str]
    """The sanctioned foundation-model ARNs."""
    guardrail_arn: pulumi.Input[str] | None
    guardrail_identifier: pulumi.Input[str] | None
    account_id: pulumi.Input[str]
    """The account the group is assigned in."""
    group_name: str
    """Identity-store display name of the group (used only when ``group_id`` is None)."""
    session_duration: str
    """ISO-8601 session length."""
    instance_arn: str | None = None
    """IAM Identity Center instance; None: the account's (only) instance."""
    identity_store_id: str | None = None
    """Identity store; None: the instance's."""
    group_id: str | None = None
    """Group id; None: looked up by ``group_name``."""


class SsoAccess(pulumi.ComponentResource):
    permission_set_arn: pulumi.Output[str]
    group_id: pulumi.Output[str]
    instance_arn: pulumi.Output[str]

    def __init__(self, name: str, args: SsoAccessArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-rollout:infra:SsoAccess", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOutputOptions(parent=self)

        instances = None
        if args.instance_arn is None or (args.identity_store_id is None and args.group_id is None):
            instances = aws.ssoadmin.get_instances_output(opts=invoke)
        instance_arn = (
            pulumi.Output.from_input(args.instance_arn)
            if args.instance_arn is not None
            else instances.arns.apply(lambda arns: _only("SSO instance", arns))  # type: ignore[union-attr]
        )
        if args.group_id is not None:
            group_id: pulumi.Output[str] = pulumi.Output.from_input(args.group_id)
        else:
            store_id = (
                pulumi.Output.from_input(args.identity_store_id)
                if args.identity_store_id is not None
                else instances.identity_store_ids.apply(  # type: ignore[union-attr]
                    lambda ids: _only("identity store", ids)
                )
            )
            group_id = aws.identitystore.get_group_output(
                identity_store_id=store_id,
                # Typed args: a plain dict would reach the provider with snake_case keys.
                alternate_identifier=aws.identitystore.GetGroupAlternateIdentifierArgs(
                    unique_attribute=aws.identitystore.GetGroupAlternateIdentifierUniqueAttributeArgs(
                        attribute_path="DisplayName", attribute_value=args.group_name
                    )
                ),
                opts=invoke,
            ).group_id

        permission_set = aws.ssoadmin.PermissionSet(
            f"{name}-permission-set",
            name=f"ai-{args.workflow_id}"[:32],
            description=f"ai-rollout {args.workflow_id}: sanctioned models only"[:700],
            instance_arn=instance_arn,
            session_duration=args.session_duration,
            opts=child,
        )
        aws.ssoadmin.PermissionSetInlinePolicy(
            f"{name}-model-access",
            instance_arn=instance_arn,
            permission_set_arn=permission_set.arn,
            inline_policy=pulumi.Output.all(args.guardrail_arn, args.guardrail_identifier).apply(
                lambda g: policies.sso_model_access_policy(args.model_arns, g[0], g[1])
            ),
            opts=child,
        )
        aws.ssoadmin.AccountAssignment(
            f"{name}-assignment",
            instance_arn=instance_arn,
            permission_set_arn=permission_set.arn,
            principal_type="GROUP",
            principal_id=group_id,
            target_type="AWS_ACCOUNT",
            target_id=args.account_id,
            opts=child,
        )

        self.permission_set_arn = permission_set.arn
        self.group_id = group_id
        self.instance_arn = instance_arn
        self.register_outputs(
            {
                "permission_set_arn": self.permission_set_arn,
                "group_id": self.group_id,
                "instance_arn": self.instance_arn,
            }
        )


def _only(what: str, values: Sequence[str]) -> str:
    if len(values) != 1:
        raise ValueError(
            f"expected exactly one {what}, found {len(values)}; set it in stack config"
        )
    return values[0]
