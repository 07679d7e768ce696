"""Every IAM, bucket and key policy document the program attaches, as pure functions.

Each builder takes plain strings (ARNs, names, prefixes) and returns the JSON text AWS
receives, so a reviewer can read -- and the tests can assert -- exactly what is granted without
running Pulumi. Components call them inside ``Output.all(...).apply(...)`` (documents only; no
resource is ever created inside an ``apply``).

Least privilege, checked by ``wildcard_problems`` (shared with the policy pack): no action
contains ``*``; no resource is ``*`` or has a wildcard before its final path segment. The
only ``*`` allowed is a trailing one under one named resource: the objects under one prefix of
one bucket, the log streams of one log group.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = [
    "access_log_bucket_policy",
    "audit_bucket_policy",
    "code_bucket_policy",
    "flag_store_bucket_policy",
    "gateway_role_policy",
    "is_wildcard_resource",
    "kms_key_policy",
    "lambda_assume_role_policy",
    "operator_policy",
    "model_access_statements",
    "raw_bucket_policy",
    "reconcile_role_policy",
    "redaction_role_policy",
    "sso_model_access_policy",
    "statements_of",
    "wildcard_problems",
]

VERSION = "2012-10-17"
BEDROCK_INVOKE = "bedrock:InvokeModel"  # also authorises Converse (there is no bedrock:Converse)
BEDROCK_APPLY_GUARDRAIL = "bedrock:ApplyGuardrail"


def _document(statements: Iterable[Mapping[str, Any]]) -> str:
    return json.dumps({"Version": VERSION, "Statement": list(statements)}, indent=2)


def _statement(
    sid: str,
    actions: Sequence[str],
    resources: Sequence[str],
    *,
    effect: str = "Allow",
    principal: Any = None,
    condition: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {"Sid": sid, "Effect": effect}
    if principal is not None:
        out["Principal"] = principal
    out["Action"] = list(actions)
    out["Resource"] = list(resources)
    if condition:
        out["Condition"] = dict(condition)
    return out


def _objects(bucket_arn: str, prefix: str = "") -> str:
    return f"{bucket_arn}/{prefix}*"


# --- bucket policies -------------------------------------------------------------------------


def _tls_only(bucket_arn: str) -> dict[str, Any]:
    return _statement(
        "DenyInsecureTransport",
        ["s3:*"],
        [bucket_arn, _objects(bucket_arn)],
        effect="Deny",
        principal="*",
        condition={"Bool": {"aws:SecureTransport": "false"}},
    )


def _kms_only_puts(bucket_arn: str, kms_key_arn: str) -> list[dict[str, Any]]:
    """Deny every put that would not end up SSE-KMS with this bucket's key.

    A put without encryption headers gets the bucket's default encryption (this key), so
    writers that send none (Bedrock's log delivery, the ``rollout`` CLI's S3 store) are fine.
    A put that *asks* for anything else is refused: another algorithm, ``aws:kms`` without
    naming a key (S3 would use the AWS-managed aws/s3 key), another key, or SSE-C. Conditions
    inside one statement are ANDed, so "present and wrong" is one statement each.
    """
    objects = [_objects(bucket_arn)]
    sse = "s3:x-amz-server-side-encryption"
    key_id = "s3:x-amz-server-side-encryption-aws-kms-key-id"
    customer = "s3:x-amz-server-side-encryption-customer-algorithm"

    def deny(sid: str, condition: Mapping[str, Any]) -> dict[str, Any]:
        return _statement(sid, ["s3:PutObject"], objects, effect="Deny", principal="*",
                          condition=condition)  # fmt: skip

    return [
        deny("DenyNonKmsPuts", {"Null": {sse: "false"}, "StringNotEquals": {sse: "aws:kms"}}),
        deny("DenyKmsPutsWithoutBucketKey", {"Null": {sse: "false", key_id: "true"}}),
        deny("DenyPutsWithOtherKeys",
             {"Null": {key_id: "false"}, "StringNotEquals": {key_id: kms_key_arn}}),
        deny("DenyCustomerProvidedKeys", {"Null": {customer: "false"}}),
    ]  # fmt: skip


def audit_bucket_policy(bucket_arn: str, kms_key_arn: str) -> str:
    """TLS only; every object is SSE-KMS with the audit key; no GOVERNANCE bypass."""
    return _document([_tls_only(bucket_arn), *_kms_only_puts(bucket_arn, kms_key_arn),
                      _deny_governance_bypass(bucket_arn)])  # fmt: skip


def code_bucket_policy(bucket_arn: str) -> str:
    """TLS only: the deployer writes archives, Lambda reads them with the deployer's credentials."""
    return _document([_tls_only(bucket_arn)])


