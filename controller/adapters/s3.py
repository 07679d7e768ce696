"""``S3Store``: the Store at scale, on S3 conditional writes (no lock service needed).

- create-only: ``PutObject`` with ``If-None-Match: *``.
- compare-and-swap: ``PutObject`` with ``If-Match: <etag>`` (``If-None-Match: *`` when the
  caller expects the key to be absent). The version token is the object's ETag, exactly as S3
  returns it.
- 412 PreconditionFailed, 409 ConditionalRequestConflict (another conditional write to the key
  was in flight) and 404 on an ``If-Match`` write all mean "someone else won": ``Conflict``
  (``AlreadyExists`` from ``create``). S3 applies a PUT whole or not at all, so readers never
  see a partial object.
- With ``kms_key_id`` every write asks for SSE-KMS with that key.
- Unreachable endpoint, missing credentials, access denied, missing bucket, 5xx after the
  client's retries: ``BackendUnavailable``.

Caveat inherited from HTTP: when a conditional PUT lands but its response is lost, botocore's
retry of it fails its own precondition and reports ``Conflict`` for a write that happened.
Callers already re-read and re-decide on ``Conflict``, which is safe when decisions are
idempotent (the controller's are: "move the candidate to cohort X" is a no-op once it is there).
"""

from __future__ import annotations

from typing import Any, NoReturn

