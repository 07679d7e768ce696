"""The policy documents (infra/policies.py) on their own: pure functions, no Pulumi."""

from __future__ import annotations

import json

import pytest

from infra import policies

BUCKET = "arn:aws:s3:::audit-bucket"
KEY = "arn:aws:kms:eu-west-1:123456789012:key/k-1"
ROLE = "arn:aws:iam::123456789012:role/redaction"
MODEL = "arn:aws:bedrock:eu-west-1::foundation-model/anthropic.claude-3-5-sonnet-20240620-v1:0"
GUARDRAIL = "arn:aws:bedrock:eu-west-1:123456789012:guardrail/gr-1"
LOG_GROUP = "arn:aws:logs:eu-west-1:123456789012:log-group:fn-logs"


def sids(document: str) -> dict[str, dict]:
    return {s["Sid"]: s for s in json.loads(document)["Statement"]}


def test_audit_bucket_policy_is_tls_only_and_kms_only_with_the_bucket_key():
    st = sids(policies.audit_bucket_policy(BUCKET, KEY))
    tls = st["DenyInsecureTransport"]
    assert tls["Effect"] == "Deny" and tls["Principal"] == "*" and tls["Action"] == ["s3:*"]
    assert tls["Resource"] == [BUCKET, f"{BUCKET}/*"]
    assert tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    sse, key_id = "s3:x-amz-server-side-encryption", "s3:x-amz-server-side-encryption-aws-kms-key-id"
    # Absent headers get the bucket default (this key); asking for anything else is refused.
    assert st["DenyNonKmsPuts"]["Condition"] == {"Null": {sse: "false"}, "StringNotEquals": {sse: "aws:kms"}}
    assert st["DenyKmsPutsWithoutBucketKey"]["Condition"] == {"Null": {sse: "false", key_id: "true"}}
    assert st["DenyPutsWithOtherKeys"]["Condition"] == {
        "Null": {key_id: "false"}, "StringNotEquals": {key_id: KEY},
    }  # fmt: skip
    assert st["DenyCustomerProvidedKeys"]["Condition"] == {
        "Null": {"s3:x-amz-server-side-encryption-customer-algorithm": "false"}
    }
    puts = {sid: s for sid, s in st.items() if sid not in ("DenyInsecureTransport", "DenyGovernanceBypass")}
    assert {s["Action"][0] for s in puts.values()} == {"s3:PutObject"}
    assert all(s["Effect"] == "Deny" for s in st.values())


@pytest.mark.parametrize("builder", [policies.audit_bucket_policy, policies.flag_store_bucket_policy])
def test_locked_buckets_deny_bypassing_governance_retention_to_everyone(builder):
    bypass = sids(builder(BUCKET, KEY))["DenyGovernanceBypass"]
    assert (bypass["Effect"], bypass["Principal"]) == ("Deny", "*")
    assert bypass["Action"] == ["s3:BypassGovernanceRetention"] and bypass["Resource"] == [f"{BUCKET}/*"]
    assert "Condition" not in bypass  # nobody: not the root, not an administrator


def test_raw_bucket_policy_lets_only_the_redaction_role_read_and_bedrock_write():
    st = sids(policies.raw_bucket_policy(BUCKET, KEY, ROLE, "123456789012", "eu-west-1", "bedrock"))
    read = st["DenyReadsExceptRedaction"]
    assert read["Effect"] == "Deny" and read["Principal"] == "*"
    assert set(read["Action"]) == {"s3:GetObject", "s3:GetObjectVersion"}
    assert read["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": ROLE}}
    write = st["AllowBedrockInvocationLogs"]
    assert write["Principal"] == {"Service": "bedrock.amazonaws.com"}
    assert write["Action"] == ["s3:PutObject"]
    assert write["Resource"] == [
        f"{BUCKET}/bedrock/AWSLogs/123456789012/BedrockModelInvocationLogs/*"
    ]
    assert write["Condition"]["StringEquals"] == {"aws:SourceAccount": "123456789012"}
    assert write["Condition"]["ArnLike"] == {"aws:SourceArn": "arn:aws:bedrock:eu-west-1:123456789012:*"}
    # Bedrock sends no SSE headers: only a *present and wrong* header is refused.
    assert st["DenyNonKmsPuts"]["Condition"]["Null"] == {"s3:x-amz-server-side-encryption": "false"}
    assert st["DenyPutsWithOtherKeys"]["Condition"]["StringNotEquals"] == {
        "s3:x-amz-server-side-encryption-aws-kms-key-id": KEY
    }
    assert "DenyInsecureTransport" in st