def flag_store_bucket_policy(bucket_arn: str, kms_key_arn: str) -> str:
    """TLS only; every object is SSE-KMS with the flag-store key; no GOVERNANCE bypass."""
    return _document([_tls_only(bucket_arn), *_kms_only_puts(bucket_arn, kms_key_arn),
                      _deny_governance_bypass(bucket_arn)])  # fmt: skip


def raw_bucket_policy(
    bucket_arn: str,
    kms_key_arn: str,
    reader_role_arn: str,
    account_id: str,
    region: str,
    log_prefix: str,
) -> str:
    """TLS only; Bedrock may write its invocation logs; only the redaction role may read them."""
    bedrock_objects = f"{bucket_arn}/{log_prefix}/AWSLogs/{account_id}/BedrockModelInvocationLogs/*"
    return _document(
        [
            _tls_only(bucket_arn),
            *_kms_only_puts(bucket_arn, kms_key_arn),
            _statement(
                "DenyReadsExceptRedaction",
                ["s3:GetObject", "s3:GetObjectVersion"],
                [_objects(bucket_arn)],
                effect="Deny",
                principal="*",
                condition={"ArnNotEquals": {"aws:PrincipalArn": reader_role_arn}},
            ),
            _statement(
                "AllowBedrockInvocationLogs",
                ["s3:PutObject"],
                [bedrock_objects],
                principal={"Service": "bedrock.amazonaws.com"},
                condition={
                    "StringEquals": {"aws:SourceAccount": account_id},
                    "ArnLike": {"aws:SourceArn": f"arn:aws:bedrock:{region}:{account_id}:*"},
                },
            ),
        ]
    )


def access_log_bucket_policy(bucket_arn: str, account_id: str, source_bucket_arns: Sequence[str]) -> str:
    """TLS only; S3's log delivery may write access logs for the named buckets of this account
    only (``aws:SourceArn``: no other bucket can be pointed at this one to fill it)."""
    return _document(
        [
            _tls_only(bucket_arn),
            _statement(
                "AllowS3ServerAccessLogs",
                ["s3:PutObject"],
                [_objects(bucket_arn)],
                principal={"Service": "logging.s3.amazonaws.com"},
                condition={
                    "StringEquals": {"aws:SourceAccount": account_id},
                    "ArnEquals": {"aws:SourceArn": sorted(source_bucket_arns)},
                },
            ),
        ]
    )


def _deny_governance_bypass(bucket_arn: str) -> dict[str, Any]:
    """Nobody may bypass GOVERNANCE retention on this bucket's objects: deleting a locked
    record first means changing this bucket policy, a separate CloudTrail-recorded act."""
    return _statement(
        "DenyGovernanceBypass",
        ["s3:BypassGovernanceRetention"],
        [_objects(bucket_arn)],
        effect="Deny",
        principal="*",
    )


# --- KMS key policies ------------------------------------------------------------------------


def kms_key_policy(
    account_id: str, *, bedrock_region: str | None = None, logs_region: str | None = None
) -> str:
    """The account administers the key (IAM policies grant use); optionally Bedrock may encrypt.

    ``kms:*`` on ``*`` for the account root is AWS's default key policy: it delegates to IAM,
    where the function roles get only the key operations they need on this key's ARN.
    """
    statements = [
        _statement(
            "AccountAdministersKeyThroughIam",
            ["kms:*"],
            ["*"],
            principal={"AWS": f"arn:aws:iam::{account_id}:root"},
        )
    ]
    if bedrock_region:
        statements.append(
            _statement(
                "AllowBedrockInvocationLogEncryption",
                ["kms:GenerateDataKey"],
                ["*"],
                principal={"Service": "bedrock.amazonaws.com"},
                condition={
                    "StringEquals": {"aws:SourceAccount": account_id},
                    "ArnLike": {"aws:SourceArn": f"arn:aws:bedrock:{bedrock_region}:{account_id}:*"},
                },
            )
        )
    if logs_region:
        statements.append(
            _statement(
                "AllowCloudWatchLogsEncryption",
                ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
                ["*"],
                principal={"Service": f"logs.{logs_region}.amazonaws.com"},
                condition={"ArnLike": {
                    "kms:EncryptionContext:aws:logs:arn": f"arn:aws:logs:{logs_region}:{account_id}:log-group:*"
                }},
            )  # fmt: skip
        )
    return _document(statements)


# --- function roles --------------------------------------------------------------------------


