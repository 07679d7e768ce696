"""Publish the flag document to S3, where the gateway Lambdas mirror it from (infra FlagStore).

The controller renders the flag document from state; locally the flagd provider reads the file,
in AWS each gateway Lambda copies ``s3://<flag store>/flags/<workflow>.flagd.json`` every few
seconds (controller.gateway.lambda_handler.FlagMirror). Publishing from the CLI itself means a
``rollout kill`` reaches every gateway within one mirror interval, not at the next scheduled
reconcile.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from controller.errors import BackendUnavailable, Conflict, InvalidInput

__all__ = ["S3FlagSink", "s3_flag_sink"]

# A conditional put that lost to a concurrent writer (S3: 412; 409 while another put is in flight).
_LOST_RACE = ("PreconditionFailed", "412", "ConditionalRequestConflict", "409")


class S3FlagSink:
    """The flag store object as a ``FlagSink`` (SSE-KMS when a key is given). What may be written
    is decided by the one publish path (``controller.service.publish``), never here."""

    def __init__(
        self, bucket: str, key: str, *, client: Any = None, kms_key_id: str | None = None, max_attempts: int = 5
    ):
        self.bucket, self.key, self.kms_key_id = bucket, key, kms_key_id
        self.max_attempts = max(1, max_attempts)
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            from controller.adapters.s3 import default_s3_client

            self._client = default_s3_client()
        return self._client

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def swap(self, decide: Callable[[bytes | None], bytes | None]) -> bool:
        """Read, decide, write with ``If-Match`` on the ETag read (``If-None-Match: *`` when absent),
        so a concurrent writer between the read and the write is retried on a fresh read."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            for _ in range(self.max_attempts):
                try:
                    obj = self.client.get_object(Bucket=self.bucket, Key=self.key)
                    current, etag = obj["Body"].read(), obj.get("ETag")
                except ClientError as exc:
                    if exc.response.get("Error", {}).get("Code") not in ("NoSuchKey", "404"):
                        raise
                    current, etag = None, None
                data = decide(current)
                if data is None or data == current:
                    return False
                extra: dict[str, Any] = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
                if self.kms_key_id:
                    extra |= {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.kms_key_id}
                try:
                    self.client.put_object(
                        Bucket=self.bucket, Key=self.key, Body=data, ContentType="application/json", **extra
                    )
                    return True
                except ClientError as exc:
                    if exc.response.get("Error", {}).get("Code") not in _LOST_RACE:
                        raise
            raise Conflict(f"{self.describe()}: changed concurrently {self.max_attempts} times; retry.")
        except (BotoCoreError, ClientError) as exc:
            raise BackendUnavailable(f"cannot publish the flag document to {self.describe()}: {exc}") from exc


def s3_flag_sink(url: str, *, kms_key_id: str | None = None) -> S3FlagSink:
    """``s3://bucket/path/to/<workflow>.flagd.json`` -> a sink."""
    if not url.startswith("s3://") or "/" not in url[5:] or url.endswith("/"):
        raise InvalidInput(f"--flags-s3 {url!r}: expected s3://bucket/key (e.g. s3://flags/flags/wf.flagd.json).")
    bucket, key = url[5:].split("/", 1)
    return S3FlagSink(bucket, key, kms_key_id=kms_key_id)
