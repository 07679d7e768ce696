"""Eval evidence that cannot be forged by editing files.

Results are signed by the evaluator's key (``controller.adapters.signing``: a local P-256 key under
the state directory, or an AWS KMS key on moto's server), and every loader re-judges a verdict
against the thresholds of the release it judged. Each forgery below is consistent (content hash
recomputed, file renamed to match) and is refused: ``eval show`` exits 2 naming the result, and
``promote`` refuses (exit 3) with the result's problem as its reason.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from controller.adapters.signing import KmsSigner, LocalSigner, open_signer, sign, verify
from controller.core.canonical import canonical_json, sha256_hex
from controller.errors import InvalidInput
from controller.evals.results import load_results, rejudge, result_key, signature_key
from controller.evals.scoring import judge
from controller.service.compose import open_local_store
from tests.test_cli_rollout import (  # the CLI helpers
    OP,
    create_release,
    rollout,
    rollout_json,
    store_eval,
)

try:
    from tests.fakes.s3 import FAKE_AWS_ENV, shared_s3_server
except ModuleNotFoundError:
    from fakes.s3 import FAKE_AWS_ENV, shared_s3_server


@pytest.fixture
def state(project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """As in tests/test_cli_rollout.py: no bake time, the OS user is nobody in particular."""
    from tests.conftest import edit_yaml

    def no_bake(data: Any) -> None:
        for cohort in data["rollout"]["cohorts"]:
            cohort["bake_time"] = "0h"

    edit_yaml(project / "workflow.yaml", no_bake)
    monkeypatch.setattr("getpass.getuser", lambda: "os-user")
    monkeypatch.delenv("ROLLOUT_STORE", raising=False)
    monkeypatch.delenv("ROLLOUT_SIGNING_KEY", raising=False)
    monkeypatch.delenv("ROLLOUT_TOKEN", raising=False)
    return tmp_path / "state"


# --- helpers: forge a stored result consistently --------------------------------------------------


def stored(state: Path, digest: str) -> tuple[str, dict[str, Any]]:
    store = open_local_store(state)
    [key] = store.list(f"evals/{digest}/")
    got = store.get(key)
    assert got is not None
    return key, json.loads(got.data)


def put(state: Path, key: str, data: bytes) -> None:
    path = state / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def forge(state: Path, digest: str, edit: Any, *, to_digest: str | None = None, resign: Any = None) -> str:
    """Edit the stored result, recompute its verdict and content hash, store it under the name
    that matches, remove the original; ``resign``: a signer to sign the forgery with."""
    key, raw = stored(state, digest)
    edit(raw)
    raw["verdict"] = judge(raw["cases"], raw["thresholds"]).verdict.value
    raw["reasons"] = list(judge(raw["cases"], raw["thresholds"]).reasons)
    raw.pop("content_hash")
    raw["content_hash"] = sha256_hex(canonical_json(raw))
    new_key = result_key(raw)
    if to_digest is not None:
        new_key = new_key.replace(digest, to_digest)
    (state / key).unlink()
    data = canonical_json(raw)
    put(state, new_key, data)
    old_sig = state / signature_key(key)
    if resign is not None:
        put(state, signature_key(new_key), sign(resign, data))
    elif old_sig.exists() and new_key != key:
        put(state, signature_key(new_key), old_sig.read_bytes())  # the original signature, moved along
    return new_key


def failing_release(state: Path) -> str:
    digest = create_release(state)
    store_eval(state, digest, "FAIL")
    return digest


def refused(state: Path, digest: str, fragment: str) -> None:
    shown = rollout(state, "eval", "show", "--release", digest)
    assert shown.exit_code == 2, shown.output
    assert fragment in shown.stderr and "cannot be used as evidence" in shown.stderr, shown.stderr
    code, doc = rollout_json(state, "promote", "--cohort", "internal", "--release", digest, "--operator", OP)
    assert code == 3, doc
    [reason] = doc["reasons"]
    assert reason["code"] == "eval-unreadable" and fragment in reason["message"], reason


# --- forged evals are refused ------------------------------------------------------------------


def test_a_genuine_signed_pass_is_accepted(state: Path) -> None:
    digest = create_release(state)
    store_eval(state, digest, "PASS")
    assert rollout(state, "eval", "show", "--release", digest).exit_code == 0
    code, doc = rollout_json(state, "promote", "--cohort", "internal", "--release", digest, "--operator", OP)
    assert code == 0, doc


def test_edited_thresholds_and_rehash_is_refused(state: Path) -> None:
    digest = failing_release(state)
    forge(state, digest, lambda raw: raw.update(thresholds={k: 0.5 for k in raw["thresholds"]}))
    refused(state, digest, "its signature is of other bytes")


def test_all_cases_marked_passed_and_rehash_is_refused(state: Path) -> None:
    digest = failing_release(state)

    def all_pass(raw: dict[str, Any]) -> None:
        for case in raw["cases"]:
            case["passed"], case["failed"] = True, []

    forge(state, digest, all_pass)
    refused(state, digest, "its signature is of other bytes")


def test_a_forgery_keeping_the_name_fails_its_signature(state: Path) -> None:
    digest = failing_release(state)
    key, raw = stored(state, digest)
    sig = (state / signature_key(key)).read_bytes()
    raw["environment"]["operator"] = "someone-else"  # same name: finished_at and hash prefix kept
    raw.pop("content_hash")
    raw["content_hash"] = sha256_hex(canonical_json(raw))
    new_key = result_key(raw)
    (state / key).unlink()
    put(state, new_key, canonical_json(raw))
    put(state, signature_key(new_key), sig)
    refused(state, digest, "its signature is of other bytes")


def test_a_forgery_signed_by_another_key_is_refused(state: Path, tmp_path: Path) -> None:
    digest = failing_release(state)
    mine = LocalSigner(tmp_path / "attacker")
    forge(state, digest, lambda raw: raw.update(thresholds={k: 0.5 for k in raw["thresholds"]}), resign=mine)
    refused(state, digest, f"it is signed by key '{mine.key_id}', not the trusted key")


def test_thresholds_are_the_releases_even_when_the_signature_is_good(state: Path) -> None:
    """An evaluator key used to sign a result judged against other thresholds (a compromised or
    buggy evaluator) still does not pass: the release's own thresholds decide."""
    digest = failing_release(state)
    forge(
        state, digest, lambda raw: raw.update(thresholds={k: 0.5 for k in raw["thresholds"]}), resign=LocalSigner(state)
    )
    refused(state, digest, "was judged against thresholds")


