"""Model adapters against local servers that speak the real wire formats (tests/fakes)."""

from __future__ import annotations

import email.utils
import json
import time

import boto3
import pytest
from botocore.retries import adaptive as botocore_adaptive
from botocore.retries import standard as botocore_standard

from controller.bundle.models import CorpusDoc, Endpoint, Guardrail
from controller.core.retrieval import Passage, Retriever
from controller.errors import BackendUnavailable
from controller.models import (
    LOCAL_MODEL_ID,
    LocalExtractiveAdapter,
    ModelAdapter,
    ModelError,
    ModelRequest,
    ModelResponse,
    ModelThrottled,
    ModelUnavailable,
    make_adapter,
)
from controller.models.bedrock import BedrockAdapter
from controller.models.openai import OpenAICompatibleAdapter, _retry_after_s
from controller.models.testing import CANNED_MODEL_ID, CannedAdapter, FailingAdapter
from tests.fakes.model_servers import (
    FakeBedrockServer,
    FakeOpenAIServer,
    Reply,
    no_proxy,
    unused_port,
)

pytestmark = pytest.mark.usefixtures("no_proxy")
__all__ = ["no_proxy"]  # the fixture is used through pytestmark

MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0"
REGION = "eu-west-1"


def _request(**overrides: object) -> ModelRequest:
    fields: dict = {
        "model_id": MODEL,
        "system": "You are the documentation assistant.",
        "prompt": "Context: ...\n\nQuestion:\n\nHow long do I have to acknowledge a page?",
        "max_tokens": 400,
        "temperature": 0.0,
    }
    fields.update(overrides)
    return ModelRequest(**fields)


