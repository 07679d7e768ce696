"""Stack config: read once, checked against the bundle and the built archive, all problems at once."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from infra_mocks import BUNDLE, PROJECT, REGION, make_config

from controller.bundle.models import EndpointKind
from infra.config import InvalidStackConfig, StackConfig, check, problems


def test_the_shipped_bundle_fits_the_default_config(bundle, lambda_archive):
    assert problems(make_config(PROJECT, lambda_archive), bundle.workflow) == []


def test_every_problem_is_reported_at_once(bundle, tmp_path):
    config = make_config(
        PROJECT,
        tmp_path / "missing.zip",
        region="us-east-1",
        gateway_throttle_burst=0,
        gateway_throttle_rate=0.0,
        sso_instance_arn="arn:aws:sso:::instance/ssoins-EXAMPLE0000000000",
    )
    found = problems(config, bundle.workflow)
    assert len(found) == 5, found
    assert any("aws:region is 'us-east-1'" in p and REGION in p for p in found)
    assert any("python -m infra.build_archive" in p for p in found)
    assert any("ssoInstanceArn is still the placeholder" in p for p in found)
    with pytest.raises(InvalidStackConfig) as err:
        check(config, bundle.workflow)
    assert str(err.value).startswith("Invalid stack configuration (5 problems):\n - ")


def test_an_archive_without_the_bundle_is_refused(bundle, tmp_path):
    archive = tmp_path / "lambda.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("controller/bundle/models.py", "")
    (found,) = problems(make_config(PROJECT, archive), bundle.workflow)
    assert f"{BUNDLE}/workflow.yaml" in found and "rebuild it" in found


def test_a_non_bedrock_endpoint_is_refused(bundle, lambda_archive):
    surface = bundle.workflow.surface.model_copy(
        update={"endpoint": bundle.workflow.surface.endpoint.model_copy(update={"kind": EndpointKind.LOCAL})}
    )
    wf = bundle.workflow.model_copy(update={"surface": surface})
    (found,) = problems(make_config(PROJECT, lambda_archive), wf)
    assert "provisions Amazon Bedrock only" in found


def test_the_sso_group_defaults_to_the_internal_cohorts_first_group(bundle, lambda_archive):
    config = make_config(PROJECT, lambda_archive)
    assert config.group_name(bundle.workflow) == bundle.workflow.rollout.cohort("internal").groups[0]
    assert make_config(PROJECT, lambda_archive, sso_group_name="eng").group_name(bundle.workflow) == "eng"


def test_from_pulumi_reads_the_stack_config(monkeypatch, tmp_path):
    monkeypatch.setenv(
        "PULUMI_CONFIG",
        json.dumps(
            {
                "ai-rollout:workflow": BUNDLE,
                "aws:region": REGION,
                "ai-rollout:gatewayThrottleBurst": "5",
                "ai-rollout:gatewayThrottleRate": "2.5",
                "ai-rollout:ssoGroupId": "g-123",
                "ai-rollout:operatorGroupName": "ops",
                "ai-rollout:identityCenterRoleArn": "arn:aws:iam::210987654321:role/ic",
                "ai-rollout:identityCenterRegion": "eu-central-1",
                "ai-rollout:bedrockInvocationLogging": "external",
            }
        ),
    )
    config = StackConfig.from_pulumi(tmp_path)
    assert (config.workflow, config.region) == (BUNDLE, REGION)
    assert (config.gateway_throttle_burst, config.gateway_throttle_rate) == (5, 2.5)
    assert config.sso_group_id == "g-123"
    assert (config.operator_group_name, config.identity_center_role_arn, config.identity_center_region) == (
        "ops", "arn:aws:iam::210987654321:role/ic", "eu-central-1")  # fmt: skip
    assert config.bedrock_invocation_logging == "external"
    assert config.lambda_archive == "build/lambda.zip"
    assert config.reconcile_schedule == "rate(15 minutes)"
    assert config.archive_path == tmp_path / "build" / "lambda.zip"
    assert config.workflow_dir == (tmp_path / BUNDLE).resolve()


def test_the_example_stack_config_names_the_dev_bundle_copy_and_its_region(bundle):
    from ruamel.yaml import YAML

    doc = YAML(typ="safe").load((PROJECT / "Pulumi.dev.yaml").read_text(encoding="utf-8"))
    cfg = doc["config"]
    assert cfg["ai-rollout:workflow"] == "infra/dev-bundle/internal-docs-qa"  # never the COMPLIANCE bundle
    from infra.config import INVOCATION_LOGGING_MODES

    assert cfg["ai-rollout:bedrockInvocationLogging"] in INVOCATION_LOGGING_MODES
    assert cfg["aws:region"] == bundle.workflow.surface.endpoint.region
    assert Path(cfg["ai-rollout:lambdaArchive"]) == Path("build/lambda.zip")