def lambda_assume_role_policy() -> str:
    return _document(
        [
            {
                "Sid": "LambdaAssumesRole",
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ]
    )


def _logs(log_group_arn: str) -> dict[str, Any]:
    return _statement(
        "WriteOwnLogs",
        ["logs:CreateLogStream", "logs:PutLogEvents"],
        [f"{log_group_arn}:log-stream:*"],
    )


def model_access_statements(
    model_arns: Sequence[str],
    guardrail_arn: str | None = None,
    guardrail_identifier: str | None = None,
) -> list[dict[str, Any]]:
    """Invoke only the sanctioned models; with a guardrail, only through that guardrail version.

    ``bedrock:InvokeModel`` authorises both InvokeModel and Converse. The explicit Deny keeps
    the guardrail mandatory even if another policy someday allows the models.
    """
    models = list(model_arns)
    if not models:
        raise ValueError("at least one sanctioned model ARN is required")
    if (guardrail_arn is None) != (guardrail_identifier is None):
        raise ValueError("guardrail_arn and guardrail_identifier go together")
    if guardrail_identifier is None:
        return [_statement("InvokeSanctionedModels", [BEDROCK_INVOKE], models)]
    key = "bedrock:GuardrailIdentifier"
    return [
        _statement(
            "InvokeSanctionedModelsThroughGuardrail",
            [BEDROCK_INVOKE],
            models,
            condition={"StringEquals": {key: guardrail_identifier}},
        ),
        _statement(
            "DenyModelsWithoutGuardrail",
            [BEDROCK_INVOKE],
            models,
            effect="Deny",
            condition={"StringNotEquals": {key: guardrail_identifier}},
        ),
        _statement("ApplySanctionedGuardrail", [BEDROCK_APPLY_GUARDRAIL], [guardrail_arn or ""]),
    ]


def _list_flag_store(flag_store_arn: str) -> dict[str, Any]:
    """ListBucket on the flag store, unconditioned: without it S3 answers a GET of a missing key
    with 403 AccessDenied instead of 404 NoSuchKey, and a fresh stack (no state, no flag
    document yet) looks unreadable instead of empty. A ``s3:prefix`` condition would not help:
    a GET carries no ``s3:prefix``, so the condition never matches. The bucket holds only this
    workflow's control plane, so listing it reveals nothing the role cannot already read."""
    return _statement("ListFlagStore", ["s3:ListBucket"], [flag_store_arn])


def redaction_role_policy(
    *,
    raw_bucket_arn: str,
    raw_prefix: str,
    raw_kms_key_arn: str,
    audit_bucket_arn: str,
    audit_prefix: str,
    audit_kms_key_arn: str,
    dead_letter_queue_arn: str,
    log_group_arn: str,
) -> str:
    """Read + delete raw logs, decrypt them, write redacted records to the audit bucket."""
    raw = _objects(raw_bucket_arn, raw_prefix)
    return _document(
        [
            _statement(
                "DrainRawInvocationLogs",
                ["s3:GetObject", "s3:GetObjectVersion", "s3:DeleteObject", "s3:DeleteObjectVersion"],
                [raw],
            ),
            _statement("DecryptRawInvocationLogs", ["kms:Decrypt"], [raw_kms_key_arn]),
            _statement("WriteRedactedRecords", ["s3:PutObject"], [_objects(audit_bucket_arn, audit_prefix)]),
            _statement("EncryptRedactedRecords", ["kms:GenerateDataKey"], [audit_kms_key_arn]),
            _statement("DeadLetter", ["sqs:SendMessage"], [dead_letter_queue_arn]),
            _logs(log_group_arn),
        ]
    )


def gateway_role_policy(
    *,
    model_arns: Sequence[str],
    guardrail_arn: str | None,
    guardrail_identifier: str | None,
    flag_store_arn: str,
    flags_key: str,
    store_prefix: str,
    flag_kms_key_arn: str,
    audit_bucket_arn: str,
    audit_prefix: str,
    audit_kms_key_arn: str,
    subject_key_secret_arn: str,
    log_group_arn: str,
) -> str:
    """Sanctioned models only; read the live flags and releases; append request records."""
    return _document(
        [
            *model_access_statements(model_arns, guardrail_arn, guardrail_identifier),
            _list_flag_store(flag_store_arn),
            _statement(
                "ReadFlagsAndReleases",
                ["s3:GetObject"],
                [f"{flag_store_arn}/{flags_key}", _objects(flag_store_arn, f"{store_prefix}/")],
            ),
            _statement("DecryptFlagStore", ["kms:Decrypt"], [flag_kms_key_arn]),
            _statement("WriteRequestRecords", ["s3:PutObject"], [_objects(audit_bucket_arn, audit_prefix)]),
            _statement("EncryptRequestRecords", ["kms:GenerateDataKey"], [audit_kms_key_arn]),
            _statement(
                "ReadSubjectPseudonymKey", ["secretsmanager:GetSecretValue"], [subject_key_secret_arn]
            ),
            _logs(log_group_arn),
        ]
    )


def reconcile_role_policy(
    *,
    flag_store_arn: str,
    flags_key: str,
    store_prefix: str,
    flag_kms_key_arn: str,
    log_group_arn: str,
) -> str:
    """Read and conditionally rewrite state, flags and the control-plane audit chain."""
    return _document(
        [
            _list_flag_store(flag_store_arn),
            _statement(
                "ReadWriteControlPlane",
                ["s3:GetObject", "s3:PutObject"],
                [f"{flag_store_arn}/{flags_key}", _objects(flag_store_arn, f"{store_prefix}/")],
            ),
            _statement(
                "UseFlagStoreKey", ["kms:Decrypt", "kms:GenerateDataKey"], [flag_kms_key_arn]
            ),
            _logs(log_group_arn),
        ]
    )


def operator_policy(*, flag_store_arn: str, flags_key: str, store_prefix: str, flag_kms_key_arn: str) -> str:
    """The operators' permission set: exactly what the ``rollout`` CLI does against the stack's
    S3 store (``--state s3://<flag store>/<prefix>``: releases, evals, state, the audit chain,
    conditional writes) and flag document, with the flag store's key -- nothing else. Object
    Lock and the bucket policy still apply: nothing written can be deleted or rewritten early."""
    return _document(
        [
            _list_flag_store(flag_store_arn),
            _statement(
                "ReadWriteControlPlane",
                ["s3:GetObject", "s3:PutObject"],
                [f"{flag_store_arn}/{flags_key}", _objects(flag_store_arn, f"{store_prefix}/")],
            ),
            _statement("UseFlagStoreKey", ["kms:Decrypt", "kms:GenerateDataKey"], [flag_kms_key_arn]),
        ]
    )


def sso_model_access_policy(
    model_arns: Sequence[str],
    guardrail_arn: str | None = None,
    guardrail_identifier: str | None = None,
) -> str:
    """The permission set's inline policy: the sanctioned models, through the guardrail."""
    return _document(model_access_statements(model_arns, guardrail_arn, guardrail_identifier))


# --- checks shared with the policy pack ------------------------------------------------------


def statements_of(document: str | Mapping[str, Any]) -> list[dict[str, Any]]:
    """The statements of a policy document (JSON text or parsed), always as a list."""
    doc = json.loads(document) if isinstance(document, str) else document
    statements = doc.get("Statement", []) if isinstance(doc, Mapping) else []
    return [statements] if isinstance(statements, Mapping) else list(statements)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def is_wildcard_resource(resource: str) -> bool:
    """``*``, or an ARN whose partition/service/region/account or resource name is wildcarded.

    A ``*`` that starts the last segment under a *named* resource is scoped, not a wildcard:
    ``arn:aws:s3:::bucket/prefix/*`` (objects under one prefix of one bucket) and
    ``...:log-group:NAME:log-stream:*`` (streams of one log group). ``foundation-model/*``,
    ``role/*`` or ``bucket-*`` name every resource of a type, so they are wildcards.
    """
    if "*" not in resource and "?" not in resource:
        return False
    parts = resource.split(":", 5)
    if len(parts) < 6 or parts[0] != "arn":
        return True
    if any("*" in p or "?" in p for p in parts[1:5]):
        return True
    name = parts[5]
    head = name[: min(i for i, ch in enumerate(name) if ch in "*?")]
    if not head.endswith(("/", ":")):
        return True  # a wildcard inside a name matches every name with that prefix
    segments = [s for s in head.replace(":", "/").split("/") if s]
    # S3 object ARNs start with the bucket name; other services start with a resource type.
    return len(segments) < (1 if parts[2] == "s3" else 2)


def wildcard_problems(document: str | Mapping[str, Any]) -> list[str]:
    """Every Allow statement that grants a wildcard action or resource, or uses Not*."""
    problems = []
    for i, st in enumerate(statements_of(document)):
        if st.get("Effect") != "Allow":
            continue
        sid = st.get("Sid") or f"statement {i}"
        if "NotAction" in st or "NotResource" in st:
            problems.append(f"{sid}: NotAction/NotResource grant everything else")
        for action in _as_list(st.get("Action")):
            if "*" in action or "?" in action:
                problems.append(f"{sid}: wildcard action {action!r}")
        for resource in _as_list(st.get("Resource")):
            if is_wildcard_resource(resource):
                problems.append(f"{sid}: wildcard resource {resource!r}")
    return problems