def test_access_log_bucket_policy_admits_s3_log_delivery_from_this_account_only():
    sources = ["arn:aws:s3:::raw", "arn:aws:s3:::audit"]
    st = sids(policies.access_log_bucket_policy(BUCKET, "123456789012", sources))
    allow = st["AllowS3ServerAccessLogs"]
    assert allow["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert allow["Condition"] == {
        "StringEquals": {"aws:SourceAccount": "123456789012"},
        "ArnEquals": {"aws:SourceArn": sorted(sources)},  # only the program's own buckets
    }
    assert "DenyInsecureTransport" in st


def test_kms_key_policy_grants_bedrock_only_when_asked():
    plain = sids(policies.kms_key_policy("123456789012"))
    assert list(plain) == ["AccountAdministersKeyThroughIam"]
    assert plain["AccountAdministersKeyThroughIam"]["Principal"] == {
        "AWS": "arn:aws:iam::123456789012:root"
    }
    with_bedrock = sids(policies.kms_key_policy("123456789012", bedrock_region="eu-west-1"))
    grant = with_bedrock["AllowBedrockInvocationLogEncryption"]
    assert grant["Action"] == ["kms:GenerateDataKey"]
    assert grant["Condition"]["ArnLike"] == {"aws:SourceArn": "arn:aws:bedrock:eu-west-1:123456789012:*"}


def test_kms_key_policy_lets_cloudwatch_logs_use_the_key_for_this_accounts_log_groups_only():
    grant = sids(policies.kms_key_policy("123456789012", logs_region="eu-west-1"))["AllowCloudWatchLogsEncryption"]
    assert grant["Principal"] == {"Service": "logs.eu-west-1.amazonaws.com"}
    assert grant["Condition"] == {"ArnLike": {
        "kms:EncryptionContext:aws:logs:arn": "arn:aws:logs:eu-west-1:123456789012:log-group:*"}}  # fmt: skip


def test_model_access_with_a_guardrail_requires_it_and_denies_calls_without_it():
    ident = f"{GUARDRAIL}:1"
    st = {s["Sid"]: s for s in policies.model_access_statements([MODEL], GUARDRAIL, ident)}
    allow = st["InvokeSanctionedModelsThroughGuardrail"]
    assert allow["Action"] == ["bedrock:InvokeModel"]  # authorises Converse too
    assert allow["Resource"] == [MODEL]
    assert allow["Condition"] == {"StringEquals": {"bedrock:GuardrailIdentifier": ident}}
    deny = st["DenyModelsWithoutGuardrail"]
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"StringNotEquals": {"bedrock:GuardrailIdentifier": ident}}
    assert st["ApplySanctionedGuardrail"]["Resource"] == [GUARDRAIL]
    assert st["ApplySanctionedGuardrail"]["Action"] == ["bedrock:ApplyGuardrail"]


def test_model_access_without_a_guardrail_is_one_scoped_allow():
    (only,) = policies.model_access_statements([MODEL])
    assert only["Resource"] == [MODEL] and "Condition" not in only


@pytest.mark.parametrize(
    ("models", "guardrail", "ident"),
    [([], None, None), ([MODEL], GUARDRAIL, None), ([MODEL], None, f"{GUARDRAIL}:1")],
)
def test_model_access_refuses_incomplete_inputs(models, guardrail, ident):
    with pytest.raises(ValueError):
        policies.model_access_statements(models, guardrail, ident)


def role_documents() -> dict[str, str]:
    return {
        "redaction": policies.redaction_role_policy(
            raw_bucket_arn="arn:aws:s3:::raw", raw_prefix="bedrock/",
            raw_kms_key_arn=KEY, audit_bucket_arn=BUCKET, audit_prefix="invocations/",
            audit_kms_key_arn=KEY, dead_letter_queue_arn="arn:aws:sqs:eu-west-1:123456789012:dlq",
            log_group_arn=LOG_GROUP,
        ),
        "gateway": policies.gateway_role_policy(
            model_arns=[MODEL], guardrail_arn=GUARDRAIL, guardrail_identifier=f"{GUARDRAIL}:1",
            flag_store_arn="arn:aws:s3:::flags", flags_key="flags/wf.flagd.json",
            store_prefix="control-plane/wf", flag_kms_key_arn=KEY, audit_bucket_arn=BUCKET,
            audit_prefix="requests/", audit_kms_key_arn=KEY,
            subject_key_secret_arn="arn:aws:secretsmanager:eu-west-1:123456789012:secret:sk",
            log_group_arn=LOG_GROUP,
        ),
        "reconcile": policies.reconcile_role_policy(
            flag_store_arn="arn:aws:s3:::flags", flags_key="flags/wf.flagd.json",
            store_prefix="control-plane/wf", flag_kms_key_arn=KEY, log_group_arn=LOG_GROUP,
        ),
    }  # fmt: skip


