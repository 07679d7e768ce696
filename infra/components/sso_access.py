"""``SsoAccess``: the workflow's IAM Identity Center permission sets, assigned to their groups.

Two permission sets, each with one inline policy and nothing else:

- ``ai-<workflow>`` (the users' group): invoke the sanctioned model ARNs, only through the
  bundle's guardrail when one is configured (the statements the gateway role gets, from
  ``infra.policies.model_access_statements``). Direct use is still recorded: Bedrock
  model-invocation logging is account-wide, so those calls are drained through redaction into
  the audit bucket like the gateway's.
- ``ai-<workflow>-ops`` (the operators): exactly what the ``rollout`` CLI needs on the flag
  store -- list it, read and conditionally write the flag document and the control plane, use
  its KMS key (``infra.policies.operator_policy``). Assigned only when an operator group is
  configured.

Identity Center resources live in the organisation's management account or its delegated
administrator, usually not the workload account: with ``identity_center_role_arn`` every
Identity Center resource and lookup goes through a separate provider that assumes that role
(in ``identity_center_region``); without it they use the stack's own provider, which works only
when the workload account is itself the Identity Center administrator. The instance, identity
store and groups come from stack config when set, else from lookups (``ssoadmin.get_instances``,
``identitystore.get_group`` by display name).
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
    """Names the permission sets (``ai-<workflow>``, ``ai-<workflow>-ops``; at most 32 characters)."""
    model_arns: Sequence[str]
    """The sanctioned foundation-model ARNs."""
    guardrail_arn: pulumi.Input[str] | None
    guardrail_identifier: pulumi.Input[str] | None
    account_id: pulumi.Input[str]
    """The account the groups are assigned in (the workload account)."""
    group_name: str
    """Identity-store display name of the users' group (used only when ``group_id`` is None)."""
    session_duration: str
    """ISO-8601 session length."""
    operator_policy: pulumi.Input[str]
    """The operators' inline policy (``infra.policies.operator_policy``)."""
    instance_arn: str | None = None
    """IAM Identity Center instance; None: the account's (only) instance."""
    identity_store_id: str | None = None
    """Identity store; None: the instance's."""
    group_id: str | None = None
    """Group id; None: looked up by ``group_name``."""
    operator_group_id: str | None = None
    """The operators' group id; None: looked up by ``operator_group_name`` if that is set."""
    operator_group_name: str | None = None
    """The operators' group display name; with neither, the ops permission set is not assigned."""
    identity_center_role_arn: str | None = None
    """Role in the Identity Center administrator account to create these resources with."""
    identity_center_region: str | None = None
    """Region of the Identity Center instance (with ``identity_center_role_arn``)."""


class SsoAccess(pulumi.ComponentResource):
    permission_set_arn: pulumi.Output[str]
    operator_permission_set_arn: pulumi.Output[str]
    group_id: pulumi.Output[str]
    instance_arn: pulumi.Output[str]

    def __init__(self, name: str, args: SsoAccessArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-rollout:infra:SsoAccess", name, None, opts)
        provider = None
        if args.identity_center_role_arn is not None:
            provider = aws.Provider(
                f"{name}-identity-center",
                region=args.identity_center_region,
                assume_roles=[aws.ProviderAssumeRoleArgs(
                    role_arn=args.identity_center_role_arn, session_name=f"ai-rollout-{args.workflow_id}"[:64])],
                opts=pulumi.ResourceOptions(parent=self),
            )  # fmt: skip
        child = pulumi.ResourceOptions(parent=self, provider=provider)
        invoke = pulumi.InvokeOutputOptions(parent=self, provider=provider)

        instances = None
        needs_store = args.identity_store_id is None and (
            args.group_id is None or (args.operator_group_id is None and args.operator_group_name is not None)
        )
        if args.instance_arn is None or needs_store:
            instances = aws.ssoadmin.get_instances_output(opts=invoke)
        instance_arn = (
            pulumi.Output.from_input(args.instance_arn)
            if args.instance_arn is not None
            else instances.arns.apply(lambda arns: _only("SSO instance", arns))  # type: ignore[union-attr]
        )
        store_id = (
            pulumi.Output.from_input(args.identity_store_id)
            if args.identity_store_id is not None or instances is None
            else instances.identity_store_ids.apply(lambda ids: _only("identity store", ids))
        )

        def group(group_id: str | None, display_name: str | None) -> pulumi.Output[str] | None:
            if group_id is not None:
                return pulumi.Output.from_input(group_id)
            if display_name is None:
                return None
            return aws.identitystore.get_group_output(
                identity_store_id=store_id,
                # Typed args: a plain dict would reach the provider with snake_case keys.
                alternate_identifier=aws.identitystore.GetGroupAlternateIdentifierArgs(
                    unique_attribute=aws.identitystore.GetGroupAlternateIdentifierUniqueAttributeArgs(
                        attribute_path="DisplayName", attribute_value=display_name
                    )
                ),
                opts=invoke,
            ).group_id

        def permission_set(suffix: str, label: str, policy: pulumi.Input[str],
                           group_id: pulumi.Output[str] | None) -> aws.ssoadmin.PermissionSet:  # fmt: skip
            ps = aws.ssoadmin.PermissionSet(
                f"{name}-{suffix}permission-set",
                name=f"ai-{args.workflow_id}{'-ops' if suffix else ''}"[:32],
                description=f"ai-rollout {args.workflow_id}: {label}"[:700],
                instance_arn=instance_arn,
                session_duration=args.session_duration,
                opts=child,
            )
            aws.ssoadmin.PermissionSetInlinePolicy(
                f"{name}-{suffix or 'model-'}access",
                instance_arn=instance_arn,
                permission_set_arn=ps.arn,
                inline_policy=policy,
                opts=child,
            )
            if group_id is not None:
                aws.ssoadmin.AccountAssignment(
                    f"{name}-{suffix}assignment",
                    instance_arn=instance_arn,
                    permission_set_arn=ps.arn,
                    principal_type="GROUP",
                    principal_id=group_id,
                    target_type="AWS_ACCOUNT",
                    target_id=args.account_id,
                    opts=child,
                )
            return ps

        group_id = group(args.group_id, args.group_name)
        assert group_id is not None  # the users' group always has a name (the bundle's cohort)
        users = permission_set(
            "", "sanctioned models only",
            pulumi.Output.all(args.guardrail_arn, args.guardrail_identifier).apply(
                lambda g: policies.sso_model_access_policy(args.model_arns, g[0], g[1])),
            group_id,
        )  # fmt: skip
        operators = permission_set(
            "ops-", "rollout CLI on the flag store and its key", args.operator_policy,
            group(args.operator_group_id, args.operator_group_name),
        )  # fmt: skip

        self.permission_set_arn = users.arn
        self.operator_permission_set_arn = operators.arn
        self.group_id = group_id
        self.instance_arn = instance_arn
        self.register_outputs(
            {
                "permission_set_arn": self.permission_set_arn,
                "operator_permission_set_arn": self.operator_permission_set_arn,
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
