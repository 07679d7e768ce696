"""The gateway Lambda end to end against moto's server on 127.0.0.1: releases and state in
S3, the flag document mirrored from S3, the pseudonym key from Secrets Manager, request records
written to the audit bucket."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import controller.gateway.lambda_handler as lambda_gateway
from controller.adapters import open_store
from controller.adapters.devidp import DevIdp
from controller.adapters.jwks import FileJwks
from controller.bundle.models import load_bundle
from controller.core.flags import render_flag_document
from controller.core.release import create_release, model_choice
from tests.fakes.s3 import make_bucket, make_client


@pytest.fixture
def lambda_env(project: Path, tmp_path: Path, s3_server: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server)
    bundle = load_bundle(project)
    bucket = make_bucket(s3_server)
    audit_bucket = make_bucket(s3_server)
    s3 = make_client(s3_server)
    store = open_store(f"s3://{bucket}/control")
    digest, _ = create_release(store, bundle, model_choice(bundle.workflow, "local"))
    doc = render_flag_document(bundle.workflow, {"internal": digest}, killed=False)
    s3.put_object(Bucket=bucket, Key="flags/internal-docs-qa.flagd.json", Body=json.dumps(doc).encode())
    import boto3

    secrets = boto3.client("secretsmanager", endpoint_url=s3_server)
    secret = secrets.create_secret(Name=f"subject-key-{bucket}", SecretString="not-a-real-secret-test-only")
    idp = DevIdp(tmp_path / "idp-state")
    idp.ensure()
    # The IdP's JWKS: in AWS fetched from sso.idp.jwks_uri; here the dev IdP's file stands in.
    monkeypatch.setattr("controller.adapters.jwks.open_jwks", lambda location, **kw: FileJwks(idp.jwks_path))
    for name, value in {
        "ROLLOUT_WORKFLOW": str(project),
        "ROLLOUT_STORE": f"s3://{bucket}/control",
        "ROLLOUT_FLAGS_BUCKET": bucket,
        "ROLLOUT_FLAGS_KEY": "flags/internal-docs-qa.flagd.json",
        "ROLLOUT_AUDIT_BUCKET": audit_bucket,
        "ROLLOUT_SUBJECT_KEY_SECRET": secret["ARN"],
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(lambda_gateway, "_state", {})
    monkeypatch.setattr(lambda_gateway, "FLAG_DIR", tmp_path)

    def token(email: str, groups: list[str]) -> str:
        return idp.mint(email, groups, issuer=bundle.workflow.sso.idp.issuer, audience=bundle.workflow.sso.idp.audience)

    yield {"s3": s3, "audit_bucket": audit_bucket, "digest": digest, "token": token}
    gateway = lambda_gateway._state.get("gateway")
    if gateway is not None:
        gateway.flags.close()


def event(question: str, token: str | None) -> dict[str, Any]:
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    return {
        "version": "2.0",
        "rawPath": "/v1/ask",
        "headers": headers,
        "requestContext": {"http": {"method": "POST", "path": "/v1/ask"}},
        "body": json.dumps({"question": question}),
        "isBase64Encoded": False,
    }


def test_lambda_answers_an_internal_user_and_audits_to_s3(lambda_env: Any) -> None:
    tok = lambda_env["token"]("alice.moreau@corp.example", ["eng", "ai-pilot"])
    response = lambda_gateway.handle_lambda_event(event("How quickly must on-call acknowledge a page?", tok))
    assert response["statusCode"] == 200
    body = json.loads(response["body"])
    assert body["decision"] == "answered"
    assert body["release"] == lambda_env["digest"]

    outsider = lambda_env["token"]("ben.okoro@corp.example", ["eng"])
    response = lambda_gateway.handle_lambda_event(event("How quickly must on-call acknowledge a page?", outsider))
    assert json.loads(response["body"])["decision"] == "fallback"

    response = lambda_gateway.handle_lambda_event(event("hello", None))
    assert response["statusCode"] == 401

    s3 = lambda_env["s3"]
    objects = s3.list_objects_v2(Bucket=lambda_env["audit_bucket"], Prefix="requests/")["Contents"]
    records = [
        json.loads(line)
        for obj in objects
        for line in s3.get_object(Bucket=lambda_env["audit_bucket"], Key=obj["Key"])["Body"].read().splitlines()
    ]
    assert sorted(r["decision"] for r in records) == ["answered", "fallback", "refused"]
    assert all("alice" not in json.dumps(r) for r in records)
