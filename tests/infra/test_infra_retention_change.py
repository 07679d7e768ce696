"""Changing a retention posture in workflow.yaml changes lifecycle and Object Lock, nothing else.

The bundle is copied (with the flags and runbooks it references) and one posture's days are
edited; the program runs on the copy and on an unedited copy and the resource inputs of the
two runs are compared resource by resource.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi
import pytest
from infra_mocks import PROJECT, copy_project, make_config, run_program
from ruamel.yaml import YAML

from controller.bundle.models import load_bundle
from controller.core import provisioning as derive

WF = "internal-docs-qa"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
LOCK = "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"


def _plain(value: Any) -> Any:
    if isinstance(value, pulumi.Archive | pulumi.Asset):
        return {"archive": getattr(value, "path", repr(value))}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def inputs_by_resource(root: Path, archive: Path) -> dict[tuple[str, str], Any]:
    run = run_program(load_bundle(root / "workflows" / WF), make_config(root, archive))
    keyed = {(r.type, r.name): _plain(r.inputs) for r in run.resources}
    assert len(keyed) == len(run.resources), "resource names must be unique"
    return keyed


def set_days(root: Path, posture_ref: str, days: int) -> str:
    """Set the days of the posture ``logging.retention.<posture_ref>`` names; return its name."""
    path = root / "workflows" / WF / "workflow.yaml"
    yaml = YAML(typ="rt")
    data = yaml.load(path.read_text(encoding="utf-8"))
    retention = data["logging"]["retention"]
    name = retention[posture_ref]
    retention["postures"][name]["days"] = days
    with path.open("w", encoding="utf-8") as fh:
        yaml.dump(data, fh)
    return name


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory, lambda_archive: Path):
    root = tmp_path_factory.mktemp("baseline")
    copy_project(root)
    return inputs_by_resource(root, lambda_archive)


def test_a_copied_bundle_deploys_exactly_like_the_original(baseline, lambda_archive):
    assert inputs_by_resource(PROJECT, lambda_archive) == baseline


def changed(before: dict, after: dict) -> set[tuple[str, str]]:
    assert before.keys() == after.keys(), "a retention change must not add or remove resources"
    return {key for key in before if before[key] != after[key]}


@pytest.mark.parametrize(
    ("posture_ref", "days", "expected"),
    [
        # 400 -> 390: CloudWatch still rounds up to 400, so only S3 retention moves.
        ("audit_log", 390, {(LIFECYCLE, f"{WF}-audit-log-lifecycle"), (LOCK, f"{WF}-audit-log-object-lock"),
                            (LIFECYCLE, f"{WF}-audit-log-access-logs-lifecycle"),
                            (LIFECYCLE, f"{WF}-lambda-code-lifecycle")}),
        ("control_plane", 3000, {(LIFECYCLE, f"{WF}-flag-store-lifecycle"),
                                 (LOCK, f"{WF}-flag-store-object-lock")}),
        # The API's access logs (they identify callers) follow the transient posture: 1 -> 3 days.
        ("raw_invocation_logs", 2, {(LIFECYCLE, f"{WF}-raw-invocation-logs-lifecycle"),
                                    (LOG_GROUP, f"{WF}-gateway-access-logs")}),
    ],
)  # fmt: skip
def test_retention_change_moves_only_lifecycle_and_object_lock(
    baseline, tmp_path, lambda_archive, posture_ref, days, expected
):
    copy_project(tmp_path)
    set_days(tmp_path, posture_ref, days)
    after = inputs_by_resource(tmp_path, lambda_archive)
    assert changed(baseline, after) == expected
    for key in expected:
        if key[0] == LOCK:
            assert after[key]["rule"]["defaultRetention"]["days"] == days
        elif key[0] == LOG_GROUP:
            assert after[key]["retentionInDays"] == derive.cloudwatch_retention_days(days)
        else:  # an object lives current + noncurrent days: the new posture in total
            rules = after[key]["rules"]
            current = sum(r.get("expiration", {}).get("days", 0) for r in rules)
            noncurrent = sum(r.get("noncurrentVersionExpiration", {}).get("noncurrentDays", 0) for r in rules)
            assert current + noncurrent == days, f"{key} does not keep objects the new {days} days"


def test_crossing_a_cloudwatch_step_also_moves_log_group_retention(baseline, tmp_path, lambda_archive):
    """400 -> 500 days: CloudWatch's next allowed value is 545, so the log groups follow."""
    copy_project(tmp_path)
    set_days(tmp_path, "audit_log", 500)
    after = inputs_by_resource(tmp_path, lambda_archive)
    diff = changed(baseline, after)
    log_groups = {k for k in diff if k[0] == LOG_GROUP}
    assert {t for t, _ in diff - log_groups} <= {LIFECYCLE, LOCK}
    assert {n for _, n in log_groups} == {
        f"{WF}-redaction-logs", f"{WF}-gateway-logs", f"{WF}-reconcile-logs",
    }  # fmt: skip
    assert {after[k]["retentionInDays"] for k in log_groups} == {545}
