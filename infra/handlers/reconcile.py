"""Lambda: scheduled reconcile -- roll a failing release back without a person.

The EventBridge rule of the ScheduledReconcile component invokes this on the stack's schedule.
It runs ``controller.service.rollout.RolloutService.reconcile`` (imported on the first call) against the
S3 store -- complete logged-but-unapplied records, roll back every live release whose latest
eval failed (audited), re-render the flag document -- and publishes the rendered document to
the flag store, where the gateways read it.

Publishing never releases a kill: if the live document has the kill switch engaged and the
rendered one does not (an operator's fail-safe kill that reached the flags but not the state),
the live document is left as it is and the report says so (``controller.core.flags.publish_hold``,
applied by ``controller.service.publish`` to every sink alike). Kill > rollback > promote.

Environment (set by the ScheduledReconcile component)::

    ROLLOUT_WORKFLOW        bundle directory in the archive (relative to the task root, the cwd)
    ROLLOUT_STORE           s3://<flag store>/control-plane/<workflow>  (state, evals, audit)
    ROLLOUT_STORE_KMS_KEY   flag store key ARN: the bucket refuses puts without exactly this key
    ROLLOUT_FLAGS_BUCKET    flag store bucket
    ROLLOUT_FLAGS_KEY       flags/<workflow>.flagd.json
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["handler", "run_reconcile"]

OPERATOR = "scheduled-reconcile"


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
    """Reconcile against ``store`` and publish to the S3 flag store through the one publish path
    (``controller.service.publish``): the same never-un-kill rule as every other sink."""
    from controller.adapters.s3_flags import S3FlagSink
    from controller.service.compose import rollout_service

    flags_path = workdir / "flags" / f"{bundle.id}.flagd.json"
    sink = S3FlagSink(flags_bucket, flags_key, client=s3, kms_key_id=kms_key_id)
    service = rollout_service(bundle.workflow, store, flags_path, flag_sinks=[sink])
    report = service.reconcile(operator=OPERATOR, trigger="scheduled reconcile").to_dict()
    flags = report.get("flags") or {}
    held = next((h["held_because"] for h in flags.get("held", []) if h["sink"] == sink.describe()), None)
    report["published"] = {"bucket": flags_bucket, "key": flags_key,
                           "written": sink.describe() in flags.get("published", []),
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
