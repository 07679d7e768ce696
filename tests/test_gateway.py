"""The gateway's decisions without HTTP: every failure path answers with the fallback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from controller.adapters.devidp import DevIdp
from controller.adapters.flagd_source import StaticFlagSource
from controller.adapters.jwks import FileJwks
from controller.adapters.memory import MemoryStore
from controller.adapters.request_sinks import MemorySink
from controller.bundle.models import load_bundle
from controller.core.release import create_release, model_choice
from controller.gateway.handler import Decision, Gateway
from controller.gateway.identity import IdentityVerifier
from controller.models.testing import CannedAdapter
from controller.service.compose import make_model_adapter

FAKE_KEY_ID = "AKIA" + "FAKE2TESTKEY7DOC"
Q = "How quickly must the primary on-call acknowledge a page?"


@pytest.fixture
def parts(project: Path, tmp_path: Path) -> dict[str, Any]:
    bundle = load_bundle(project)
    store = MemoryStore()
    digest, _ = create_release(store, bundle, model_choice(bundle.workflow, "local"))
    idp = DevIdp(tmp_path)
    idp.ensure()
    wf = bundle.workflow
    token = idp.mint("alice.moreau@corp.example", ["eng", "ai-pilot"], issuer=wf.sso.idp.issuer, audience=wf.sso.idp.audience)
    return {"bundle": bundle, "store": store, "digest": digest, "idp": idp, "token": token}


def gateway(parts: dict[str, Any], flags: Any, adapter_factory: Any = make_model_adapter) -> Gateway:
    wf = parts["bundle"].workflow
    return Gateway(
        workflow=wf,
        verifier=IdentityVerifier(wf.sso, wf.personal_accounts, FileJwks(parts["idp"].jwks_path)),
        flags=flags,
        store=parts["store"],
        sink=MemorySink(),
        subject_key=b"k" * 32,
        adapter_factory=adapter_factory,
    )


def test_served_release_answers(parts: dict[str, Any]) -> None:
    gw = gateway(parts, StaticFlagSource(parts["digest"]))
    response = gw.ask(Q, parts["token"])
    assert response.decision is Decision.ANSWERED
    assert response.citations == ("oncall-escalation",)


def test_an_eval_judges_its_release_even_while_killed_but_users_get_the_fallback(parts: dict[str, Any]) -> None:
    gw = gateway(parts, StaticFlagSource(parts["digest"], killed=True))
    assert gw.ask(Q, parts["token"]).decision is Decision.DISABLED
    judged = gw.ask(Q, parts["token"], eval_of=parts["digest"])
    assert judged.decision is Decision.ANSWERED
    assert [r["eval"] for r in gw.sink.records] == [False, True]


def test_a_release_missing_from_the_store_gives_the_fallback(parts: dict[str, Any]) -> None:
    gw = gateway(parts, StaticFlagSource("f" * 64))
    response = gw.ask(Q, parts["token"])
    assert response.decision is Decision.FALLBACK
    assert "release unavailable" in response.reason


def test_model_output_carrying_a_forbidden_value_is_never_returned(parts: dict[str, Any]) -> None:
    leaky = CannedAdapter(f"Use the deploy key {FAKE_KEY_ID} [oncall-escalation]")
    gw = gateway(parts, StaticFlagSource(parts["digest"]), lambda release, retriever: leaky)
    response = gw.ask(Q, parts["token"])
    assert response.decision is Decision.FALLBACK
    assert FAKE_KEY_ID not in response.answer
    assert FAKE_KEY_ID not in str(gw.sink.records)


def test_an_unexpected_error_fails_closed_and_is_recorded(parts: dict[str, Any]) -> None:
    def broken(release: Any, retriever: Any) -> Any:
        raise RuntimeError("adapter construction failed")

    gw = gateway(parts, StaticFlagSource(parts["digest"]), broken)
    response = gw.ask(Q, parts["token"])
    assert response.decision is Decision.ERROR
    assert response.status == 500
    assert [r["decision"] for r in gw.sink.records] == ["error"]
    assert gw.sink.records[-1]["error"] == "RuntimeError"
    assert parts["bundle"].workflow.fallback.contact in response.answer


def test_the_model_sees_only_redacted_context_and_question(parts: dict[str, Any]) -> None:
    seen = CannedAdapter()
    gw = gateway(parts, StaticFlagSource(parts["digest"]), lambda release, retriever: seen)
    gw.ask(f"{Q} Reply to jordan.example@customer.example", parts["token"])
    [request] = seen.requests
    assert "jordan.example@customer.example" not in request.prompt
    assert "[REDACTED:email]" in request.prompt


class StreamingAdapter:
    """Streams the given pieces; records how far the consumer got."""

    name = "streaming"

    def __init__(self, pieces: list[str]):
        self.pieces = pieces

    def stream(self, request: Any) -> Any:
        yield from self.pieces


@pytest.mark.parametrize("consumed", [0, 1, None])
def test_a_stream_leaves_exactly_one_record_however_it_ends(parts: dict[str, Any], consumed: int | None) -> None:
    from controller.gateway.handler import AnswerStream

    pieces = ["The primary on-call ", "acknowledges within 15 minutes. ", "[oncall-escalation]"]
    gw = gateway(parts, StaticFlagSource(parts["digest"]), lambda release, retriever: StreamingAdapter(pieces))
    gw.stream_holdback = 8  # small window so deltas are emitted before the end
    stream = gw.ask_stream(Q, parts["token"])
    assert isinstance(stream, AnswerStream)
    it = iter(stream)
    got = [next(it) for _ in range(consumed)] if consumed is not None else list(it)
    stream.close()
    stream.close()
    [record] = gw.sink.records
    assert record["decision"] == "answered"
    if consumed is None:
        assert "".join(got) == "".join(pieces) == record["output"]
    else:
        assert record["reason"] == "client disconnected during the stream" or consumed == 0
        assert record["output"] == "".join(got)


def test_a_secret_split_across_stream_pieces_is_never_emitted(parts: dict[str, Any]) -> None:
    email = "jordan.example" + "@customer.example"
    pieces = ["Write to jordan.exa", "mple@customer.example today. [oncall-escalation]"]
    gw = gateway(parts, StaticFlagSource(parts["digest"]), lambda release, retriever: StreamingAdapter(pieces))
    out = "".join(gw.ask_stream(Q, parts["token"]))
    assert email not in out and "jordan.exa" not in out and "[REDACTED:email]" in out
    assert email not in str(gw.sink.records) and len(gw.sink.records) == 1
