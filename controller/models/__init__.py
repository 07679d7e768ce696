"""Model adapters behind one port (``ModelAdapter``), chosen in one place (``make_adapter``).

- ``base``: ``ModelRequest``, ``ModelResponse``, the Protocol and the ``ModelError`` family;
- ``bedrock``: Amazon Bedrock Converse (boto3); ``openai``: OpenAI-compatible chat (urllib);
- ``local``: the offline default, an extractive baseline over the corpus (not an LLM);
- ``testing``: in-memory ``CannedAdapter`` and ``FailingAdapter``;
- ``factory``: ``make_adapter(endpoint, ...)``.

The Bedrock module is imported only when a Bedrock adapter is made (boto3 is slow to import).
"""

from controller.models.base import (
    ModelAdapter,
    ModelError,
    ModelRequest,
    ModelResponse,
    ModelThrottled,
    ModelUnavailable,
)
from controller.models.factory import make_adapter
from controller.models.local import LOCAL_MODEL_ID, NOT_IN_DOCS, LocalExtractiveAdapter

__all__ = [
    "LOCAL_MODEL_ID",
    "NOT_IN_DOCS",
    "LocalExtractiveAdapter",
    "ModelAdapter",
    "ModelError",
    "ModelRequest",
    "ModelResponse",
    "ModelThrottled",
    "ModelUnavailable",
    "make_adapter",
]
