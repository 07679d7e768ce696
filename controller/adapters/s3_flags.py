"""Publish the flag document to S3, where the gateway Lambdas mirror it from (infra FlagStore).

The controller renders the flag document from state; locally the flagd provider reads the file,
in AWS each gateway Lambda copies ``s3://<flag store>/flags/<workflow>.flagd.json`` every few
seconds (controller.gateway.lambda_handler.FlagMirror). Publishing from the CLI itself means a
``rollout kill`` reaches every gateway within one mirror interval, not at the next scheduled
reconcile.
"""

from __future__ import annotations

import hashlib
from typing import Any

from controller.errors import BackendUnavailable, InvalidInput

__all__ = ["S3FlagSink", "s3_flag_sink"]


class S3FlagSink:
    """Write the document when its bytes differ from what is there (SSE-KMS when a key is given)."""

    def __init__(self, bucket: str, key: str, *, client: Any = None, kms_key_id: str | None = None):
        self.bucket, self.key, self.kms_key_id = bucket, key, kms_key_id
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            from controller.adapters.s3 import default_s3_client

            self._client = default_s3_client()
        return self._client

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def publish(self, data: bytes) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            try:
                current = self.client.get_object(Bucket=self.bucket, Key=self.key)["Body"].read()
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") not in ("NoSuchKey", "404"):
                    raise
                current = None
            if current is not None and hashlib.sha256(current).digest() == hashlib.sha256(data).digest():
                return False
            extra: dict[str, Any] = {}
            if self.kms_key_id:
                extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.kms_key_id}
            self.client.put_object(
                Bucket=self.bucket, Key=self.key, Body=data, ContentType="application/json", **extra
            )
            return True
        except (BotoCoreError, ClientError) as exc:
            raise BackendUnavailable(f"cannot publish the flag document to {self.describe()}: {exc}") from exc


def s3_flag_sink(url: str, *, kms_key_id: str | None = None) -> S3FlagSink:
    """``s3://bucket/path/to/<workflow>.flagd.json`` -> a sink."""
    if not url.startswith("s3://") or "/" not in url[5:] or url.endswith("/"):
        raise InvalidInput(f"--flags-s3 {url!r}: expected s3://bucket/key (e.g. s3://flags/flags/wf.flagd.json).")
    bucket, key = url[5:].split("/", 1)
    return S3FlagSink(bucket, key, kms_key_id=kms_key_id)
