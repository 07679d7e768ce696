"""The one place that turns the bundle's ``surface.endpoint`` into a model adapter."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from controller.bundle.models import EndpointKind
from controller.core.retrieval import Retriever
from controller.models.base import ModelAdapter
from controller.models.local import LocalExtractiveAdapter
from controller.models.openai import DEFAULT_API_KEY_ENV, OpenAICompatibleAdapter

if TYPE_CHECKING:
    import boto3

    from controller.bundle.models import Endpoint, Guardrail

__all__ = ["make_adapter"]


def make_adapter(
    endpoint: Endpoint,
    *,
    retriever: Retriever | None = None,
    endpoint_url: str | None = None,
    timeout_s: float = 30.0,
    connect_timeout_s: float = 3.0,
    max_attempts: int = 3,
    guardrail: Guardrail | None = None,
    session: boto3.Session | None = None,
    api_key_env: str | None = DEFAULT_API_KEY_ENV,
    auth: Literal["bearer", "api-key"] = "bearer",
    api_version: str | None = None,
    contact: str | None = None,
    use_case: str | None = None,
) -> ModelAdapter:
    """The adapter for ``endpoint``.

    - ``local``: the offline extractive baseline over ``retriever``'s corpus; ``contact``
      (the bundle's ``fallback.contact``) is named in its "not in the docs" answer; ``use_case``
      chooses its wording (``controller.models.local.BASELINE_HEADERS``).
    - ``bedrock``: Converse in ``endpoint.region`` (``endpoint_url`` overrides the AWS
      endpoint, e.g. a VPC endpoint or a test server; ``guardrail`` is the bundle's).
    - ``openai-compatible``: ``endpoint_url`` or ``endpoint.base_url``; the key is read from
      the environment variable ``api_key_env``.

    ``timeout_s`` is the read timeout of one attempt; ``max_attempts`` counts the first one.
    """
    kind = EndpointKind(endpoint.kind)
    if kind is EndpointKind.LOCAL:
        return LocalExtractiveAdapter(retriever, contact=contact, use_case=use_case)
    if kind is EndpointKind.BEDROCK:
        from controller.models.bedrock import BedrockAdapter  # boto3 is slow to import

        return BedrockAdapter(
            region=endpoint.region or "",
            endpoint_url=endpoint_url,
            session=session,
            connect_timeout_s=connect_timeout_s,
            read_timeout_s=timeout_s,
            max_attempts=max_attempts,
            guardrail=guardrail,
        )
    return OpenAICompatibleAdapter(
        base_url=endpoint_url or endpoint.base_url or "",
        api_key_env=api_key_env,
        auth=auth,
        api_version=api_version,
        timeout_s=timeout_s,
        max_attempts=max_attempts,
    )
