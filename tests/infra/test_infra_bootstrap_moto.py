"""A fresh stack's first reconcile, against moto's S3/IAM/STS server on 127.0.0.1.

The flag store is created with the program's default encryption and versioning (its bucket policy
is put and read back, then removed: moto evaluates bucket-policy Denies without their conditions,
and all of ours are conditional); the reconcile and gateway roles get the program's own role
policies and are assumed through STS, and moto then evaluates every S3 request those credentials
make against the role's policy (moto's IAM simulation: actions and resources, not conditions). On a fresh stack
there is no state, no release and no flag document yet: a missing key must read as absent (S3's
404, which it answers only to a principal holding ``s3:ListBucket``; without that grant it
answers 403 and the store would be unavailable), the reconcile must complete and publish the
first flag document.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("moto.server")
boto3 = pytest.importorskip("boto3")

from botocore.exceptions import ClientError  # noqa: E402
from infra_mocks import REGION  # noqa: E402
from moto.core import authorization  # noqa: E402
from moto.server import ThreadedMotoServer  # noqa: E402

from controller.adapters.s3 import S3Store  # noqa: E402
from infra import policies  # noqa: E402
from infra.handlers.reconcile import run_reconcile  # noqa: E402

WF = "internal-docs-qa"
FLAGS_KEY = f"flags/{WF}.flagd.json"
STORE_PREFIX = f"control-plane/{WF}"
BUCKET = "ai-rollout-flag-store-test"
AUDIT_BUCKET = "ai-rollout-audit-test"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def _client(endpoint: str, service: str, **creds: str) -> Any:
    creds = creds or {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    return boto3.client(service, region_name=REGION, endpoint_url=endpoint, **creds)


@pytest.fixture
def stack(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The flag store as the program builds it, and the two roles with the program's policies."""
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    s3, kms, iam, sts = (_client(endpoint, s) for s in ("s3", "kms", "iam", "sts"))
    account = sts.get_caller_identity()["Account"]
    key_arn = kms.create_key(Policy=policies.kms_key_policy(account))["KeyMetadata"]["Arn"]
    bucket_arn = f"arn:aws:s3:::{BUCKET}"
    for name in (BUCKET, AUDIT_BUCKET):
        try:
            s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION},
                             ObjectLockEnabledForBucket=True)  # fmt: skip
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "BucketAlreadyOwnedByYou":
                raise
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_encryption(Bucket=BUCKET, ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn},
         "BucketKeyEnabled": True}]})  # fmt: skip
    # The program's bucket policy is accepted as written; moto then evaluates bucket-policy Denies
    # without their conditions, so every one of ours (TLS-only, KMS-only puts: all conditional)
    # would deny every request. It is removed before the IAM simulation starts.
    bucket_policy = policies.flag_store_bucket_policy(bucket_arn, key_arn)
    s3.put_bucket_policy(Bucket=BUCKET, Policy=bucket_policy)
    assert json.loads(s3.get_bucket_policy(Bucket=BUCKET)["Policy"]) == json.loads(bucket_policy)
    s3.delete_bucket_policy(Bucket=BUCKET)
    log_group = f"arn:aws:logs:{REGION}:{account}:log-group:fn-logs"
    documents = {
        "reconcile": policies.reconcile_role_policy(
            flag_store_arn=bucket_arn, flags_key=FLAGS_KEY, store_prefix=STORE_PREFIX,
            flag_kms_key_arn=key_arn, log_group_arn=log_group,
        ),
        "gateway": policies.gateway_role_policy(
            model_arns=[f"arn:aws:bedrock:{REGION}::foundation-model/m"], guardrail_arn=None,
            guardrail_identifier=None, flag_store_arn=bucket_arn, flags_key=FLAGS_KEY,
            store_prefix=STORE_PREFIX, flag_kms_key_arn=key_arn,
            audit_bucket_arn=f"arn:aws:s3:::{AUDIT_BUCKET}", audit_prefix="requests/",
            audit_kms_key_arn=key_arn,
            subject_key_secret_arn=f"arn:aws:secretsmanager:{REGION}:{account}:secret:k",
            log_group_arn=log_group,
        ),
    }  # fmt: skip
    clients = {}
    for role, document in documents.items():
        name = f"{WF}-{role}-role-{id(document)}"
        arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=policies.lambda_assume_role_policy())[
            "Role"]["Arn"]  # fmt: skip
        iam.put_role_policy(RoleName=name, PolicyName="inline", PolicyDocument=_moto_spelling(document))
        creds = sts.assume_role(RoleArn=arn, RoleSessionName=role)["Credentials"]
        clients[role] = _client(endpoint, "s3", aws_access_key_id=creds["AccessKeyId"],
                                aws_secret_access_key=creds["SecretAccessKey"],
                                aws_session_token=creds["SessionToken"])  # fmt: skip
    return {"admin": s3, "key_arn": key_arn, **clients}


