"""The gateway Lambda as the program's gateway role, against moto's server with IAM enforcement.

The role gets the inline policy ``infra.policies.gateway_role_policy`` builds for the stack (the
same function the Pulumi program calls), is assumed through STS, and the handler runs with those
credentials while moto authorises every S3 and Secrets Manager request against that policy
(actions and resources; moto does not evaluate conditions). On a stack whose reconcile has
published flags it answers and writes its request record; on a fresh stack (no flag document,
no state yet) it fails closed -- 503 with the documented fallback text, recorded, not an error. Lives in the main suite because the
gateway needs OpenFeature, which the Pulumi environment cannot install (protobuf conflict).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.core import authorization

import controller.gateway.lambda_handler as lambda_gateway
from controller.adapters import open_store
from controller.adapters.devidp import DevIdp
from controller.adapters.jwks import FileJwks
from controller.bundle.models import load_bundle
from controller.core.flags import render_flag_document
from controller.core.release import create_release, model_choice
from infra import policies
from tests.fakes.s3 import make_bucket, make_client
from tests.test_lambda_gateway import event

FLAGS_KEY = "flags/internal-docs-qa.flagd.json"
PREFIX = "control-plane/internal-docs-qa"
QUESTION = "How quickly must on-call acknowledge a page?"


def _moto_spelling(document: str) -> str:
    """Two moto limits, spelled out so the rest of the policy is evaluated as written: moto
    authorises ListObjectsV2 as ``s3:ListObjectsV2`` (AWS: ``s3:ListBucket``), and it authorises
    Secrets Manager calls against resource ``*`` (it passes no secret ARN), so the one secret
    grant is also given on ``*`` -- S3, where the bootstrap problem was, is checked per ARN."""
    doc = json.loads(document)
    for st in doc["Statement"]:
        if "s3:ListBucket" in st.get("Action", []):
            st["Action"] = [*st["Action"], "s3:ListObjectsV2"]
        if st.get("Action") == ["secretsmanager:GetSecretValue"]:
            st["Resource"] = [*st["Resource"], "*"]
    return json.dumps(doc)


@pytest.fixture
def stack(project: Path, tmp_path: Path, s3_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server)
    bundle = load_bundle(project)
    flags_bucket, audit_bucket = make_bucket(s3_server), make_bucket(s3_server)
    admin = make_client(s3_server)
    kms, iam, sts, secrets = (boto3.client(s, endpoint_url=s3_server) for s in ("kms", "iam", "sts", "secretsmanager"))
    account = sts.get_caller_identity()["Account"]
    key_arn = kms.create_key()["KeyMetadata"]["Arn"]
    secret = secrets.create_secret(Name=f"subject-key-{flags_bucket}", SecretString="not-a-real-secret-test-only")
    region = bundle.workflow.surface.endpoint.region
    document = policies.gateway_role_policy(
        model_arns=[f"arn:aws:bedrock:{region}::foundation-model/{m.id}" for m in bundle.workflow.surface.models],
        guardrail_arn=None, guardrail_identifier=None,
        flag_store_arn=f"arn:aws:s3:::{flags_bucket}", flags_key=FLAGS_KEY, store_prefix=PREFIX,
        flag_kms_key_arn=key_arn, audit_bucket_arn=f"arn:aws:s3:::{audit_bucket}", audit_prefix="requests/",
        audit_kms_key_arn=key_arn, subject_key_secret_arn=secret["ARN"],
        log_group_arn=f"arn:aws:logs:{region}:{account}:log-group:gateway-logs",
    )  # fmt: skip
    role = f"gateway-{flags_bucket}"[:64]
    arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=policies.lambda_assume_role_policy())["Role"]["Arn"]
    iam.put_role_policy(RoleName=role, PolicyName="inline", PolicyDocument=_moto_spelling(document))
    creds = sts.assume_role(RoleArn=arn, RoleSessionName="gateway")["Credentials"]

    idp = DevIdp(tmp_path / "idp-state")
    idp.ensure()
    monkeypatch.setattr("controller.adapters.jwks.open_jwks", lambda location, **kw: FileJwks(idp.jwks_path))
    for name, value in {
        "ROLLOUT_WORKFLOW": str(project), "ROLLOUT_STORE": f"s3://{flags_bucket}/{PREFIX}",
        "ROLLOUT_FLAGS_BUCKET": flags_bucket, "ROLLOUT_FLAGS_KEY": FLAGS_KEY, "ROLLOUT_AUDIT_BUCKET": audit_bucket,
        "ROLLOUT_AUDIT_KMS_KEY": key_arn, "ROLLOUT_SUBJECT_KEY_SECRET": secret["ARN"],
    }.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(lambda_gateway, "_state", {})
    monkeypatch.setattr(lambda_gateway, "FLAG_DIR", tmp_path)

    def as_gateway_role() -> None:
        monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # it caches the admin's credentials
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", creds["AccessKeyId"])
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", creds["SecretAccessKey"])
        monkeypatch.setenv("AWS_SESSION_TOKEN", creds["SessionToken"])

    def token(email: str, groups: list[str]) -> str:
        idp_cfg = bundle.workflow.sso.idp
        return idp.mint(email, groups, issuer=idp_cfg.issuer, audience=idp_cfg.audience)

    yield {"bundle": bundle, "admin": admin, "flags_bucket": flags_bucket, "audit_bucket": audit_bucket,
           "as_gateway_role": as_gateway_role, "token": token}  # fmt: skip
    gateway = lambda_gateway._state.get("gateway")
    if gateway is not None:
        gateway.flags.close()


def _ask(stack: dict[str, Any]) -> dict[str, Any]:
    tok = stack["token"]("alice.moreau@corp.example", ["eng", "ai-pilot"])
    stack["as_gateway_role"]()
    with authorization.enable_iam_authentication():
        return lambda_gateway.handle_lambda_event(event(QUESTION, tok))


def test_the_gateway_role_can_serve_a_published_release_and_record_it(stack: dict[str, Any]) -> None:
    bundle = stack["bundle"]
    store = open_store(f"s3://{stack['flags_bucket']}/{PREFIX}")  # the operator publishes, as admin
    digest, _ = create_release(store, bundle, model_choice(bundle.workflow, "local"))
    doc = render_flag_document(bundle.workflow, {"internal": digest}, killed=False)
    stack["admin"].put_object(Bucket=stack["flags_bucket"], Key=FLAGS_KEY, Body=json.dumps(doc).encode())

    response = _ask(stack)
    body = json.loads(response["body"])
    assert (response["statusCode"], body["decision"], body["release"]) == (200, "answered", digest)
    records = stack["admin"].list_objects_v2(Bucket=stack["audit_bucket"], Prefix="requests/")["Contents"]
    assert len(records) == 1


def test_on_a_fresh_stack_the_gateway_role_fails_closed_with_the_documented_answer(stack: dict[str, Any]) -> None:
    """No flag document yet (the first reconcile has not run): the workflow is disabled -- 503
    with the bundle's fallback text -- and the refusal is still recorded. Not a crash, not a 500."""
    response = _ask(stack)
    body = json.loads(response["body"])
    assert (response["statusCode"], body["decision"]) == (503, "disabled"), body
    fallback = stack["bundle"].workflow.fallback
    assert fallback.link in body["answer"] and fallback.contact in body["answer"]
    records = stack["admin"].list_objects_v2(Bucket=stack["audit_bucket"], Prefix="requests/")["Contents"]
    assert [json.loads(line)["decision"] for obj in records for line in stack["admin"].get_object(
        Bucket=stack["audit_bucket"], Key=obj["Key"])["Body"].read().splitlines()] == ["disabled"]  # fmt: skip


def test_the_simulation_is_enforced_the_role_cannot_write_outside_its_prefix(stack: dict[str, Any]) -> None:
    from botocore.exceptions import ClientError

    stack["as_gateway_role"]()
    client = boto3.client("s3")
    with authorization.enable_iam_authentication(), pytest.raises(ClientError) as denied:
        client.put_object(Bucket=stack["audit_bucket"], Key="invocations/forged.json", Body=b"{}")
    assert denied.value.response["Error"]["Code"] == "AccessDenied"
