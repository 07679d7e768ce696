"""The deployer's least-privilege policy, generated from the resource types the program creates.

``ACTIONS`` is the table: for every Pulumi resource type (and data source) the program uses, the
AWS API actions the pulumi-aws provider calls to create, read (refresh, preview), update and
delete it -- from each AWS resource type's documented permissions and the provider's reads
(the S3 bucket read alone calls GetBucketAcl/Cors/Website/AccelerateConfiguration/
RequestPayment/Replication...). ``deployer_policy`` turns the types a run created into two
documents: the workload account's (everything but Identity Center) and the Identity Center
administrator account's (``identityCenterRoleArn``). Resources are scoped to the names the
program gives (``<workflow id>-*``) where the service allows; actions that act on no existing
resource (``kms:CreateKey``, ``sts:GetCallerIdentity``, lookups) have ``*``, as AWS requires.

Regenerate the shipped copy (infra/deployer-policy.json and docs/deployer-permissions.md) with
``.venv-infra/bin/python -m tests.infra.deployer_export``; a test fails when they are stale or
when the program creates a type this table does not list.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["ACTIONS", "IDENTITY_CENTER_SERVICES", "deployer_policy", "dumps", "markdown_table", "missing_types"]

_TAGS = ("TagResource", "UntagResource")
_S3_BUCKET_READS = (
    "s3:GetBucketAcl", "s3:GetBucketCORS", "s3:GetBucketWebsite", "s3:GetAccelerateConfiguration",
    "s3:GetBucketRequestPayment", "s3:GetReplicationConfiguration", "s3:GetBucketLogging",
    "s3:GetLifecycleConfiguration", "s3:GetBucketObjectLockConfiguration", "s3:GetEncryptionConfiguration",
    "s3:GetBucketPolicy", "s3:GetBucketTagging", "s3:GetBucketVersioning", "s3:GetBucketLocation",
    "s3:GetBucketOwnershipControls", "s3:GetBucketPublicAccessBlock", "s3:GetBucketNotification",
    "s3:ListBucket",
)  # fmt: skip

# type token -> (scope, actions). scope names the resource pattern the actions are granted on.
ACTIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "aws:s3/bucket:Bucket": ("bucket", (
        "s3:CreateBucket", "s3:DeleteBucket", "s3:PutBucketTagging", "s3:PutBucketObjectLockConfiguration",
        *_S3_BUCKET_READS)),
    "aws:s3/bucketVersioning:BucketVersioning": ("bucket", ("s3:PutBucketVersioning", "s3:GetBucketVersioning")),
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": (
        "bucket", ("s3:PutEncryptionConfiguration", "s3:GetEncryptionConfiguration")),
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": (
        "bucket", ("s3:PutBucketPublicAccessBlock", "s3:GetBucketPublicAccessBlock")),
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": (
        "bucket", ("s3:PutBucketOwnershipControls", "s3:GetBucketOwnershipControls")),
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": (
        "bucket", ("s3:PutLifecycleConfiguration", "s3:GetLifecycleConfiguration")),
    "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration": (
        "bucket", ("s3:PutBucketObjectLockConfiguration", "s3:GetBucketObjectLockConfiguration")),
    "aws:s3/bucketLogging:BucketLogging": ("bucket", ("s3:PutBucketLogging", "s3:GetBucketLogging")),
    "aws:s3/bucketPolicy:BucketPolicy": (
        "bucket", ("s3:PutBucketPolicy", "s3:GetBucketPolicy", "s3:DeleteBucketPolicy")),
    "aws:s3/bucketNotification:BucketNotification": (
        "bucket", ("s3:PutBucketNotification", "s3:GetBucketNotification")),
    # The Lambda archive: uploaded once; Lambda reads it with the deployer's credentials.
    "aws:s3/bucketObjectv2:BucketObjectv2": ("object", (
        "s3:PutObject", "s3:GetObject", "s3:GetObjectVersion", "s3:DeleteObject", "s3:GetObjectTagging",
        "s3:PutObjectTagging", "s3:GetObjectAcl")),
    "aws:kms/key:Key": ("kms-key", (
        "kms:DescribeKey", "kms:GetKeyPolicy", "kms:PutKeyPolicy", "kms:GetKeyRotationStatus",
        "kms:EnableKeyRotation", "kms:ListResourceTags", "kms:UpdateKeyDescription", "kms:ScheduleKeyDeletion",
        *(f"kms:{a}" for a in _TAGS))),
    "aws:kms/key:Key#create": ("any", ("kms:CreateKey",)),
    "aws:iam/role:Role": ("role", (
        "iam:CreateRole", "iam:GetRole", "iam:DeleteRole", "iam:UpdateRole", "iam:UpdateAssumeRolePolicy",
        "iam:TagRole", "iam:UntagRole", "iam:ListRolePolicies", "iam:ListAttachedRolePolicies",
        "iam:ListInstanceProfilesForRole", "iam:PassRole")),
    "aws:iam/rolePolicy:RolePolicy": ("role", ("iam:PutRolePolicy", "iam:GetRolePolicy", "iam:DeleteRolePolicy")),
    "aws:cloudwatch/logGroup:LogGroup": ("log-group", (
        "logs:CreateLogGroup", "logs:DeleteLogGroup", "logs:PutRetentionPolicy", "logs:DeleteRetentionPolicy",
        "logs:AssociateKmsKey", "logs:DisassociateKmsKey", "logs:ListTagsForResource", "logs:TagResource",
        "logs:UntagResource")),
    "aws:cloudwatch/logGroup:LogGroup#describe": ("any", ("logs:DescribeLogGroups",)),
    "aws:lambda/function:Function": ("function", (
        "lambda:CreateFunction", "lambda:GetFunction", "lambda:GetFunctionConfiguration",
        "lambda:UpdateFunctionCode", "lambda:UpdateFunctionConfiguration", "lambda:DeleteFunction",
        "lambda:ListVersionsByFunction", "lambda:GetFunctionCodeSigningConfig", "lambda:GetFunctionRecursionConfig",
        "lambda:GetRuntimeManagementConfig", "lambda:ListTags", "lambda:TagResource", "lambda:UntagResource")),
    "aws:lambda/permission:Permission": ("function", (
        "lambda:AddPermission", "lambda:RemovePermission", "lambda:GetPolicy")),
    "aws:sqs/queue:Queue": ("queue", (
        "sqs:CreateQueue", "sqs:GetQueueAttributes", "sqs:SetQueueAttributes", "sqs:DeleteQueue",
        "sqs:GetQueueUrl", "sqs:ListQueueTags", "sqs:TagQueue", "sqs:UntagQueue")),
    "aws:secretsmanager/secret:Secret": ("secret", (
        "secretsmanager:CreateSecret", "secretsmanager:DescribeSecret", "secretsmanager:DeleteSecret",
        "secretsmanager:UpdateSecret", "secretsmanager:GetResourcePolicy", "secretsmanager:TagResource",
        "secretsmanager:UntagResource")),
    "aws:secretsmanager/secretVersion:SecretVersion": ("secret", (
        "secretsmanager:PutSecretValue", "secretsmanager:GetSecretValue", "secretsmanager:ListSecretVersionIds",
        "secretsmanager:UpdateSecretVersionStage")),
    "aws:secretsmanager/getRandomPassword:getRandomPassword": ("any", ("secretsmanager:GetRandomPassword",)),
    "aws:apigatewayv2/api:Api": ("apigateway", (
        "apigateway:POST", "apigateway:GET", "apigateway:PATCH", "apigateway:PUT", "apigateway:DELETE")),
    "aws:apigatewayv2/authorizer:Authorizer": ("apigateway", ("apigateway:POST", "apigateway:GET",
                                                              "apigateway:PATCH", "apigateway:DELETE")),
    "aws:apigatewayv2/integration:Integration": ("apigateway", ("apigateway:POST", "apigateway:GET",
                                                                "apigateway:PATCH", "apigateway:DELETE")),
    "aws:apigatewayv2/route:Route": ("apigateway", ("apigateway:POST", "apigateway:GET", "apigateway:PATCH",
                                                    "apigateway:DELETE")),
    "aws:apigatewayv2/stage:Stage": ("apigateway", ("apigateway:POST", "apigateway:GET", "apigateway:PATCH",
                                                    "apigateway:DELETE")),
    "aws:cloudwatch/eventRule:EventRule": ("rule", (
        "events:PutRule", "events:DescribeRule", "events:DeleteRule", "events:EnableRule", "events:DisableRule",
        "events:ListTagsForResource", "events:TagResource", "events:UntagResource")),
    "aws:cloudwatch/eventTarget:EventTarget": ("rule", (
        "events:PutTargets", "events:RemoveTargets", "events:ListTargetsByRule")),
    "aws:bedrockmodel/invocationLoggingConfiguration:InvocationLoggingConfiguration": ("any", (
        "bedrock:PutModelInvocationLoggingConfiguration", "bedrock:GetModelInvocationLoggingConfiguration",
        "bedrock:DeleteModelInvocationLoggingConfiguration")),
    "aws:index/getCallerIdentity:getCallerIdentity": ("any", ("sts:GetCallerIdentity",)),
    # IAM Identity Center: the administrator account's document.
    "aws:ssoadmin/permissionSet:PermissionSet": ("sso", (
        "sso:CreatePermissionSet", "sso:DescribePermissionSet", "sso:UpdatePermissionSet",
        "sso:DeletePermissionSet", "sso:ListTagsForResource", "sso:TagResource", "sso:UntagResource",
        "sso:ProvisionPermissionSet", "sso:DescribePermissionSetProvisioningStatus",
        "sso:ListAccountsForProvisionedPermissionSet")),
    "aws:ssoadmin/permissionSetInlinePolicy:PermissionSetInlinePolicy": ("sso", (
        "sso:PutInlinePolicyToPermissionSet", "sso:GetInlinePolicyForPermissionSet",
        "sso:DeleteInlinePolicyFromPermissionSet", "sso:ProvisionPermissionSet",
        "sso:DescribePermissionSetProvisioningStatus")),
    "aws:ssoadmin/accountAssignment:AccountAssignment": ("sso", (
        "sso:CreateAccountAssignment", "sso:DeleteAccountAssignment", "sso:ListAccountAssignments",
        "sso:DescribeAccountAssignmentCreationStatus", "sso:DescribeAccountAssignmentDeletionStatus",
        "iam:GetRole", "iam:ListRoles", "iam:CreateRole", "iam:AttachRolePolicy", "iam:PutRolePolicy",
        "iam:GetSAMLProvider", "iam:CreateSAMLProvider")),
    "aws:ssoadmin/getInstances:getInstances": ("any", ("sso:ListInstances",)),
    "aws:identitystore/getGroup:getGroup": ("any", ("identitystore:GetGroupId", "identitystore:DescribeGroup",
                                                    "identitystore:ListGroups")),
}  # fmt: skip

IDENTITY_CENTER_SERVICES = ("aws:ssoadmin/", "aws:identitystore/")
# Types that create nothing in AWS (Pulumi providers, components) need no action.
_NO_API = ("pulumi:providers:", "ai-rollout:infra:")


def _scope(scope: str, workflow_id: str, account: str, region: str) -> list[str]:
    name = f"{workflow_id}-*"
    return {
        "bucket": [f"arn:aws:s3:::{name}"],
        "object": [f"arn:aws:s3:::{name}/lambda/*"],
        "kms-key": [f"arn:aws:kms:{region}:{account}:key/*"],
        "role": [f"arn:aws:iam::{account}:role/{name}"],
        "log-group": [f"arn:aws:logs:{region}:{account}:log-group:{name}"],
        "function": [f"arn:aws:lambda:{region}:{account}:function:{name}"],
        "queue": [f"arn:aws:sqs:{region}:{account}:{name}"],
        "secret": [f"arn:aws:secretsmanager:{region}:{account}:secret:{name}"],
        "apigateway": [f"arn:aws:apigateway:{region}::/apis", f"arn:aws:apigateway:{region}::/apis/*",
                       f"arn:aws:apigateway:{region}::/tags/*"],  # fmt: skip
        "rule": [f"arn:aws:events:{region}:{account}:rule/{name}"],
        "sso": ["arn:aws:sso:::instance/*", "arn:aws:sso:::permissionSet/*", "arn:aws:sso:::account/*",
                "arn:aws:iam::*:role/aws-reserved/sso.amazonaws.com/*",
                "arn:aws:iam::*:saml-provider/AWSSSO_*"],  # fmt: skip
        "any": ["*"],
    }[scope]


def _keys(types: Iterable[str]) -> list[str]:
    keys = []
    for t in sorted(set(types)):
        keys += [k for k in ACTIONS if k == t or k.startswith(f"{t}#")]
    return keys


def missing_types(types: Iterable[str]) -> list[str]:
    """Types the program created that the table does not cover (so the policy would be short)."""
    return sorted({t for t in types if not t.startswith(_NO_API) and t not in ACTIONS})


def deployer_policy(types: Iterable[str], *, workflow_id: str, account: str, region: str) -> dict[str, Any]:
    """``{"workload": <policy>, "identity_center": <policy>}`` for the resource types created."""
    docs: dict[str, list[dict[str, Any]]] = {"workload": [], "identity_center": []}
    grouped: dict[tuple[str, str], set[str]] = {}
    for key in _keys(types):
        scope, actions = ACTIONS[key]
        where = "identity_center" if key.startswith(IDENTITY_CENTER_SERVICES) else "workload"
        grouped.setdefault((where, scope), set()).update(actions)
    for (where, scope), actions in sorted(grouped.items()):
        docs[where].append({
            "Sid": "".join(p.capitalize() for p in scope.split("-")),
            "Effect": "Allow",
            "Action": sorted(actions),
            "Resource": _scope(scope, workflow_id, account, region),
        })  # fmt: skip
    return {k: {"Version": "2012-10-17", "Statement": v} for k, v in docs.items()}


def markdown_table(types: Iterable[str]) -> str:
    """The table of actions per resource type, as docs/deployer-permissions.md shows it."""
    rows = ["| Resource type | Scope | Actions |", "|---|---|---|"]
    for key in _keys(types):
        scope, actions = ACTIONS[key]
        rows.append(f"| `{key}` | {scope} | {', '.join(f'`{a}`' for a in actions)} |")
    return "\n".join(rows) + "\n"


def dumps(doc: Mapping[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"
