"""The deployer's least-privilege policy (infra/deployer-policy.json) is generated from what the
program creates, covers every action in the table for each of those types, and is current."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from deployer_export import FULL, POLICY, TABLE, generate, program_types
from infra_mocks import PROJECT, REGION

from infra.deployer import ACTIONS, deployer_policy, markdown_table, missing_types
from infra.policies import statements_of

REGENERATE = ".venv-infra/bin/python -m tests.infra.deployer_export"


@pytest.fixture(scope="module")
def types(lambda_archive: Path) -> set[str]:
    return program_types(lambda_archive)


@pytest.fixture(scope="module")
def policy(types: set[str]) -> dict:
    return deployer_policy(types, workflow_id="internal-docs-qa", account="ACCOUNT_ID", region=REGION)


def _granted(doc: dict) -> set[str]:
    return {a for st in statements_of(doc) for a in st["Action"]}


def test_every_type_the_program_creates_has_its_actions_listed(types):
    assert missing_types(types) == []
    assert "aws:ssoadmin/accountAssignment:AccountAssignment" in types and FULL  # the optional parts ran


def test_every_action_each_created_type_needs_is_in_the_policy(types, policy):
    granted = _granted(policy["workload"]) | _granted(policy["identity_center"])
    for t in types:
        for key in (k for k in ACTIONS if k == t or k.startswith(f"{t}#")):
            missing = set(ACTIONS[key][1]) - granted
            assert not missing, f"{key}: {sorted(missing)} not in the deployer policy"


@pytest.mark.parametrize("action", [
    "s3:GetBucketAcl", "s3:GetBucketCORS", "s3:GetBucketWebsite", "s3:GetAccelerateConfiguration",
    "s3:GetBucketRequestPayment", "s3:GetReplicationConfiguration", "lambda:GetFunctionCodeSigningConfig",
    "secretsmanager:GetResourcePolicy", "iam:ListInstanceProfilesForRole", "s3:GetBucketTagging",
    "kms:ListResourceTags", "lambda:ListTags", "logs:ListTagsForResource", "sqs:ListQueueTags", "iam:PassRole",
])  # fmt: skip
def test_the_reads_a_first_deployer_lacked_are_granted(policy, action):
    """The provider's refresh reads that made a deployer built from the old docs fail halfway."""
    assert action in _granted(policy["workload"])


def test_identity_center_actions_go_to_the_administrator_accounts_document(policy):
    assert {a.split(":")[0] for a in _granted(policy["identity_center"])} == {"sso", "identitystore", "iam"}
    assert not [a for a in _granted(policy["workload"]) if a.startswith(("sso:", "identitystore:"))]


def test_resources_are_scoped_to_the_programs_names_where_aws_allows(policy):
    for st in statements_of(policy["workload"]):
        if st["Resource"] == ["*"]:
            assert st["Sid"] == "Any"
            assert set(st["Action"]) <= {"kms:CreateKey", "logs:DescribeLogGroups", "sts:GetCallerIdentity",
                                         "secretsmanager:GetRandomPassword"} | {
                a for a in st["Action"] if a.startswith("bedrock:") and "InvocationLogging" in a}  # fmt: skip
        elif not st["Sid"].startswith(("Apigateway", "KmsKey")):
            assert all("internal-docs-qa-*" in r for r in st["Resource"]), st


def test_the_shipped_policy_and_table_are_what_the_program_generates():
    policy, table = generate()
    assert json.loads(POLICY.read_text(encoding="utf-8")) == policy, f"stale: {REGENERATE}"
    assert TABLE.read_text(encoding="utf-8") == table, f"stale: {REGENERATE}"
    assert markdown_table(["aws:kms/key:Key"]).count("\n") == 4  # header, rule, the type and its #create


def test_the_workload_policy_is_a_valid_iam_policy():
    """IAM (moto's validator) accepts each document, and each fits a managed policy (6,144
    characters without whitespace)."""
    boto3 = pytest.importorskip("boto3")
    moto = pytest.importorskip("moto")
    with moto.mock_aws():
        iam = boto3.client("iam", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
        for name, doc in json.loads(POLICY.read_text(encoding="utf-8")).items():
            assert len(json.dumps(doc, separators=(",", ":"))) <= 6144, name
            iam.create_policy(PolicyName=f"ai-rollout-deployer-{name}".replace("_", "-"),
                              PolicyDocument=json.dumps(doc))  # fmt: skip
    assert (PROJECT / "infra" / "deployer-policy.json").is_file()
