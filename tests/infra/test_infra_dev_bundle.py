"""The example ``dev`` stack's bundle copy (infra/dev-bundle/internal-docs-qa): the real bundle,
with GOVERNANCE locks and days-long retention only -- and nothing else different."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import pytest
from infra_mocks import PROJECT, make_config, run_program

from controller.bundle.models import load_bundle
from controller.core import provisioning as derive
from infra.build_archive import build_archive, default_bundles

DEV = "infra/dev-bundle/internal-docs-qa"
REAL = "workflows/internal-docs-qa"
DIFFERENT = {"name", "logging"}  # logging: only its retention (checked below)
MOST_DAYS = 30


@pytest.fixture(scope="module")
def dev_bundle() -> Any:
    return load_bundle(PROJECT / DEV)


def _resolved(bundle: Any) -> dict[str, Any]:
    """The workflow as data, with every relative path resolved against its bundle directory."""
    root = bundle.root

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, str) and value.startswith("../"):
            return str((root / value).resolve())
        return value

    return walk(bundle.workflow.model_dump(mode="json"))


def test_the_dev_copy_differs_from_the_real_bundle_only_in_name_and_retention(bundle, dev_bundle):
    real, dev = _resolved(bundle), _resolved(dev_bundle)
    assert real.keys() == dev.keys()
    drifted = {k for k in real if real[k] != dev[k]}
    assert drifted == DIFFERENT, f"the dev copy drifted from {REAL} in {sorted(drifted - DIFFERENT)}"
    real_logging = {k: v for k, v in real["logging"].items() if k != "retention"}
    assert real_logging == {k: v for k, v in dev["logging"].items() if k != "retention"}
    assert "DEV" in dev_bundle.workflow.name


def test_the_dev_copy_has_the_same_prompts_golden_set_and_corpus(bundle, dev_bundle):
    def files(root: Path) -> dict[str, bytes]:
        return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
                if p.is_file() and p.name != "workflow.yaml"}  # fmt: skip

    assert files(dev_bundle.root) == files(bundle.root)


def test_the_dev_copy_locks_in_governance_mode_for_days_only(dev_bundle):
    rules = derive.bucket_rules(dev_bundle.workflow)
    assert {r.object_lock_mode for r in rules.values()} == {"GOVERNANCE", None}
    assert max(r.days for r in rules.values()) <= MOST_DAYS
    for posture in dev_bundle.workflow.logging.retention.postures.values():
        assert posture.object_lock_mode in (None, "governance")
    assert derive.retention_problems(dev_bundle.workflow) == []


def test_the_real_bundle_is_the_one_with_the_compliance_lock(bundle):
    """Why the example stack must not name it: COMPLIANCE cannot be shortened or removed."""
    rules = derive.bucket_rules(bundle.workflow)
    assert rules[derive.LogClass.CONTROL_PLANE].object_lock_mode == "COMPLIANCE"


def test_the_dev_stack_deploys_governance_locks_and_short_lifecycles(dev_bundle, tmp_path):
    archive = tmp_path / "lambda.zip"
    build_archive(archive, deps=False)  # the default archive carries the dev copy
    with zipfile.ZipFile(archive) as zf:
        assert f"{DEV}/workflow.yaml" in zf.namelist() and f"{REAL}/workflow.yaml" in zf.namelist()
    run = run_program(dev_bundle, make_config(PROJECT, archive, workflow=DEV))
    locks = run.of_type("aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration")
    assert locks and {lock.inputs["rule"]["defaultRetention"]["mode"] for lock in locks} == {"GOVERNANCE"}
    assert {lock.inputs["rule"]["defaultRetention"]["days"] for lock in locks} == {7}
    functions = run.of_type("aws:lambda/function:Function")
    assert {f.inputs["environment"]["variables"]["ROLLOUT_WORKFLOW"] for f in functions} == {DEV}
    assert run.outputs["object_lock"] == {"audit_log": "GOVERNANCE", "control_plane": "GOVERNANCE"}


def test_the_archive_includes_every_bundle_by_default():
    names = {p.relative_to(PROJECT).as_posix() for p in default_bundles(PROJECT)}
    assert {REAL, DEV} <= names
