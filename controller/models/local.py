"""The offline default model: an EXTRACTIVE baseline that quotes the corpus. Not an LLM.

``LocalExtractiveAdapter`` answers with the sentences, list items and table rows of the
retrieved passages that share the most informative terms with the question, each followed
by its ``[source-id]``, and with an honest "not in the docs" answer when nothing relevant was
retrieved. It never paraphrases, so every number, duration, command and channel name it
shows is exactly as written in the cited document; it also cannot combine facts, resolve a
"why", or refuse out-of-scope requests that happen to match the corpus. It exists so the
gateway, the evals and the rollout rails run end to end with no network and no model
vendor, and as the floor a real model has to beat. Deterministic: the same request always
gets the same answer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from controller.core.retrieval import Passage, Retriever, strip_placeholders, tokenize
from controller.models.base import ModelRequest, ModelResponse

__all__ = [
    "BASELINE_HEADERS",
    "LOCAL_MODEL_ID",
    "NOT_IN_DOCS",
    "LocalExtractiveAdapter",
    "answer_units",
    "question_from_prompt",
]

LOCAL_MODEL_ID = "local-extractive-v1"
NOT_IN_DOCS = "This is not in the docs. I can't find that in the internal documentation I may search."
_HEADER = "Quoted from the internal docs by the offline extractive baseline (not an AI model):"
# The first line of an answer, by workflow kind (``workflow.yaml`` ``use_case``): a support draft
# must not read like a docs answer, and must say it is a draft to check.
BASELINE_HEADERS = {
    "internal-doc-qa": _HEADER,
    "support-reply-drafting": "Draft reply for the agent to check and edit before sending, quoted from the support "
    "knowledge base by the offline extractive baseline (not an AI model):",
    "pr-review": "Review notes quoted from the coding standards by the offline extractive baseline (not an AI model):",
    "on-call-debugging": "Steps quoted from the runbooks by the offline extractive baseline (not an AI model); "
    "check each before running it:",
}


@dataclass(frozen=True)
class _Unit:
    passage: int  # rank of the passage it came from
    position: int  # order inside that passage
    text: str


def _clean(text: str) -> str:
    return " ".join(text.replace("**", "").split())


def _list_marker(stripped: str) -> int:
    """Length of a leading list marker ("- ", "* ", "12. "), 0 if the line has none."""
    if stripped[:2] in ("- ", "* ", "+ "):
        return 2
    digits = len(stripped) - len(stripped.lstrip("0123456789"))
    if 0 < digits < 4 and stripped[digits : digits + 2] in (". ", ") "):
        return digits + 2
    return 0


def _cells(row: str) -> list[str]:
    return [_clean(c) for c in row.strip().strip("|").split("|")]


def _sentences(paragraph: str) -> list[str]:
    """Split prose at ". ", "? ", "! " before a capital, digit, quote or backtick."""
    out, start = [], 0
    for i, ch in enumerate(paragraph):
        if ch in ".?!" and i + 2 < len(paragraph) and paragraph[i + 1] == " ":
            nxt = paragraph[i + 2]
            if nxt.isupper() or nxt.isdigit() or nxt in "`\"'(":
                out.append(paragraph[start : i + 1].strip())
                start = i + 2
    tail = paragraph[start:].strip()
    if tail:
        out.append(tail)
    return out


def answer_units(text: str) -> list[str]:
    """The quotable units of a markdown passage, in order.

    A list item (with its indented continuation and sub-items) is one unit, because its
    sentences depend on each other ("... usually an expired session. Run `nwvpn login`");
    a table row becomes "Header: cell; Header: cell"; prose is split into sentences.
    """
    units: list[str] = []
    item: list[str] | None = None
    paragraph: list[str] = []
    header: list[str] | None = None
    fence: list[str] | None = None

    def flush() -> None:
        nonlocal item, paragraph
        if item:
            units.append(_clean(" ".join(item)))
        item = None
        if paragraph:
            units.extend(_sentences(_clean(" ".join(paragraph))))
        paragraph = []

    for line in text.splitlines():
        stripped = line.strip()
        if fence is not None:
            fence.append(line)
            if stripped.startswith("```"):
                units.append("\n".join(fence))
                fence = None
            continue
        if stripped.startswith("```"):
            flush()
            fence = [line]
            continue
        if not stripped:
            flush()
            header = None
            continue
        if stripped.startswith("|"):
            flush()
            cells = _cells(stripped)
            if header is None:
                header = cells
            elif not all(c and set(c) <= set("-: ") for c in cells):
                pairs = [f"{h}: {c}" if h else c for h, c in zip(header, cells, strict=False)]
                units.append("; ".join(pairs))
            continue
        header = None
        marker = _list_marker(stripped)
        if marker and not (item is not None and line[:1] in " \t"):
            flush()
            item = [stripped[marker:]]
        elif item is not None:
            item.append(stripped[marker:])  # continuation line or nested item
        else:
            paragraph.append(stripped)
    flush()
    if fence:
        units.append("\n".join(fence))
    return [u for u in units if u]


def question_from_prompt(prompt: str) -> str:
    """The question inside a rendered prompt: what follows its last "Question:" line.

    A fallback for callers that send only the rendered template; pass
    ``ModelRequest.question`` instead, since a template may put the question elsewhere.
    Without such a line the whole prompt is taken to be the question.
    """
    lines = prompt.splitlines()
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].strip().lstrip("#").strip().lower() == "question:":
            return "\n".join(lines[i + 1 :]).strip()
    return prompt


class LocalExtractiveAdapter:
    """Offline extractive baseline (``local-extractive-v1``): quotes the corpus, is no LLM.

    Scores against ``request.question`` (else the question found in ``request.prompt``, see
    ``question_from_prompt``). Reads ``request.passages``; when they are ``None`` (the caller
    did not retrieve) it searches ``retriever`` itself. Quotes at most ``max_units`` units and about
    ``budget_chars`` characters from the passages scoring at least ``passage_floor`` of the
    best one, choosing units whose idf-weighted term overlap with the question is at least
    ``relative_floor`` of the best unit's, shown in passage rank order, then document order.
    """

    name = "local"

    def __init__(
        self,
        retriever: Retriever | None = None,
        *,
        contact: str | None = None,
        use_case: str | None = None,
        max_units: int = 4,
        budget_chars: int = 800,
        relative_floor: float = 0.3,
        passage_floor: float = 0.5,
    ):
        self.retriever = retriever
        self.contact = contact
        self.header = BASELINE_HEADERS.get(use_case or "", _HEADER)
        self.max_units = max_units
        self.budget_chars = budget_chars
        self.relative_floor = relative_floor
        self.passage_floor = passage_floor

    @property
    def not_in_docs(self) -> str:
        return f"{NOT_IN_DOCS} Ask in {self.contact}." if self.contact else NOT_IN_DOCS

    def complete(self, request: ModelRequest) -> ModelResponse:
        started = time.perf_counter()
        question = request.question or question_from_prompt(request.prompt)
        passages = request.passages
        if passages is None:
            passages = tuple(self.retriever.search(question)) if self.retriever else ()
        text = self._answer(question, passages)
        return ModelResponse(
            text=text,
            model_id=LOCAL_MODEL_ID,
            input_tokens=len(request.system.split()) + len(request.prompt.split()),
            output_tokens=len(text.split()),
            latency_ms=(time.perf_counter() - started) * 1000,
            stop_reason="end_turn",
        )

    def _weights(self, question: str) -> dict[str, float]:
        if self.retriever is not None:
            return self.retriever.query_terms(question)
        return dict.fromkeys(tokenize(strip_placeholders(question)), 1.0)

    def _answer(self, question: str, passages: tuple[Passage, ...]) -> str:
        weights = self._weights(question)
        scored: list[tuple[float, _Unit]] = []
        top = max((p.score for p in passages), default=0.0)
        for rank, passage in enumerate(passages):
            if passage.score < top * self.passage_floor:
                continue  # a weak passage made the context; its sentences are off topic
            for position, unit in enumerate(answer_units(passage.text)):
                score = sum(weights.get(t, 0.0) for t in set(tokenize(unit)))
                if score > 0:
                    scored.append((score, _Unit(rank, position, unit)))
        if not scored:
            return self.not_in_docs
        scored.sort(key=lambda su: (-su[0], su[1].passage, su[1].position))
        floor = scored[0][0] * self.relative_floor
        chosen: list[_Unit] = []
        used = 0
        for score, unit in scored:
            if score < floor or len(chosen) >= self.max_units:
                break
            if chosen and used + len(unit.text) > self.budget_chars:
                continue
            chosen.append(unit)
            used += len(unit.text)
        chosen.sort(key=lambda u: (u.passage, u.position))
        lines = [self.header, ""]
        lines += [f"- {u.text} [{passages[u.passage].source_id}]" for u in chosen]
        return "\n".join(lines)