@pytest.mark.parametrize("role", ["redaction", "gateway", "reconcile"])
def test_function_role_policies_have_no_wildcards(role):
    assert policies.wildcard_problems(role_documents()[role]) == []


def test_redaction_role_does_exactly_the_drain():
    st = sids(role_documents()["redaction"])
    assert st["DrainRawInvocationLogs"]["Resource"] == ["arn:aws:s3:::raw/bedrock/*"]
    assert set(st["DrainRawInvocationLogs"]["Action"]) == {
        "s3:GetObject", "s3:GetObjectVersion", "s3:DeleteObject", "s3:DeleteObjectVersion",
    }  # fmt: skip
    assert st["WriteRedactedRecords"] == {
        "Sid": "WriteRedactedRecords", "Effect": "Allow", "Action": ["s3:PutObject"],
        "Resource": [f"{BUCKET}/invocations/*"],
    }  # fmt: skip
    assert st["WriteOwnLogs"]["Resource"] == [f"{LOG_GROUP}:log-stream:*"]
    actions = {a for s in st.values() for a in s["Action"]}
    assert not any(a.startswith("bedrock:") for a in actions)


def test_gateway_role_reads_flags_and_writes_only_request_records():
    st = sids(role_documents()["gateway"])
    assert st["ReadFlagsAndReleases"]["Action"] == ["s3:GetObject"]
    assert st["ReadFlagsAndReleases"]["Resource"] == [
        "arn:aws:s3:::flags/flags/wf.flagd.json", "arn:aws:s3:::flags/control-plane/wf/*",
    ]  # fmt: skip
    assert st["WriteRequestRecords"]["Resource"] == [f"{BUCKET}/requests/*"]
    assert "bedrock:Converse" not in json.dumps(st)  # no such IAM action


@pytest.mark.parametrize(
    ("resource", "wildcard"),
    [
        ("*", True),
        ("arn:aws:s3:::*", True),
        ("arn:aws:s3:::bucket*", True),
        ("arn:aws:s3:::bucket/*", False),
        ("arn:aws:s3:::bucket/prefix/*", False),
        ("arn:aws:s3:::bucket/prefix-*", True),
        ("arn:aws:bedrock:eu-west-1::foundation-model/*", True),
        (MODEL, False),
        ("arn:aws:bedrock:*::foundation-model/x", True),
        ("arn:aws:iam::123456789012:role/*", True),
        ("arn:aws:logs:eu-west-1:123456789012:log-group:g:log-stream:*", False),
        ("arn:aws:logs:eu-west-1:123456789012:log-group:*", True),
        ("arn:aws:sqs:eu-west-1:*:queue", True),
    ],
)
def test_wildcard_resources(resource, wildcard):
    assert policies.is_wildcard_resource(resource) is wildcard


def test_wildcard_problems_name_each_offence_and_ignore_denies():
    doc = {
        "Statement": [
            {"Sid": "A", "Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*"},
            {"Sid": "B", "Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "*"},
            {"Sid": "C", "Effect": "Allow", "NotAction": ["iam:*"], "Resource": "arn:aws:s3:::b/*"},
            {"Sid": "D", "Effect": "Deny", "Action": "*", "Resource": "*"},
        ]
    }
    problems = policies.wildcard_problems(doc)
    assert any(p.startswith("A: wildcard action") for p in problems)
    assert any(p.startswith("B: wildcard resource") for p in problems)
    assert any(p.startswith("C: NotAction") for p in problems)
    assert not any(p.startswith("D") for p in problems)


def test_statements_of_accepts_a_single_statement_object():
    doc = {"Statement": {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}}
    assert len(policies.statements_of(json.dumps(doc))) == 1