from botocore.exceptions import (
    ClientError,
    CredentialRetrievalError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from controller.core.keys import validate_key, validate_prefix
from controller.errors import BackendUnavailable, Conflict, InvalidInput
from controller.ports import AlreadyExists, Versioned

__all__ = ["S3Store", "default_s3_client"]

_UNREACHABLE = (
    BotoConnectionError,  # EndpointConnectionError, ConnectTimeoutError, ProxyConnectionError...
    HTTPClientError,  # ConnectionClosedError, ReadTimeoutError
    NoCredentialsError,
    PartialCredentialsError,
    CredentialRetrievalError,
)
_CONFLICT_CODES = {"PreconditionFailed", "ConditionalRequestConflict"}
_UNAVAILABLE_CODES = {
    "NoSuchBucket",
    "AccessDenied",
    "AllAccessDisabled",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "KMS.DisabledException",
    "KMS.NotFoundException",
    "KMS.KMSInvalidStateException",
    "NotImplemented",  # an S3-compatible server without conditional writes
}


def default_s3_client() -> Any:
    """A boto3 S3 client from the ambient AWS configuration (credentials, region, and the
    endpoint from ``AWS_ENDPOINT_URL_S3``/``AWS_ENDPOINT_URL``, which boto3 honours itself),
    with bounded timeouts so an unreachable endpoint fails in seconds, not minutes."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        config=Config(
            connect_timeout=5,
            read_timeout=30,
            retries={"mode": "standard", "max_attempts": 3},
        ),
    )


class S3Store:
    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        client: Any = None,
        *,
        kms_key_id: str | None = None,
    ) -> None:
        if not bucket or "/" in bucket:
            raise InvalidInput(f"Invalid S3 bucket name {bucket!r}.")
        prefix = prefix.strip("/")
        if prefix:
            validate_key(prefix)
        self.bucket = bucket
        self.prefix = prefix
        self.kms_key_id = kms_key_id
        self._client = client if client is not None else default_s3_client()

    # -- Store -------------------------------------------------------------------------------

    def get(self, key: str) -> Versioned | None:
        name = self._name(key)
        try:
            response = self._client.get_object(Bucket=self.bucket, Key=name)
            data = response["Body"].read()
        except ClientError as exc:
            if _code(exc) in {"NoSuchKey", "404"}:
                return None
            self._raise_client_error(exc, "read", key)
        except _UNREACHABLE as exc:
            raise self._unreachable(exc, "read", key) from exc
        return Versioned(data, response["ETag"])

    def create(self, key: str, data: bytes) -> None:
        try:
            self._put(key, data, IfNoneMatch="*")
        except Conflict as exc:
            raise AlreadyExists(f"{self.describe()}: {key!r} already exists.") from exc

    def replace(self, key: str, data: bytes, *, expected: str | None) -> str:
        if expected is None:
            return self._put(key, data, IfNoneMatch="*")
        return self._put(key, data, IfMatch=expected)

    def list(self, prefix: str) -> list[str]:
        validate_prefix(prefix)
        base = f"{self.prefix}/" if self.prefix else ""
        keys: list[str] = []
        try:
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=base + prefix
            )
            for page in pages:
                for obj in page.get("Contents", ()):
                    key = obj["Key"][len(base) :]
                    if _is_key(key):  # objects written by others with unsafe names are not ours
                        keys.append(key)
        except ClientError as exc:
            self._raise_client_error(exc, "list", prefix)
        except _UNREACHABLE as exc:
            raise self._unreachable(exc, "list", prefix) from exc
        return sorted(keys)

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def retained(self, prefix: str) -> list[tuple[str, bytes]]:
        """Every version still held under ``prefix`` (key, bytes), delete markers skipped: in a
        bucket with Object Lock a locked version outlives a delete marker or a newer version, so
        the audit checkpoints are read from here (``RolloutService.checkpoints``)."""
        validate_prefix(prefix)
        base = f"{self.prefix}/" if self.prefix else ""
        out: list[tuple[str, bytes]] = []
        try:
            paginator = self._client.get_paginator("list_object_versions")
            pages = paginator.paginate(Bucket=self.bucket, Prefix=base + prefix)
            for page in pages:
                for version in page.get("Versions", ()):
                    key = version["Key"][len(base) :]
                    if _is_key(key):
                        name, vid = version["Key"], version["VersionId"]
                        got = self._client.get_object(Bucket=self.bucket, Key=name, VersionId=vid)
                        out.append((key, got["Body"].read()))
        except ClientError as exc:
            self._raise_client_error(exc, "list versions of", prefix)
        except _UNREACHABLE as exc:
            raise self._unreachable(exc, "list versions of", prefix) from exc
        return sorted(out)

    # -- internals ---------------------------------------------------------------------------

    def _name(self, key: str) -> str:
        validate_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _put(self, key: str, data: bytes, **condition: str) -> str:
        name = self._name(key)
        extra: dict[str, str] = {}
        if self.kms_key_id:
            extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.kms_key_id}
        try:
            response = self._client.put_object(
                Bucket=self.bucket, Key=name, Body=bytes(data), **condition, **extra
            )
        except ClientError as exc:
            code = _code(exc)
            # 404 on If-Match: the object we expected is gone; someone else changed it.
            if code in _CONFLICT_CODES or (code in {"NoSuchKey", "404"} and "IfMatch" in condition):
                raise Conflict(
                    f"{self.describe()}: {key!r} changed concurrently "
                    f"({_describe_condition(condition)} failed: {code}); re-read and retry."
                ) from exc
            self._raise_client_error(exc, "write", key)
        except _UNREACHABLE as exc:
            raise self._unreachable(exc, "write", key) from exc
        return response["ETag"]

    def _raise_client_error(self, exc: ClientError, op: str, key: str) -> NoReturn:
        """S3 errors meaning "can't use the store" become BackendUnavailable; any other is a
        request we built wrong, a bug that keeps its traceback."""
        code = _code(exc)
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in _UNAVAILABLE_CODES or code.startswith("KMS.") or status >= 500 or status == 403:
            message = exc.response.get("Error", {}).get("Message", "")
            # S3 answers a GET of a *missing* key with 403, not 404, to a caller without
            # s3:ListBucket: an absent key then looks like a denied one.
            hint = (" (a missing key reads as 403 unless the caller may s3:ListBucket this bucket)"
                    if op == "read" and status == 403 else "")  # fmt: skip
            raise BackendUnavailable(
                f"S3 store {self.describe()}: cannot {op} {key!r}: {code} {message}".rstrip() + hint + "."
            ) from exc
        raise exc

    def _unreachable(self, exc: Exception, op: str, key: str) -> BackendUnavailable:
        return BackendUnavailable(f"S3 store {self.describe()}: cannot {op} {key!r}: {exc}.")


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _describe_condition(condition: dict[str, str]) -> str:
    if "IfMatch" in condition:
        return f"If-Match {condition['IfMatch']}"
    return "If-None-Match *"


def _is_key(key: str) -> bool:
    try:
        validate_key(key)
    except InvalidInput:
        return False
    return True