@pytest.fixture
def session() -> boto3.Session:
    return boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore sleeps up to 1s, 2s, ... between retries and, in adaptive mode, rate-limits the
    client after a throttle; these tests count retries, not time."""
    monkeypatch.setattr(botocore_standard.ExponentialBackoff, "delay_amount", lambda self, ctx: 0)
    monkeypatch.setattr(botocore_adaptive.ClientRateLimiter, "on_sending_request", lambda self, **kw: None)


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


# --- the port -------------------------------------------------------------------------------


def test_model_errors_are_backend_failures_with_exit_code_5() -> None:
    for cls in (ModelError, ModelUnavailable, ModelThrottled):
        assert issubclass(cls, BackendUnavailable)
        assert cls("x").exit_code == 5
    assert issubclass(ModelThrottled, ModelError) and issubclass(ModelUnavailable, ModelError)
    assert ModelUnavailable("down", code="503").code == "503"


def test_request_and_response_are_frozen() -> None:
    request = _request()
    with pytest.raises(AttributeError):
        request.prompt = "changed"  # type: ignore[misc]
    response = ModelResponse("t", MODEL, 1, 2, 3.0)
    with pytest.raises(AttributeError):
        response.text = "changed"  # type: ignore[misc]
    assert request.passages is None and request.question == ""


def test_every_adapter_satisfies_the_protocol(session: boto3.Session) -> None:
    adapters = [
        LocalExtractiveAdapter(),
        CannedAdapter(),
        FailingAdapter(),
        OpenAICompatibleAdapter(base_url="http://127.0.0.1:9"),
        BedrockAdapter(region=REGION, session=session),
    ]
    for adapter in adapters:
        assert isinstance(adapter, ModelAdapter)
        assert adapter.name


# --- in-memory adapters ---------------------------------------------------------------------


def test_canned_adapter_cites_its_passages_and_records_requests() -> None:
    adapter = CannedAdapter()
    passages = (
        Passage("oncall-escalation", "Acknowledging a page", "...", 3.0),
        Passage("pto-policy", "Annual leave", "...", 2.0),
        Passage("oncall-escalation", "Severity levels", "...", 1.0),
    )
    response = adapter.complete(_request(passages=passages))
    assert response.text == "Canned answer. [oncall-escalation] [pto-policy]"
    assert response.latency_ms == 0.0 and response.model_id == MODEL
    assert adapter.requests == [_request(passages=passages)]
    assert "not in the docs" in adapter.complete(_request(passages=())).text


def test_canned_adapter_fixed_text_callable_and_model_id() -> None:
    assert CannedAdapter("fixed").complete(_request()).text == "fixed"
    echo = CannedAdapter(lambda r: r.prompt.upper(), model_id=CANNED_MODEL_ID)
    response = echo.complete(_request(prompt="abc"))
    assert (response.text, response.model_id) == ("ABC", CANNED_MODEL_ID)


def test_failing_adapter_always_raises_and_counts() -> None:
    adapter = FailingAdapter()
    for _ in range(2):
        with pytest.raises(ModelUnavailable):
            adapter.complete(_request())
    assert adapter.calls == 2
    with pytest.raises(ModelThrottled):
        FailingAdapter(ModelThrottled("slow down")).complete(_request())


# --- the factory ----------------------------------------------------------------------------


def test_factory_local_uses_the_retriever_and_contact() -> None:
    doc = CorpusDoc("vpn-access", None, "# VPN\n\n## Login\n\nRun `nwvpn login` to sign in.\n")  # type: ignore[arg-type]
    retriever = Retriever.from_docs([doc])
    adapter = make_adapter(Endpoint(kind="local"), retriever=retriever, contact="#ask-platform")
    assert isinstance(adapter, LocalExtractiveAdapter)
    response = adapter.complete(_request(question="How do I run nwvpn login?"))
    assert response.model_id == LOCAL_MODEL_ID
    assert "`nwvpn login`" in response.text and "[vpn-access]" in response.text
    refusal = adapter.complete(_request(question="Best pizza in Naples?"))
    assert "not in the docs" in refusal.text and "#ask-platform" in refusal.text


def test_factory_bedrock_and_openai(session: boto3.Session) -> None:
    bedrock = make_adapter(
        Endpoint(kind="bedrock", region=REGION),
        session=session,
        endpoint_url="http://127.0.0.1:9",
        guardrail=Guardrail(id="gr-1", version="2"),
    )
    assert isinstance(bedrock, BedrockAdapter)
    assert bedrock.region == REGION and bedrock.guardrail == Guardrail(id="gr-1", version="2")

    openai = make_adapter(Endpoint(kind="openai-compatible", base_url="https://llm.corp.example/"))
    assert isinstance(openai, OpenAICompatibleAdapter)
    assert openai.url == "https://llm.corp.example/v1/chat/completions"
    override = make_adapter(
        Endpoint(kind="openai-compatible", base_url="https://llm.corp.example"),
        endpoint_url="http://127.0.0.1:8000",
        api_version="2024-10-21",
        auth="api-key",
    )
    assert isinstance(override, OpenAICompatibleAdapter)
    assert override.url == "http://127.0.0.1:8000/v1/chat/completions?api-version=2024-10-21"


# --- Bedrock Converse -----------------------------------------------------------------------


def _bedrock(server: FakeBedrockServer, session: boto3.Session, **options: object) -> BedrockAdapter:
    return BedrockAdapter(region=REGION, endpoint_url=server.url, session=session, **options)


def test_bedrock_converse_wire_format_and_sigv4(session: boto3.Session) -> None:
    with FakeBedrockServer(text="Within 15 minutes. [oncall-escalation]") as server:
        guardrail = Guardrail(id="gr-docs-qa-0001", version="1")
        response = _bedrock(server, session, guardrail=guardrail).complete(_request())

    assert response == ModelResponse(
        text="Within 15 minutes. [oncall-escalation]",
        model_id=MODEL,
        input_tokens=321,
        output_tokens=12,
        latency_ms=response.latency_ms,
        stop_reason="end_turn",
    )
    assert response.latency_ms > 0
    [seen] = server.requests
    assert seen.method == "POST"
    assert seen.path == f"/model/{MODEL}/converse"
    assert seen.raw_path == "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse"
    auth = seen.headers["authorization"]
    assert auth.startswith("AWS4-HMAC-SHA256 Credential=testing/")
    assert f"/{REGION}/bedrock/aws4_request" in auth and "Signature=" in auth
    assert "x-amz-date" in seen.headers
    assert seen.json() == {
        "messages": [{"role": "user", "content": [{"text": _request().prompt}]}],
        "system": [{"text": "You are the documentation assistant."}],
        "inferenceConfig": {"maxTokens": 400, "temperature": 0.0},
        "guardrailConfig": {"guardrailIdentifier": "gr-docs-qa-0001", "guardrailVersion": "1"},
    }


def test_bedrock_without_guardrail_or_system(session: boto3.Session) -> None:
    with FakeBedrockServer() as server:
        _bedrock(server, session).complete(_request(system=""))
    body = server.requests[0].json()
    assert "guardrailConfig" not in body and "system" not in body


def test_bedrock_joins_text_blocks_and_keeps_stop_reason(session: boto3.Session) -> None:
    reply = {
        "output": {"message": {"role": "assistant", "content": [{"text": "a"}, {"text": "b"}]}},
        "stopReason": "guardrail_intervened",
        "usage": {"inputTokens": 5, "outputTokens": 1, "totalTokens": 6},
        "metrics": {"latencyMs": 3},
    }
    with FakeBedrockServer() as server:
        server.enqueue(Reply(body=reply))
        response = _bedrock(server, session).complete(_request())
    assert (response.text, response.stop_reason) == ("ab", "guardrail_intervened")


@pytest.mark.usefixtures("no_backoff")
def test_bedrock_throttling_maps_to_model_throttled_after_retries(session: boto3.Session) -> None:
    with FakeBedrockServer() as server:
        server.enqueue(*[FakeBedrockServer.throttling()] * 5)
        with pytest.raises(ModelThrottled) as caught:
            _bedrock(server, session, max_attempts=3).complete(_request())
    assert caught.value.code == "ThrottlingException"
    assert len(server.requests) == 3  # max_attempts counts the first call


@pytest.mark.usefixtures("no_backoff")
def test_bedrock_retries_a_throttle_then_answers(session: boto3.Session) -> None:
    with FakeBedrockServer() as server:
        server.enqueue(FakeBedrockServer.throttling())
        response = _bedrock(server, session, max_attempts=3).complete(_request())
    assert response.text and len(server.requests) == 2


@pytest.mark.usefixtures("no_backoff")
@pytest.mark.parametrize(
    ("status", "code", "attempts"),
    [
        (500, "InternalServerException", 2),  # retried, then unavailable
        (503, "ServiceUnavailableException", 2),
        (403, "AccessDeniedException", 1),  # not retried: a permissions problem
        (400, "ValidationException", 1),
        (424, "ModelErrorException", 1),
    ],
)
def test_bedrock_other_errors_map_to_unavailable(session: boto3.Session, status: int, code: str, attempts: int) -> None:
    with FakeBedrockServer() as server:
        server.enqueue(*[FakeBedrockServer.error(status, code)] * 3)
        with pytest.raises(ModelUnavailable) as caught:
            _bedrock(server, session, max_attempts=2).complete(_request())
    assert caught.value.code == code
    assert len(server.requests) == attempts


@pytest.mark.usefixtures("no_backoff")
def test_bedrock_endpoint_down_is_unavailable(session: boto3.Session) -> None:
    adapter = BedrockAdapter(
        region=REGION,
        endpoint_url=f"http://127.0.0.1:{unused_port()}",
        session=session,
        connect_timeout_s=0.5,
        max_attempts=2,
    )
    with pytest.raises(ModelUnavailable) as caught:
        adapter.complete(_request())
    assert caught.value.code == "EndpointConnectionError"


def test_bedrock_read_timeout_is_unavailable(session: boto3.Session) -> None:
    with FakeBedrockServer() as server:
        server.enqueue(Reply(delay_s=5))
        adapter = _bedrock(server, session, read_timeout_s=0.3, max_attempts=1)
        started = time.monotonic()
        with pytest.raises(ModelUnavailable) as caught:
            adapter.complete(_request())
    assert caught.value.code == "ReadTimeoutError"
    assert time.monotonic() - started < 3


def test_bedrock_reply_without_text_is_unavailable(session: boto3.Session) -> None:
    with FakeBedrockServer() as server:
        server.enqueue(Reply(body={"stopReason": "end_turn"}))
        with pytest.raises(ModelUnavailable) as caught:
            _bedrock(server, session).complete(_request())
    assert caught.value.code == "MalformedResponse"


# --- OpenAI-compatible ----------------------------------------------------------------------


def _openai(server: FakeOpenAIServer, **options: object) -> OpenAICompatibleAdapter:
    options.setdefault("sleep", Sleeps())
    return OpenAICompatibleAdapter(base_url=server.url, **options)


def test_openai_wire_format_and_bearer_key_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_LLM_KEY", "sk-test-not-a-real-key")
    with FakeOpenAIServer(text="Within 30 days. [feature-flags]") as server:
        response = _openai(server, api_key_env="TEST_LLM_KEY").complete(_request(model_id="llama3"))
    assert response == ModelResponse(
        text="Within 30 days. [feature-flags]",
        model_id="llama3",
        input_tokens=250,
        output_tokens=11,
        latency_ms=response.latency_ms,
        stop_reason="stop",
    )
    [seen] = server.requests
    assert (seen.method, seen.path, seen.query) == ("POST", "/v1/chat/completions", {})
    assert seen.headers["authorization"] == "Bearer sk-test-not-a-real-key"
    assert seen.headers["content-type"] == "application/json"
    assert seen.json() == {
        "model": "llama3",
        "messages": [
            {"role": "system", "content": "You are the documentation assistant."},
            {"role": "user", "content": _request().prompt},
        ],
        "max_tokens": 400,
        "temperature": 0.0,
    }


def test_openai_azure_style_api_key_header_and_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_OPENAI_KEY", "azure-test-key")
    with FakeOpenAIServer() as server:
        adapter = _openai(server, api_key_env="AZURE_OPENAI_KEY", auth="api-key", api_version="2024-10-21")
        adapter.complete(_request())
    [seen] = server.requests
    assert seen.query == {"api-version": ["2024-10-21"]}
    assert seen.headers["api-key"] == "azure-test-key"
    assert "authorization" not in seen.headers


def test_openai_sends_no_credential_when_the_variable_is_unset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("UNSET_TEST_KEY", raising=False)
    with FakeOpenAIServer() as server:
        _openai(server, api_key_env="UNSET_TEST_KEY").complete(_request(system=""))
    [seen] = server.requests
    assert "authorization" not in seen.headers and "api-key" not in seen.headers
    assert [m["role"] for m in seen.json()["messages"]] == ["user"]


def test_openai_key_is_read_at_call_time() -> None:
    environ = {"K": "first"}
    with FakeOpenAIServer() as server:
        adapter = _openai(server, api_key_env="K", environ=environ)
        adapter.complete(_request())
        environ["K"] = "rotated"
        adapter.complete(_request())
    assert [r.headers["authorization"] for r in server.requests] == [
        "Bearer first",
        "Bearer rotated",
    ]


def test_openai_429_is_retried_honouring_retry_after_then_succeeds() -> None:
    sleeps = Sleeps()
    with FakeOpenAIServer() as server:
        server.enqueue(FakeOpenAIServer.error(429, Retry_After="1"))
        response = _openai(server, sleep=sleeps, backoff_base_s=0.5).complete(_request())
    assert response.text and len(server.requests) == 2
    [delay] = sleeps.calls
    assert 1.0 <= delay <= 1.05  # Retry-After plus a little jitter


def test_openai_503_is_retried_with_jittered_exponential_backoff() -> None:
    sleeps = Sleeps()
    with FakeOpenAIServer() as server:
        server.enqueue(FakeOpenAIServer.error(503), FakeOpenAIServer.error(503))
        response = _openai(server, sleep=sleeps, max_attempts=3, backoff_base_s=0.5, backoff_max_s=8).complete(
            _request()
        )
    assert response.text and len(server.requests) == 3
    assert len(sleeps.calls) == 2
    assert 0 <= sleeps.calls[0] <= 0.5 and 0 <= sleeps.calls[1] <= 1.0


def test_openai_persistent_429_is_throttled_after_bounded_retries() -> None:
    sleeps = Sleeps()
    with FakeOpenAIServer() as server:
        server.enqueue(*[FakeOpenAIServer.error(429, "rate limited")] * 5)
        with pytest.raises(ModelThrottled) as caught:
            _openai(server, sleep=sleeps, max_attempts=3).complete(_request())
    assert len(server.requests) == 3 and len(sleeps.calls) == 2
    assert caught.value.code == "429" and "rate limited" in str(caught.value)


def test_openai_retry_after_beyond_the_budget_gives_up_at_once() -> None:
    sleeps = Sleeps()
    with FakeOpenAIServer() as server:
        server.enqueue(FakeOpenAIServer.error(429, Retry_After="120"))
        with pytest.raises(ModelThrottled):
            _openai(server, sleep=sleeps, backoff_max_s=8).complete(_request())
    assert len(server.requests) == 1 and sleeps.calls == []


@pytest.mark.parametrize("status", [500, 400, 404])
def test_openai_other_errors_are_unavailable_without_retry(status: int) -> None:
    with FakeOpenAIServer() as server:
        server.enqueue(FakeOpenAIServer.error(status, "boom"))
        with pytest.raises(ModelUnavailable) as caught:
            _openai(server).complete(_request())
    assert len(server.requests) == 1
    assert caught.value.code == str(status)


def test_openai_401_names_the_variable_never_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_LLM_KEY", "sk-secret-value")
    with FakeOpenAIServer() as server:
        server.enqueue(FakeOpenAIServer.error(401, "invalid api key"))
        with pytest.raises(ModelUnavailable) as caught:
            _openai(server, api_key_env="TEST_LLM_KEY").complete(_request())
    assert "$TEST_LLM_KEY" in str(caught.value)
    assert "sk-secret-value" not in str(caught.value)


def test_openai_endpoint_down_is_unavailable() -> None:
    adapter = OpenAICompatibleAdapter(base_url=f"http://127.0.0.1:{unused_port()}", timeout_s=1)
    with pytest.raises(ModelUnavailable) as caught:
        adapter.complete(_request())
    assert caught.value.code == "connection"


def test_openai_read_timeout_is_unavailable() -> None:
    with FakeOpenAIServer() as server:
        server.enqueue(Reply(delay_s=5))
        started = time.monotonic()
        with pytest.raises(ModelUnavailable) as caught:
            _openai(server, timeout_s=0.3).complete(_request())
    assert caught.value.code == "timeout"
    assert time.monotonic() - started < 3


@pytest.mark.parametrize(
    "body",
    [b"not json", {"choices": []}, {"choices": [{"message": {}}]}, {"object": "error"}],
)
def test_openai_malformed_reply_is_unavailable(body: object) -> None:
    with FakeOpenAIServer() as server:
        server.enqueue(Reply(body=body))
        with pytest.raises(ModelUnavailable) as caught:
            _openai(server).complete(_request())
    assert caught.value.code == "MalformedResponse"


def test_retry_after_parsing() -> None:
    assert _retry_after_s(None) is None and _retry_after_s("soon") is None
    assert _retry_after_s("3") == 3.0 and _retry_after_s("-1") == 0.0
    future = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= (_retry_after_s(future) or 0) <= 31


def test_fake_servers_answer_unknown_routes_with_404() -> None:
    # Guards the fakes themselves: a wrong path must fail loudly, not look like success.
    import urllib.error
    import urllib.request

    with FakeOpenAIServer() as server:
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(f"{server.url}/v1/completions", data=b"{}", timeout=5)
        assert caught.value.code == 404
        assert json.loads(caught.value.read())["message"].startswith("no route")


# --- Bedrock converse_stream (moto has no Converse/ConverseStream; botocore's Stubber cannot
# return an event stream): real boto3 parsing of AWS event-stream frames from a local server ---


def test_bedrock_converse_stream_yields_text_deltas(no_proxy: None) -> None:
    from controller.models.bedrock import BedrockAdapter

    text = "The primary on-call has 15 minutes. [oncall-escalation]"
    with FakeBedrockServer(text=text) as server:
        adapter = BedrockAdapter(region="eu-west-1", endpoint_url=server.url, session=boto3.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name="eu-west-1"))
        deltas = list(adapter.stream(_request(model_id="anthropic.claude-test")))
        assert len(deltas) == 3 and "".join(deltas) == text
        assert server.requests[-1].path == "/model/anthropic.claude-test/converse-stream"
        server.enqueue(FakeBedrockServer.throttling(), FakeBedrockServer.throttling(), FakeBedrockServer.throttling())
        with pytest.raises(ModelThrottled):
            list(adapter.stream(_request(model_id="anthropic.claude-test")))