def test_a_result_moved_to_another_release_is_refused(state: Path) -> None:
    failing = failing_release(state)
    from tests.test_approvals import create_release_of_another_digest

    other = create_release_of_another_digest(state)
    forge(state, failing, lambda raw: None, to_digest=other)
    refused(state, other, "a result of another release")


def test_an_unsigned_result_is_refused_and_eval_list_says_so(state: Path) -> None:
    digest = create_release(state)
    store_eval(state, digest, "PASS")
    key, _ = stored(state, digest)
    (state / signature_key(key)).unlink()
    refused(state, digest, "is not signed by the evaluator's key")
    listed = rollout(state, "eval", "list")
    assert listed.exit_code == 2 and "is not signed" in listed.stderr


def test_load_results_checks_are_opt_in_per_argument_and_rejudge_refuses(state: Path) -> None:
    digest = create_release(state)
    store_eval(state, digest, "PASS")
    store = open_local_store(state)
    [result] = load_results(store, digest, verifier=LocalSigner(state))
    with pytest.raises(InvalidInput, match="was judged against thresholds"):
        rejudge([result], {k: 1.0 for k in result.raw["thresholds"]} | {"correctness": 0.5})


# --- the keys ---------------------------------------------------------------------------------------


def test_the_local_key_is_private_and_never_replaced(tmp_path: Path) -> None:
    signer = LocalSigner(tmp_path)
    envelope = sign(signer, b"evidence")
    assert stat.S_IMODE(os.stat(signer.path).st_mode) == 0o600
    again = LocalSigner(tmp_path)
    assert again.key_id == signer.key_id and verify(again, b"evidence", envelope) is None
    assert (
        verify(again, b"evidencE", envelope)
        == "its signature is of other bytes (the result was changed after it was signed)"
    )
    doc = json.loads(envelope)
    doc["signature"] = sign(signer, b"other").decode()[-20:]
    assert verify(again, b"evidence", json.dumps(doc).encode()) == "its signature does not verify with the trusted key"
    os.chmod(signer.path, 0o644)
    with pytest.raises(InvalidInput, match="readable by its owner only"):
        _ = LocalSigner(tmp_path).key_id
    with pytest.raises(InvalidInput, match="there is no signing key"):
        LocalSigner(tmp_path / "empty").public_key()
    with pytest.raises(InvalidInput, match="ROLLOUT_SIGNING_KEY"):
        open_signer("vault:x", tmp_path)


