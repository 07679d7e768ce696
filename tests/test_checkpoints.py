"""Signed checkpoints anchor the audit chain outside the state: a truncated tail or a rewritten
head is found by ``rollout audit verify`` even when the state's head was rewritten to match.

The attack from the issue, on a real local store and on S3 (moto's server, a bucket with Object
Lock in COMPLIANCE mode as the control-plane bucket is provisioned): delete the last two records
and rewrite the head kept in the state.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from controller.adapters.signing import LocalSigner, sign
from controller.core import audit
from controller.core.canonical import canonical_json
from controller.service.compose import open_local_store
from tests.test_cli_rollout import OP, rollout, rollout_json

try:
    from tests.fakes.s3 import FAKE_AWS_ENV, make_client, shared_s3_server
except ModuleNotFoundError:
    from fakes.s3 import FAKE_AWS_ENV, make_client, shared_s3_server

WF = "internal-docs-qa"


@pytest.fixture
def state(project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("ROLLOUT_STORE", "ROLLOUT_SIGNING_KEY", "ROLLOUT_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "state"


def four_commands(state: Path) -> None:
    for n in range(2):
        assert rollout(state, "kill", "--reason", f"drill {n}", "--operator", OP).exit_code == 0
        assert rollout(state, "kill", "--release", "--reason", f"drill {n} over", "--operator", OP).exit_code == 0


def truncate(store: Any, drop: int, delete: Any) -> None:
    """Delete the last ``drop`` records and rewrite the state's head (and body) to the new last
    record: the chain verifies against the state on its own."""
    records = audit.read_chain(store, WF)
    keep = records[-drop - 1]
    for record in records[-drop:]:
        delete(audit.record_key(WF, record.seq))
    state = {**keep.to, "head": keep.head.to_dict()}
    got = store.get(f"state/{WF}.json")
    store.replace(f"state/{WF}.json", canonical_json(state), expected=got.version)


def verify(state: Path, *env: str) -> tuple[int, Any]:
    return rollout_json(state, "audit", "verify", *env)


def test_every_command_leaves_a_signed_checkpoint_and_verify_checks_them(state: Path) -> None:
    four_commands(state)
    store = open_local_store(state)
    keys = store.list(audit.checkpoint_prefix(WF))
    assert keys == [audit.checkpoint_key(WF, n) for n in range(1, 5)]
    point, body, envelope = audit.parse_checkpoint(store.get(keys[-1]).data)
    assert (point.seq, point.hash) == (4, audit.read_chain(store, WF)[-1].hash)
    assert LocalSigner(state).check(body, envelope) is None
    code, doc = verify(state)
    assert code == 0 and doc["ok"] is True and doc["problems"] == []


def test_a_truncated_tail_with_a_rewritten_state_head_is_detected(state: Path) -> None:
    four_commands(state)
    store = open_local_store(state)
    truncate(store, 2, lambda key: (state / key).unlink())
    code, doc = verify(state)
    assert code == 1 and doc["ok"] is False, doc["problems"]
    assert doc["status"] == "ok"  # the chain agrees with the rewritten state...
    assert any("truncated: records 3..4 were removed" in p for p in doc["problems"]), doc  # ...not with its anchor
    text = rollout(state, "audit", "verify")
    assert text.exit_code == 1 and "truncated" in text.stderr
    # without the anchors (what the issue found) the same edit went unnoticed
    for key in store.list(audit.checkpoint_prefix(WF)):
        (state / key).unlink()
    assert verify(state)[0] == 0


def test_a_rewritten_head_record_is_detected(state: Path) -> None:
    four_commands(state)
    store = open_local_store(state)
    last = audit.read_chain(store, WF)[-1]
    forged = audit.next_record(
        audit.read_chain(store, WF)[-2].head,
        time=last.time,
        operator="someone-else",
        action=last.action,
        workflow=WF,
        from_=last.from_,
        to=last.to,
        release=last.release,
        evidence=last.evidence,
        reason="rewritten",
    )
    (state / audit.record_key(WF, 4)).write_bytes(forged.to_json())
    got = store.get(f"state/{WF}.json")
    store.replace(
        f"state/{WF}.json", canonical_json({**forged.to, "head": forged.head.to_dict()}), expected=got.version
    )
    code, doc = verify(state)
    assert code == 1 and doc["status"] == "ok"
    assert doc["problems"] == [
        next(p for p in doc["problems"] if p.startswith("seq 4 differs from its signed checkpoint"))
    ], doc


def test_a_checkpoint_not_signed_by_the_controller_key_is_a_problem(state: Path, tmp_path: Path) -> None:
    four_commands(state)
    store = open_local_store(state)
    head = audit.read_chain(store, WF)[-1].head
    body = audit.checkpoint_body(WF, audit.ChainHead(head.seq + 1, "f" * 64), "2026-12-01T00:00:00Z")
    fake = audit.encode_checkpoint(body, sign(LocalSigner(tmp_path / "mallory"), body))
    store.create(audit.checkpoint_key(WF, head.seq + 1), fake)
    code, doc = verify(state)
    assert code == 1
    assert any("not the trusted key" in p for p in doc["problems"]), doc
    assert not any("truncated" in p for p in doc["problems"])  # a forged anchor proves nothing either way
    (state / audit.checkpoint_key(WF, head.seq + 1)).write_bytes(b"{}")
    assert any("not a checkpoint" in p for p in verify(state)[1]["problems"])


# --- S3: the control-plane bucket with Object Lock ---------------------------------------------------


@pytest.fixture
def locked_bucket(monkeypatch: pytest.MonkeyPatch) -> tuple[Any, str]:
    for name, value in FAKE_AWS_ENV.items():
        monkeypatch.setenv(name, value)
    endpoint = shared_s3_server()
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)
    client = make_client(endpoint)
    import uuid

    name = f"control-{uuid.uuid4().hex[:16]}"
    client.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    client.put_object_lock_configuration(
        Bucket=name,
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 1}},
        },
    )
    return client, name


def test_on_s3_object_lock_keeps_checkpoints_that_a_delete_marker_hides(
    state: Path, locked_bucket: tuple[Any, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, bucket = locked_bucket
    monkeypatch.setenv("ROLLOUT_STORE", f"s3://{bucket}/rollout")
    four_commands(state)
    from controller.adapters.s3 import S3Store

    store = S3Store(bucket, "rollout", client)
    assert store.list(audit.checkpoint_prefix(WF)) == [audit.checkpoint_key(WF, n) for n in range(1, 5)]
    assert verify(state)[0] == 0

    def remove(key: str) -> None:  # what an insider with s3:DeleteObject can do: delete markers
        client.delete_object(Bucket=bucket, Key=f"rollout/{key}")

    truncate(store, 2, remove)
    for seq in (3, 4):
        remove(audit.checkpoint_key(WF, seq))
    assert store.list(audit.checkpoint_prefix(WF)) == [audit.checkpoint_key(WF, n) for n in (1, 2)]
    code, doc = verify(state)
    assert code == 1 and any("truncated: records 3..4 were removed" in p for p in doc["problems"]), doc

    # and the locked versions themselves cannot be destroyed, not even by the bucket owner
    name = f"rollout/{audit.checkpoint_key(WF, 4)}"
    versions = [v for v in client.list_object_versions(Bucket=bucket, Prefix=name)["Versions"]]
    assert len(versions) == 1
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError, match="AccessDenied"):
        client.delete_object(Bucket=bucket, Key=name, VersionId=versions[0]["VersionId"])
    with pytest.raises(ClientError, match="AccessDenied"):
        client.delete_object(
            Bucket=bucket, Key=name, VersionId=versions[0]["VersionId"], BypassGovernanceRetention=True
        )
    assert (
        json.loads(client.get_object(Bucket=bucket, Key=name, VersionId=versions[0]["VersionId"])["Body"].read())[
            "checkpoint"
        ]["seq"]
        == 4
    )


# --- the pure check ---------------------------------------------------------------------------------


def _chain(n: int) -> list[audit.AuditRecord]:
    records: list[audit.AuditRecord] = []
    for seq in range(1, n + 1):
        head = records[-1].head if records else None
        records.append(
            audit.next_record(
                head,
                time="2026-03-01T09:00:00Z",
                operator="op",
                action="kill",
                workflow=WF,
                from_={},
                to={},
                release=None,
                evidence={},
                reason=f"r{seq}",
            )
        )
    return records


def test_check_checkpoints_is_pure_and_names_each_contradiction() -> None:
    chain = _chain(5)
    points = [audit.Checkpoint(WF, r.seq, r.hash, "t") for r in chain]
    assert audit.check_checkpoints(chain, points) == []
    assert audit.check_checkpoints(chain[:3], points) == [
        "the chain ends at seq 3 but a signed checkpoint of t covers seq 5 (truncated: records 4..5 were removed)"
    ]
    other = _chain(5)[:2] + [
        audit.next_record(
            chain[1].head,
            time="x",
            operator="op",
            action="kill",
            workflow=WF,
            from_={},
            to={},
            release=None,
            evidence={},
            reason="forged",
        )
    ]
    assert audit.check_checkpoints(other, points[:3]) == [
        "seq 3 differs from its signed checkpoint of t (the chain was rewritten from there on)"
    ]
    assert audit.check_checkpoints([b"garbage"], points[:1])[0].startswith("seq 1 differs")


def test_a_bundle_access_section_that_names_nobody_is_invalid(project: Path) -> None:
    from tests.conftest import edit_yaml

    def nobody(data: Any) -> None:
        data["access"]["approvers"] = {"emails": [], "groups": []}

    edit_yaml(project / "workflow.yaml", nobody)
    code, doc = rollout_json(project.parent.parent / "state", "validate", "--workflow", str(project))
    assert code == 2
    fields = " ".join(p["field"] + " " + p["message"] for p in doc["error"]["problems"])
    assert "access.approvers" in fields and "name at least one email or group" in fields

    def long_ttl(data: Any) -> None:
        data["access"]["approvers"] = {"emails": ["dana.whitfield@corp.example"]}
        data["access"]["approval_ttl"] = "90d"

    edit_yaml(project / "workflow.yaml", long_ttl)
    code, doc = rollout_json(project.parent.parent / "state", "validate", "--workflow", str(project))
    assert code == 2 and "approval_ttl must be between 1m and 30d" in json.dumps(doc["error"]["problems"])
