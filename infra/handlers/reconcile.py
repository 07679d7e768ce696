"""Lambda: scheduled reconcile -- roll a failing release back without a person.

The EventBridge rule of the ScheduledReconcile component invokes this on the stack's schedule.
It runs ``controller.service.rollout.RolloutService.reconcile`` (imported on the first call) against the
S3 store -- complete logged-but-unapplied records, roll back every live release whose latest
eval failed (audited), re-render the flag document -- and publishes the rendered document to
the flag store, where the gateways read it.

Publishing never releases a kill: if the live document has the kill switch engaged and the
rendered one does not (an operator's fail-safe kill that reached the flags but not the state),
the live document is left as it is and the report says so. Kill > rollback > promote.

Environment (set by the ScheduledReconcile component)::

    ROLLOUT_WORKFLOW        bundle directory in the archive (relative to the task root, the cwd)
    ROLLOUT_STORE           s3://<flag store>/control-plane/<workflow>  (state, evals, audit)
    ROLLOUT_STORE_KMS_KEY   flag store key ARN: the bucket refuses puts without exactly this key
    ROLLOUT_FLAGS_BUCKET    flag store bucket
    ROLLOUT_FLAGS_KEY       flags/<workflow>.flagd.json
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["handler", "kill_engaged", "publish_decision", "run_reconcile"]

OPERATOR = "scheduled-reconcile"


def kill_engaged(document: bytes | None, kill_switch_flag: str) -> bool:
    """Whether a flagd document serves its kill switch's ``true`` variant by default."""
    if not document:
        return False
    try:
        flag = json.loads(document)["flags"][kill_switch_flag]
        return flag["variants"][flag["defaultVariant"]] is True
    except (ValueError, KeyError, TypeError):
        return False


def publish_decision(live: bytes | None, rendered: bytes, kill_switch_flag: str) -> str | None:
    """Why the rendered document must *not* replace the live one, or None to publish it."""
    if live == rendered:
        return "the live flag document is already the rendered one"
    if kill_engaged(live, kill_switch_flag) and not kill_engaged(rendered, kill_switch_flag):
        return (
            "the live flag document has the kill switch engaged but the state does not: left "
            "engaged; record the kill (`rollout kill`) or release it (`rollout kill --release --reason TEXT`)"
        )
    return None


def _get(s3: Any, bucket: str, key: str) -> bytes | None:
    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception as exc:
        if getattr(exc, "response", {}).get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return None
        raise


def run_reconcile(
    bundle: Any,
    store: Any,
    s3: Any,
    *,
    flags_bucket: str,
    flags_key: str,
    kms_key_id: str,
    workdir: Path,
) -> dict[str, Any]:
    """Reconcile against ``store``; publish the rendered flags to S3 unless that would un-kill."""
    from controller.service.rollout import RolloutService

    flags_path = workdir / "flags" / f"{bundle.id}.flagd.json"
    service = RolloutService(bundle.workflow, store, flags_path)
    report = service.reconcile(operator=OPERATOR, trigger="scheduled reconcile").to_dict()
    rendered = flags_path.read_bytes()
    held = publish_decision(
        _get(s3, flags_bucket, flags_key), rendered, bundle.workflow.rollout.kill_switch_flag
    )
    if held is None:
        s3.put_object(
            Bucket=flags_bucket,
            Key=flags_key,
            Body=rendered,
            ContentType="application/json",
            ServerSideEncryption="aws:kms",
            SSEKMSKeyId=kms_key_id,
        )
    report["published"] = {"bucket": flags_bucket, "key": flags_key, "written": held is None,
                           "held_because": held}  # fmt: skip
    return report


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    import boto3  # only in the Lambda runtime

    from controller.adapters import open_store
    from controller.bundle.models import load_bundle

    kms_key = os.environ["ROLLOUT_STORE_KMS_KEY"]
    bundle = load_bundle(Path(os.environ["ROLLOUT_WORKFLOW"]))
    store = open_store(os.environ["ROLLOUT_STORE"], kms_key_id=kms_key)
    with tempfile.TemporaryDirectory(prefix="reconcile-") as tmp:
        return run_reconcile(
            bundle,
            store,
            boto3.client("s3"),
            flags_bucket=os.environ["ROLLOUT_FLAGS_BUCKET"],
            flags_key=os.environ["ROLLOUT_FLAGS_KEY"],
            kms_key_id=kms_key,
            workdir=Path(tmp),
        )