@pytest.fixture
def kms(monkeypatch: pytest.MonkeyPatch) -> Any:
    for name, value in FAKE_AWS_ENV.items():
        monkeypatch.setenv(name, value)
    import boto3

    return boto3.client("kms", endpoint_url=shared_s3_server(), region_name="us-east-1")


def test_a_kms_key_signs_and_only_it_verifies(kms: Any, tmp_path: Path) -> None:
    key = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
    other = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
    signer = open_signer(f"kms:{key}", tmp_path, kms_client=kms)
    assert isinstance(signer, KmsSigner) and signer.key_id == key
    envelope = sign(signer, b"an eval result")
    assert verify(KmsSigner(key, kms), b"an eval result", envelope) is None
    assert verify(KmsSigner(key, kms), b"an eval resulT", envelope) is not None
    assert "not the trusted key" in str(verify(KmsSigner(other, kms), b"an eval result", envelope))
    # KMS's own verification agrees with the local check of its public key
    digest = json.loads(envelope)["sha256"]
    import base64

    ok = kms.verify(
        KeyId=key,
        Message=bytes.fromhex(digest),
        MessageType="RAW",
        Signature=base64.b64decode(json.loads(envelope)["signature"]),
        SigningAlgorithm="ECDSA_SHA_256",
    )
    assert ok["SignatureValid"] is True
    symmetric = kms.create_key()["KeyMetadata"]["Arn"]
    with pytest.raises(Exception, match="ECC_NIST_P256 SIGN_VERIFY|KMS"):
        _ = KmsSigner(symmetric, kms).key_id


def test_an_eval_signed_in_kms_is_accepted_by_promote(state: Path, kms: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    key = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
    monkeypatch.setenv("ROLLOUT_SIGNING_KEY", f"kms:{key}")
    monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", shared_s3_server())
    digest = create_release(state)
    from controller.core.release import load_release
    from controller.evals.results import build_result, store_result
    from controller.evals.scoring import CaseResult

    store = open_local_store(state)
    release = load_release(store, digest)
    thresholds = {str(k): v for k, v in release.workflow.eval.thresholds.items()}
    at = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    cases = [CaseResult(f"c-{c}", c, True, (), "answered", 1.0) for c in thresholds]
    result = build_result(
        manifest=release.manifest, cases=cases, thresholds=thresholds, started_at=at, finished_at=at, operator="t"
    )
    store_result(store, result, signer=open_signer(f"kms:{key}", state))
    code, doc = rollout_json(state, "promote", "--cohort", "internal", "--release", digest, "--operator", OP)
    assert code == 0, doc
    monkeypatch.setenv("ROLLOUT_SIGNING_KEY", "local")  # the local key never signed it (there is none)
    code, doc = rollout_json(state, "status", "--operator", OP)
    assert "nothing signed here can be verified" in doc["evals"][digest]["error"]
    from controller.adapters.signing import LocalSigner

    LocalSigner(state).seal(b"x")  # now there is a local key, and it is not the one that signed
    code, doc = rollout_json(state, "status", "--operator", OP)
    assert "not the trusted key" in doc["evals"][digest]["error"]
