"""Lambda: the model gateway behind the HTTP API's JWT authorizer.

A thin entry point: everything (identity re-verification, kill switch, cohort flag,
boundaries, retrieval, model, audit record, fallback) is ``controller.gateway.lambda_handler`` over
``controller.gateway.handler``. It is imported on the first call, not at module load, so this module
imports anywhere without the gateway's dependencies (boto3, OpenFeature), and a packaging
problem shows up as that invocation's error (the API answers 5xx: fail closed).

``handle_lambda_event(event, context)`` takes the HTTP API payload v2.0 and returns a v2.0
response. It reads its configuration from the environment the ModelGateway component sets::

    ROLLOUT_WORKFLOW            bundle directory in the archive (relative to the task root, the cwd)
    ROLLOUT_STORE               s3://<flag store>/control-plane/<workflow>  (releases, read-only)
    ROLLOUT_FLAGS_BUCKET        flag store bucket
    ROLLOUT_FLAGS_KEY           flags/<workflow>.flagd.json
    ROLLOUT_AUDIT_BUCKET        audit bucket: request records under requests/
    ROLLOUT_AUDIT_KMS_KEY       audit key ARN: the bucket refuses puts without exactly this key
    ROLLOUT_SUBJECT_KEY_SECRET  Secrets Manager ARN of the key for subject pseudonyms
"""

from __future__ import annotations

from typing import Any

__all__ = ["handler"]


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from controller.gateway.lambda_handler import handle_lambda_event

    return handle_lambda_event(event, context)
