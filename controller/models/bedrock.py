"""Amazon Bedrock through the Converse API (boto3 ``bedrock-runtime``).

Retries, backoff and client-side rate limiting are botocore's ``adaptive`` retry mode; this
module only maps what is left after them onto the model port: throttling that outlasted the
retries is ``ModelThrottled``, every other failure (connection refused, timeouts, 5xx, access
denied, a malformed reply) is ``ModelUnavailable``, and the gateway answers with the fallback.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from controller.bundle.models import Guardrail
from controller.models.base import ModelRequest, ModelResponse, ModelThrottled, ModelUnavailable

__all__ = ["THROTTLING_CODES", "BedrockAdapter"]

THROTTLING_CODES = frozenset({"ThrottlingException", "TooManyRequestsException", "ServiceQuotaExceededException"})


class BedrockAdapter:
    """Calls ``converse`` on one region's Bedrock runtime; safe to share between threads.

    ``session`` (a ``boto3.Session``) and ``endpoint_url`` are injectable so tests run real
    serialization and SigV4 signing against a local server.
    """

    name = "bedrock"

    def __init__(
        self,
        *,
        region: str,
        endpoint_url: str | None = None,
        session: boto3.Session | None = None,
        connect_timeout_s: float = 3.0,
        read_timeout_s: float = 30.0,
        max_attempts: int = 3,
        guardrail: Guardrail | None = None,
    ):
        self.region = region
        self.guardrail = guardrail
        config = Config(
            connect_timeout=connect_timeout_s,
            read_timeout=read_timeout_s,
            # total_max_attempts counts the first call; botocore's "max_attempts" would not.
            retries={"mode": "adaptive", "total_max_attempts": max_attempts},
        )
        self._client = (session or boto3.Session()).client(
            "bedrock-runtime", region_name=region, endpoint_url=endpoint_url, config=config
        )

    def converse_arguments(self, request: ModelRequest) -> dict[str, Any]:
        """The ``converse`` keyword arguments for ``request`` (pure; shown by dry runs)."""
        kwargs: dict[str, Any] = {
            "modelId": request.model_id,
            "messages": [{"role": "user", "content": [{"text": request.prompt}]}],
            "inferenceConfig": {
                "maxTokens": request.max_tokens,
                "temperature": request.temperature,
            },
        }
        if request.system:
            kwargs["system"] = [{"text": request.system}]
        if self.guardrail is not None:
            kwargs["guardrailConfig"] = {
                "guardrailIdentifier": self.guardrail.id,
                "guardrailVersion": self.guardrail.version,
            }
        return kwargs

    def stream(self, request: ModelRequest) -> Iterator[str]:
        """The answer's text deltas from ``converse_stream`` (``contentBlockDelta`` events); an
        exception event mid-stream, or a broken connection, is ``ModelUnavailable``."""
        try:
            reply = self._client.converse_stream(**self.converse_arguments(request))
        except (ClientError, BotoCoreError) as exc:
            raise self._error(request, exc) from exc
        try:
            for event in reply["stream"]:
                if "contentBlockDelta" in event:
                    text = event["contentBlockDelta"].get("delta", {}).get("text")
                    if text:
                        yield text
                elif any(k.endswith("Exception") for k in event):
                    code = next(k for k in event if k.endswith("Exception"))
                    raise ModelUnavailable(f"Bedrock {request.model_id} broke off the stream: {code}", code=code)
        except (ClientError, BotoCoreError) as exc:
            raise self._error(request, exc) from exc
        except (KeyError, TypeError, AttributeError) as exc:
            raise ModelUnavailable(f"Bedrock {request.model_id} streamed a malformed event: {exc!r}",
                                   code="MalformedResponse") from exc

    def _error(self, request: ModelRequest, exc: Exception) -> ModelUnavailable | ModelThrottled:
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            code = str(error.get("Code") or "Unknown")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            message = f"Bedrock {request.model_id} in {self.region}: {code} ({status}): {error.get('Message', '')}"
            if code in THROTTLING_CODES or status == 429:
                return ModelThrottled(message, code=code)
            return ModelUnavailable(message, code=code)
        return ModelUnavailable(f"Bedrock {request.model_id} in {self.region} is unreachable: {exc}",
                                code=type(exc).__name__)

    def complete(self, request: ModelRequest) -> ModelResponse:
        started = time.perf_counter()
        try:
            reply = self._client.converse(**self.converse_arguments(request))
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code") or "Unknown")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            message = f"Bedrock {request.model_id} in {self.region}: {code} ({status}): {error.get('Message', '')}"
            if code in THROTTLING_CODES or status == 429:
                raise ModelThrottled(message, code=code) from exc
            raise ModelUnavailable(message, code=code) from exc
        except BotoCoreError as exc:  # connection refused, connect/read timeouts, bad endpoint
            raise ModelUnavailable(
                f"Bedrock {request.model_id} in {self.region} is unreachable: {exc}",
                code=type(exc).__name__,
            ) from exc
        latency_ms = (time.perf_counter() - started) * 1000
        try:
            blocks = reply["output"]["message"]["content"]
            text = "".join(b["text"] for b in blocks if "text" in b)
            usage = reply.get("usage", {})
            return ModelResponse(
                text=text,
                model_id=request.model_id,
                input_tokens=int(usage.get("inputTokens", 0)),
                output_tokens=int(usage.get("outputTokens", 0)),
                latency_ms=latency_ms,
                stop_reason=reply.get("stopReason"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelUnavailable(
                f"Bedrock {request.model_id} returned a reply without output text: {exc!r}",
                code="MalformedResponse",
            ) from exc