def _moto_spelling(document: str) -> str:
    """moto authorises ListObjectsV2 as ``s3:ListObjectsV2`` (its operation name); AWS as
    ``s3:ListBucket``. Each ListBucket grant gets moto's spelling too -- nothing else changes."""
    doc = json.loads(document)
    for st in doc["Statement"]:
        if "s3:ListBucket" in st.get("Action", []):
            st["Action"] = [*st["Action"], "s3:ListObjectsV2"]
    return json.dumps(doc)


@pytest.fixture
def enforced() -> Iterator[None]:
    """Every request from here on is authorised by moto's IAM simulation (the server runs in
    this process, so its settings are ours)."""
    with authorization.enable_iam_authentication():
        yield


def test_the_simulation_is_real_a_role_cannot_read_what_its_policy_does_not_grant(stack, enforced):
    with pytest.raises(ClientError) as denied:
        stack["reconcile"].get_object(Bucket=AUDIT_BUCKET, Key="requests/anything")
    assert denied.value.response["Error"]["Code"] == "AccessDenied"


def test_a_missing_state_key_is_absent_for_the_reconcile_role(stack, enforced):
    store = S3Store(BUCKET, STORE_PREFIX, client=stack["reconcile"], kms_key_id=stack["key_arn"])
    assert store.get("state/never-written.json") is None
    assert store.list("state/") == []


def test_a_missing_flag_document_is_absent_for_the_gateway_role(stack, enforced):
    releases = S3Store(BUCKET, STORE_PREFIX, client=stack["gateway"])
    assert releases.get("releases/none.json") is None
    with pytest.raises(ClientError) as missing:
        stack["gateway"].get_object(Bucket=BUCKET, Key=FLAGS_KEY)
    assert missing.value.response["Error"]["Code"] == "NoSuchKey"


def test_the_first_reconcile_on_a_fresh_stack_completes_and_publishes_the_flags(
    stack, enforced, bundle, tmp_path: Path
):
    store = S3Store(BUCKET, STORE_PREFIX, client=stack["reconcile"], kms_key_id=stack["key_arn"])
    report = run_reconcile(bundle, store, stack["reconcile"], flags_bucket=BUCKET, flags_key=FLAGS_KEY,
                           kms_key_id=stack["key_arn"], workdir=tmp_path)  # fmt: skip
    assert report["published"]["written"] is True, report
    written = stack["reconcile"].get_object(Bucket=BUCKET, Key=FLAGS_KEY)
    assert written["ServerSideEncryption"] == "aws:kms"
    assert "flags" in json.loads(written["Body"].read())


def test_the_program_grants_list_bucket_unconditioned_on_the_flag_store():
    """Why 404 and not 403: S3 answers a GET of a missing key with 404 only to a principal with
    ``s3:ListBucket`` on the bucket. A ``s3:prefix`` condition never matches a GET (it carries no
    prefix), so the grant must be unconditioned -- moto does not model this, so it is asserted."""
    bucket_arn = f"arn:aws:s3:::{BUCKET}"
    for document in (
        policies.reconcile_role_policy(flag_store_arn=bucket_arn, flags_key=FLAGS_KEY,
                                       store_prefix=STORE_PREFIX, flag_kms_key_arn="k", log_group_arn="l"),
        policies.gateway_role_policy(
            model_arns=["m"], guardrail_arn=None, guardrail_identifier=None, flag_store_arn=bucket_arn,
            flags_key=FLAGS_KEY, store_prefix=STORE_PREFIX, flag_kms_key_arn="k", audit_bucket_arn="a",
            audit_prefix="requests/", audit_kms_key_arn="k", subject_key_secret_arn="s", log_group_arn="l"),
    ):  # fmt: skip
        lists = [s for s in policies.statements_of(document) if "s3:ListBucket" in s["Action"]]
        assert lists and all(s["Resource"] == [bucket_arn] and "Condition" not in s for s in lists)


def test_a_read_the_role_may_not_make_is_unavailable_and_says_why_a_missing_key_can_look_denied(stack, enforced):
    """Fail closed: the reconcile role may not read the audit bucket, so a store there is
    unavailable (not empty), and the message names the ListBucket cause an operator would
    otherwise hunt for."""
    from controller.errors import BackendUnavailable

    store = S3Store(AUDIT_BUCKET, "requests", client=stack["reconcile"])
    with pytest.raises(BackendUnavailable, match="unless the caller may s3:ListBucket"):
        store.get("state/rollout.json")
