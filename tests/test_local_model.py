"""The offline extractive baseline against the bundle's golden set, plus its own contract."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import re2
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.bundle.models import CorpusDoc, EvalCategory, GoldenCase, GoldenSet
from controller.bundle.yamlio import load_yaml
from controller.core.retrieval import Passage, Retriever
from controller.models.base import ModelRequest
from controller.models.local import (
    LOCAL_MODEL_ID,
    NOT_IN_DOCS,
    LocalExtractiveAdapter,
    answer_units,
    question_from_prompt,
)

BUNDLE = Path(__file__).resolve().parents[1] / "workflows" / "internal-docs-qa"
CORPUS = tuple(CorpusDoc(p.stem, p, p.read_text(encoding="utf-8")) for p in sorted((BUNDLE / "corpus").glob("*.md")))
GOLDEN = GoldenSet.model_validate(load_yaml(BUNDLE / "golden.yaml").data)
RETRIEVER = Retriever.from_docs(CORPUS)
ADAPTER = LocalExtractiveAdapter(RETRIEVER, contact="#ask-platform")


def _cases(category: EvalCategory) -> list[GoldenCase]:
    return [c for c in GOLDEN.cases if c.category is category]


def _ask(question: str, adapter: LocalExtractiveAdapter = ADAPTER) -> str:
    """What the gateway does: retrieve, then hand the model the question and the passages."""
    passages = tuple(RETRIEVER.search(question))
    request = ModelRequest(
        model_id=LOCAL_MODEL_ID,
        system="",
        prompt=question,
        question=question,
        passages=passages,
    )
    response = adapter.complete(request)
    assert response.model_id == LOCAL_MODEL_ID
    return response.text


def _cited(text: str) -> set[str]:
    out = set()
    for part in text.split("[")[1:]:
        source, sep, _ = part.partition("]")
        if sep:
            out.add(source)
    return out


# --- the golden set -------------------------------------------------------------------------


@pytest.mark.parametrize("case", _cases(EvalCategory.CORRECTNESS), ids=lambda c: c.id)
def test_golden_correctness_case(case: GoldenCase) -> None:
    answer = _ask(case.input.question)
    lowered = answer.lower()
    expect = case.expect
    if expect.must_include:
        missing = [s for s in expect.must_include.all if s.lower() not in lowered]
        assert not missing, f"missing {missing} in:\n{answer}"
        if expect.must_include.any:
            assert any(s.lower() in lowered for s in expect.must_include.any), answer
    if expect.must_match:
        assert re2.search(expect.must_match, answer), answer
    assert set(expect.must_cite) <= _cited(answer), answer
    assert "not in the docs" not in lowered


@pytest.mark.parametrize("case", _cases(EvalCategory.REFUSAL), ids=lambda c: c.id)
def test_golden_refusal_case_is_not_in_the_docs(case: GoldenCase) -> None:
    assert RETRIEVER.search(case.input.question) == []
    answer = _ask(case.input.question)
    assert "not in the docs" in answer.lower()
    assert _cited(answer) == set()


def test_the_relevance_floor_has_margin_on_both_sides() -> None:
    # If corpus or golden edits push a case near the floor, say so before it flips.
    floor = RETRIEVER.min_coverage
    answerable = [RETRIEVER.coverage(c.input.question) for c in _cases(EvalCategory.CORRECTNESS)]
    unanswerable = [RETRIEVER.coverage(c.input.question) for c in _cases(EvalCategory.REFUSAL)]
    assert min(answerable) >= floor + 0.1
    assert max(unanswerable) <= floor - 0.1


@pytest.mark.parametrize("case", _cases(EvalCategory.POLICY_COMPLIANCE), ids=lambda c: c.id)
def test_golden_policy_cases_never_echo_forbidden_text(case: GoldenCase) -> None:
    # The gateway blocks or redacts these before any model; even unfiltered, the extractive
    # baseline only quotes the corpus, so it cannot repeat what the user pasted.
    answer = _ask(case.input.question)
    for forbidden in case.expect.must_not_contain:
        assert forbidden.lower() not in answer.lower()


def test_golden_redacted_customer_question_cites_oncall() -> None:
    # redact-customer-contact as the model sees it after the gateway's redaction.
    question = (
        "A customer, Jordan Example ([REDACTED:email], [REDACTED:phone]), reports that their "
        "robots stopped at their site. Which severity is that, and how fast must on-call "
        "acknowledge the page?"
    )
    answer = _ask(question)
    assert "oncall-escalation" in _cited(answer)
    assert "SEV1" in answer and "15 minutes" in answer
    assert "REDACTED" not in answer


# --- the adapter's contract -----------------------------------------------------------------


def test_answers_are_deterministic() -> None:
    question = _cases(EvalCategory.CORRECTNESS)[0].input.question
    assert _ask(question) == _ask(question)


def test_the_answer_labels_itself_and_quotes_only_the_corpus() -> None:
    answer = _ask("How long does the primary on-call have to acknowledge a page?")
    header, blank, *bullets = answer.splitlines()
    assert "offline extractive baseline" in header and "not an AI model" in header
    assert blank == "" and bullets
    corpus_units = {u for p in RETRIEVER.passages for u in answer_units(p.text)}
    for bullet in bullets:
        text, _, cite = bullet.removeprefix("- ").rpartition(" [")
        assert text in corpus_units
        assert cite.rstrip("]") in {d.source_id for d in CORPUS}


def test_nothing_retrieved_is_not_in_the_docs_with_the_contact() -> None:
    request = ModelRequest("m", "", "What's the weather in Lisbon?", passages=())
    text = ADAPTER.complete(request).text
    assert text.startswith(NOT_IN_DOCS) and "#ask-platform" in text
    assert LocalExtractiveAdapter().complete(request).text == NOT_IN_DOCS


def test_given_passages_are_used_even_when_a_retriever_exists() -> None:
    passages = (Passage("custom", "H", "The answer is 42 parrots.", 1.0),)
    request = ModelRequest("m", "", "how many parrots", passages=passages, question="parrots?")
    text = ADAPTER.complete(request).text
    assert "- The answer is 42 parrots. [custom]" in text


def test_without_passages_it_retrieves_itself() -> None:
    request = ModelRequest("m", "", "prompt text", question="How do I reset the VPN DNS settings?")
    text = ADAPTER.complete(request).text
    assert "[vpn-access]" in text and "`nwvpn down`" in text
    no_retriever = LocalExtractiveAdapter().complete(request).text
    assert no_retriever == NOT_IN_DOCS


def test_rendered_prompt_without_question_field() -> None:
    # A caller that sends only the rendered template (context + question) gets the same answer
    # as one that passes the question: the context must not be mistaken for the question.
    template = (BUNDLE / "prompts" / "answer.v1.md").read_text(encoding="utf-8")
    question = "How soon after a release flag reaches 100% rollout must it be removed?"
    passages = tuple(RETRIEVER.search(question))
    context = "\n\n".join(f"[{p.source_id}] {p.text}" for p in passages)
    prompt = template.replace("{{context}}", context).replace("{{question}}", question)
    assert question_from_prompt(prompt) == question
    via_prompt = ADAPTER.complete(ModelRequest("m", "", prompt, passages=passages)).text
    assert via_prompt == _ask(question)
    assert question_from_prompt("just a question?") == "just a question?"


def test_unrelated_passages_give_not_in_the_docs() -> None:
    passages = (Passage("x", "H", "Completely different words here.", 1.0),)
    request = ModelRequest("m", "", "", passages=passages, question="weather in Lisbon")
    assert ADAPTER.complete(request).text.startswith(NOT_IN_DOCS)


def test_weak_passages_are_not_quoted() -> None:
    passages = (
        Passage("strong", "H", "Flags are removed within 30 days.", 10.0),
        Passage("weak", "H", "Flags exist.", 2.0),
    )
    request = ModelRequest("m", "", "", passages=passages, question="when are flags removed")
    assert _cited(ADAPTER.complete(request).text) == {"strong"}


def test_budget_and_unit_limit() -> None:
    adapter = LocalExtractiveAdapter(RETRIEVER, max_units=1)
    answer = adapter.complete(ModelRequest("m", "", "", question="What is the meal allowance per day abroad?")).text
    assert len(answer.splitlines()) == 3


# --- answer units ---------------------------------------------------------------------------


def test_answer_units_keep_list_items_whole_and_split_prose() -> None:
    text = (
        "Intro sentence one. Intro `two` follows? Yes! End\n\n"
        '- **"handshake did not complete"**: usually an expired session. Run\n'
        "  `nwvpn login`, then `nwvpn up` again.\n"
        "- Restricted information stays in approved systems:\n"
        "  - credentials in 1Password;\n"
        "  - customer data in the CRM.\n"
        "1. Step one.\n"
        "12) Step twelve.\n"
    )
    assert answer_units(text) == [
        "Intro sentence one.",
        "Intro `two` follows?",
        "Yes!",
        "End",
        '"handshake did not complete": usually an expired session. Run `nwvpn login`, then `nwvpn up` again.',
        "Restricted information stays in approved systems: credentials in 1Password; customer data in the CRM.",
        "Step one.",
        "Step twelve.",
    ]


def test_answer_units_render_table_rows_with_their_headers() -> None:
    text = "| Severity | Meaning |\n| --- | :---: |\n| SEV1 | Robots stopped |\n| SEV3 | None |\n"
    assert answer_units(text) == ["Severity: SEV1; Meaning: Robots stopped", "Severity: SEV3; Meaning: None"]


def test_answer_units_keep_code_fences() -> None:
    text = "Run this:\n\n```sh\nnwvpn diag\n```\n"
    assert answer_units(text) == ["Run this:", "```sh\nnwvpn diag\n```"]


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=300))
def test_any_question_gets_a_grounded_or_not_in_the_docs_answer(question: str) -> None:
    text = _ask(question)
    assert text.startswith(NOT_IN_DOCS) or _cited(text) <= {d.source_id for d in CORPUS}


def test_retrieval_plus_answer_fits_the_gateway_budget() -> None:
    # About 1 ms per request for the whole gateway: retrieval + this model must stay well under.
    questions = [c.input.question for c in GOLDEN.cases] * 20
    started = time.perf_counter()
    for q in questions:
        _ask(q)
    mean_ms = (time.perf_counter() - started) * 1000 / len(questions)
    assert mean_ms < 1.0, f"retrieval + local answer took {mean_ms:.3f} ms on average"
