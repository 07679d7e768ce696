"""The gateway in AWS Lambda: the same Gateway and HTTP handler as ``rollout serve``.

Configuration comes from the function's environment (set by infra/components/model_gateway.py):
    ROLLOUT_WORKFLOW       path of the bundle packaged in the archive (deployed policy)
    ROLLOUT_STORE          s3://bucket/prefix of the controller's store (releases, state)
    ROLLOUT_FLAGS_BUCKET / ROLLOUT_FLAGS_KEY   the flag document the controller writes
    ROLLOUT_AUDIT_BUCKET / ROLLOUT_AUDIT_KMS_KEY   where request records go (batched, SSE-KMS)
    ROLLOUT_SUBJECT_KEY_SECRET   Secrets Manager id of the key for subject pseudonyms
                                 (required: without it the function refuses to start)
The flag document is copied to /tmp at most every ``FLAG_SYNC_SECONDS``; the flagd provider
polls that file. A flag document that cannot be fetched leaves the last good copy for at
most ``FLAG_MAX_STALENESS_SECONDS``, after which the copy is removed and the provider fails
closed (the AI path is off, the fallback answers).
"""

from __future__ import annotations

import base64
import os
import threading
import time
from pathlib import Path
from typing import Any

from controller.adapters.atomic import write_atomic
from controller.gateway.http import handle

__all__ = ["FlagMirror", "handle_lambda_event"]

FLAG_SYNC_SECONDS = 5.0
FLAG_MAX_STALENESS_SECONDS = 60.0
FLAG_DIR = Path("/tmp")  # the only writable directory in Lambda


class FlagMirror:
    """Keeps a local copy of the S3 flag document fresh; removes it when it goes stale."""

    def __init__(self, client: Any, bucket: str, key: str, path: Path, *, clock: Any = time.monotonic):
        self.client, self.bucket, self.key, self.path, self.clock = client, bucket, key, path, clock
        self._etag: str | None = None
        self._last_ok = float("-inf")
        self._last_try = float("-inf")
        self._lock = threading.Lock()

    def sync(self) -> None:
        now = self.clock()
        with self._lock:
            if now - self._last_try < FLAG_SYNC_SECONDS:
                return
            self._last_try = now
            try:
                kwargs = {"Bucket": self.bucket, "Key": self.key}
                if self._etag and self.path.exists():
                    kwargs["IfNoneMatch"] = self._etag
                obj = self.client.get_object(**kwargs)
                data = obj["Body"].read()
                write_atomic(self.path, data)
                self._etag = obj.get("ETag")
                self._last_ok = now
            except Exception as exc:  # noqa: BLE001 - any failure: keep the last copy until stale
                if getattr(exc, "response", {}).get("Error", {}).get("Code") in ("304", "NotModified"):
                    self._last_ok = now
                elif now - self._last_ok > FLAG_MAX_STALENESS_SECONDS:
                    self.path.unlink(missing_ok=True)


_lock = threading.Lock()
_state: dict[str, Any] = {}


def _build() -> dict[str, Any]:
    from controller.service.compose import build_lambda_gateway

    gateway, mirror = build_lambda_gateway(os.environ, flag_dir=FLAG_DIR)
    return {"gateway": gateway, "mirror": mirror}


def handle_lambda_event(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """API Gateway HTTP API (payload v2) -> the shared HTTP handler -> Lambda proxy response."""
    with _lock:
        if not _state:
            _state.update(_build())
    _state["mirror"].sync()
    body = event.get("body") or ""
    raw = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode("utf-8")
    http = event.get("requestContext", {}).get("http", {})
    status, headers, payload = handle(
        _state["gateway"], http.get("method", "POST"), event.get("rawPath", "/v1/ask"), event.get("headers") or {}, raw
    )
    return {"statusCode": status, "headers": headers, "body": payload.decode("utf-8"), "isBase64Encoded": False}
