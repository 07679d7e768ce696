"""The invariant, as a property: every request that reaches the handler leaves exactly one audit
record, whatever its bytes and headers (the real ASGI app in-process, hypothesis generating)."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from controller.adapters.devidp import DevIdp
from controller.adapters.flag_file import write_flag_document
from controller.adapters.request_sinks import MemorySink, schema_document
from controller.boundaries.redactor import bundle_redactor
from controller.bundle.models import load_bundle
from controller.core.flags import render_flag_document
from controller.core.release import create_release, model_choice
from controller.gateway.asgi import create_app
from controller.service.compose import StatePaths, build_gateway, open_local_store

FAKE_KEY_ID = "AKIA" + "FAKE2TESTKEY7DOC"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from tests.conftest import copy_project

    root = tmp_path_factory.mktemp("records")
    bundle = load_bundle(copy_project(root))
    state = root / "state"
    store = open_local_store(state)
    digest, _ = create_release(store, bundle, model_choice(bundle.workflow, "local"))
    flags_path = StatePaths(state).flags(bundle.id)
    write_flag_document(flags_path, render_flag_document(bundle.workflow, {"internal": digest}, killed=False))
    sink = MemorySink()
    gateway = build_gateway(bundle, state, sink=sink)
    calls = {"n": 0}
    ask, ask_stream = gateway.ask, gateway.ask_stream

    def counted(fn: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            calls["n"] += 1
            return fn(*args, **kwargs)
        return wrapper

    gateway.ask, gateway.ask_stream = counted(ask), counted(ask_stream)  # type: ignore[method-assign]
    idp = DevIdp(StatePaths(state).idp)
    idp.ensure()
    sso = bundle.workflow.sso.idp
    token = idp.mint("alice.moreau@corp.example", ["eng", "ai-pilot"], issuer=sso.issuer, audience=sso.audience)
    with TestClient(create_app(gateway), raise_server_exceptions=False) as client:
        yield {"client": client, "sink": sink, "calls": calls, "token": token, "wf": bundle.id,
               "scan": bundle_redactor(bundle.workflow.data_boundaries).scan}
    gateway.flags.close()


texts = st.one_of(
    st.text(max_size=60),
    st.sampled_from([FAKE_KEY_ID, "\ud800", "\udfff tail", "jordan.example@customer.example", "How fast is on-call?"]),
    st.lists(st.sampled_from(["on-call", "\ud800", FAKE_KEY_ID, " ", "\x00", "é"]), max_size=6).map("".join),
)
bodies = st.one_of(
    st.binary(max_size=200),
    texts.map(lambda q: json.dumps({"question": q}).encode()),
    texts.map(lambda q: json.dumps({"question": q}, ensure_ascii=False).encode("utf-8", "surrogatepass")),
    st.tuples(texts, texts, st.booleans()).map(lambda t: json.dumps({
        "model": "internal-docs-qa", "stream": t[2],
        "messages": [{"role": "user", "content": t[0]}, {"role": "assistant", "content": "ok"},
                     {"role": "user", "content": t[1]}],
    }).encode()),
    st.recursive(st.none() | st.integers() | st.text(max_size=5), lambda c: st.lists(c) | st.dictionaries(
        st.text(max_size=5), c), max_leaves=20).map(lambda v: json.dumps(v).encode()),
)
headers = st.fixed_dictionaries({
    # weighted towards a valid token and JSON, so most requests go deep into the pipeline
    "authorization": st.sampled_from(["Bearer GOOD"] * 5 + ["Bearer junk", "Basic abc", "bearer GOOD", ""]),
}, optional={
    "content-type": st.sampled_from(["application/json"] * 4 + ["text/plain", "application/json; charset=utf-8", ""]),
    "x-extra": st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=30),
})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(["/v1/ask", "/v1/chat/completions"]), body=bodies, extra=headers)
def test_exactly_one_record_per_request_that_reaches_the_handler(served: Any, path: str, body: bytes,
                                                                  extra: dict[str, str]) -> None:
    sink, calls = served["sink"], served["calls"]
    hdrs = {k: v.replace("GOOD", served["token"]) for k, v in extra.items()}
    before_records, before_calls = len(sink.records), calls["n"]
    response = served["client"].post(path, content=body, headers=hdrs)
    reached = calls["n"] - before_calls
    written = len(sink.records) - before_records
    event(f"reached handler: {reached}, status {response.status_code}")  # --hypothesis-show-statistics
    assert reached in (0, 1)
    assert written == reached, (response.status_code, response.text[:200])
    assert response.headers["content-type"].split(";")[0] in ("application/json", "text/event-stream")
    if response.status_code >= 400:
        assert json.loads(response.content).get("error") or "decision" in json.loads(response.content)
    if written:
        record = sink.records[-1]
        jsonschema.validate(record, schema_document())
        # no detector finds anything left in the record (a key glued into a word, "cAKIA...", is not
        # an AWS key to the detectors: a literal check would test the detectors, not the gateway)
        assert served["scan"](json.dumps(record, ensure_ascii=False)) == []
        if response.status_code >= 500:
            assert record["decision"] in ("error", "disabled")
