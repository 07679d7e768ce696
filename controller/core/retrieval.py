"""Retrieval over the bundle's corpus: markdown passages ranked by Okapi BM25, offline.

The corpus is the only context a workflow may answer from, so retrieval is part of the
policy: a question the corpus does not cover must retrieve *nothing* (the answer is then
"not in the docs"), never the least-bad passage. Two floors enforce that:

- ``min_coverage``: the best ``gate_passages`` passages (two by default, so a question with
  two parts may be answered by two sections) must together contain at least this share of
  the question's informative weight: the idf of its terms, where a term the corpus never
  uses counts at the maximum idf, so a question about things the corpus does not know
  ("the weather in Lisbon", "my colleague's medical leave") scores low;
- ``relative_floor``: other passages are kept only when they score at least this share of the
  best one, so the context stays on topic.

Everything that does not depend on the question (passages, term statistics and each term's
BM25 contribution to each passage) is computed once in ``Retriever.from_docs``; a search is a
handful of dictionary look-ups. The tokenizer uses ``str`` methods only: no stdlib ``re``
runs on user text (project rule; ``re2`` is the only regex engine allowed there).
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from controller.bundle.models import CorpusDoc

__all__ = [
    "STOPWORDS",
    "Passage",
    "Retriever",
    "split_passages",
    "stem",
    "strip_placeholders",
    "tokenize",
]

# Function words and question boilerplate. Kept small on purpose: domain words such as
# "must", "access" or "team" stay searchable and are down-weighted by idf instead.
STOPWORDS = frozenset(
    """
    a about above after again all also am an and any are as at be been before being below
    between both but by can could did do does doing done down during each either else few for
    from further get gets had has have having he her here hers him his how i if in into is it
    its itself just let me might more most my myself no nor not now of off on once only or
    other our ours out over own please s same shall she should so some such t than that the
    their theirs them then there these they this those through to too under until up us very
    was we were what when where whether which while who whom whose why will with would you
    your yours
    """.split()  # noqa: SIM905 (a word list reads better as text)
)

# ASCII punctuation (everything but letters, digits and "_") and the common typographic
# marks become spaces; anything rarer is caught by the per-token ``isalnum`` check.
_SEPARATORS = str.maketrans(
    {
        **{chr(c): " " for c in range(128) if not (chr(c).isalnum() or chr(c) == "_")},
        **dict.fromkeys("\u00a0\u2018\u2019\u201c\u201d\u2013\u2014\u2026\u00b7\u2022\u2192", " "),
    }
)
_VOWELS = frozenset("aeiouy")
_PLACEHOLDER = "[REDACTED:"


@functools.lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A light suffix stripper (plurals, -ing, -ed, -ly, final -e), enough to match word forms.

    Deliberately conservative: tokens with digits are left alone and a stem always keeps a
    vowel and at least three letters, so "days"/"day", "travelling"/"travel",
    "internationally"/"international" and "acknowledged"/"acknowledge" meet while short
    words are untouched. Stems are index keys, not words: "escalates" becomes "escalat".
    """
    if len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith("sses"):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    for suffix, shortest in (("ing", 3), ("ed", 3), ("ly", 5)):
        if word.endswith(suffix):
            base = word[: -len(suffix)]
            if len(base) >= shortest and any(c in _VOWELS for c in base):
                if len(base) > 3 and base[-1] == base[-2] and base[-1] not in "lsz":
                    base = base[:-1]  # "stopped" -> "stop"
                word = base
            break
    if len(word) > 3 and word.endswith("ll"):
        word = word[:-1]  # always, so "travel"/"travelling" and "call"/"called" both meet
    if len(word) > 4 and word.endswith("e"):
        word = word[:-1]
    return word


def _words(text: str) -> list[str]:
    out = []
    for token in text.lower().translate(_SEPARATORS).split():
        if token.isalnum() or token.replace("_", "").isalnum():
            out.append(token)
        else:  # a rare non-ASCII separator inside the token: split on it by hand
            word = []
            for ch in token:
                if ch.isalnum() or ch == "_":
                    word.append(ch)
                elif word:
                    out.append("".join(word))
                    word = []
            if word:
                out.append("".join(word))
    return out


def tokenize(text: str) -> list[str]:
    """Lowercased, stemmed word tokens of ``text`` without stopwords or one-letter words."""
    return [stem(w) for w in _words(text) if w not in STOPWORDS and (len(w) > 1 or w.isdigit())]


def strip_placeholders(text: str) -> str:
    """Drop ``[REDACTED:type]`` placeholders: they say what was removed, not what is asked."""
    start = text.find(_PLACEHOLDER)
    if start < 0:
        return text
    parts = []
    pos = 0
    while start >= 0:
        end = text.find("]", start)
        if end < 0:
            break
        parts.append(text[pos:start])
        pos = end + 1
        start = text.find(_PLACEHOLDER, pos)
    parts.append(text[pos:])
    return " ".join(parts)


@dataclass(frozen=True)
class Passage:
    """One retrievable piece of a corpus document: a markdown section (or part of one)."""

    source_id: str
    heading: str
    text: str
    score: float = 0.0


def _heading(line: str) -> tuple[int, str] | None:
    stripped = line.lstrip()
    if not stripped.startswith("#") or line.startswith(("    ", "\t")):
        return None
    level = len(stripped) - len(stripped.lstrip("#"))
    rest = stripped[level:]
    if level > 6 or (rest and not rest.startswith(" ")):
        return None  # "#sec-incident" is a channel name, not a heading
    return level, rest.strip().rstrip("#").strip()


def _chunks(body: str, max_chars: int) -> list[str]:
    """Split an over-long section at paragraph breaks (blank lines outside code fences)."""
    if len(body) <= max_chars:
        return [body]
    paragraphs, current, fenced = [], [], False
    for line in body.split("\n"):
        if line.lstrip().startswith("```"):
            fenced = not fenced
        if not line.strip() and not fenced:
            if current:
                paragraphs.append("\n".join(current))
                current = []
            continue
        current.append(line)
    if current:
        paragraphs.append("\n".join(current))
    chunks, buf = [], ""
    for para in paragraphs:
        if buf and len(buf) + len(para) + 2 > max_chars:
            chunks.append(buf)
            buf = para
        else:
            buf = f"{buf}\n\n{para}" if buf else para
    if buf:
        chunks.append(buf)
    return chunks


def split_passages(doc: CorpusDoc, *, max_chars: int = 1500) -> list[Passage]:
    """Markdown sections of ``doc`` (text before the first section heading keeps the title).

    Headings of levels 2-6 start a section; a section longer than ``max_chars`` is split at
    paragraph breaks and each part keeps the section heading.
    """
    title = doc.source_id
    sections: list[tuple[str, list[str]]] = []
    heading, lines, fenced = "", [], False
    for line in doc.text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        parsed = None if fenced else _heading(line)
        if parsed is None:
            lines.append(line)
            continue
        level, text = parsed
        if level == 1 and not sections and not heading and not any(s.strip() for s in lines):
            title = text
            continue
        sections.append((heading, lines))
        heading, lines = text, []
    sections.append((heading, lines))
    passages = []
    for name, body_lines in sections:
        body = "\n".join(body_lines).strip()
        if not body:
            continue
        for chunk in _chunks(body, max_chars):
            passages.append(Passage(doc.source_id, name or title, chunk))
    return passages


class Retriever:
    """A BM25 index over one corpus; build it once with ``from_docs`` and share it.

    Immutable after construction, so one instance serves concurrent requests.
    """

    def __init__(
        self,
        passages: Iterable[Passage],
        *,
        titles: Mapping[str, str] | None = None,
        k1: float = 1.5,
        b: float = 0.75,
        min_coverage: float = 0.4,
        relative_floor: float = 0.3,
        gate_passages: int = 2,
    ):
        self.passages: tuple[Passage, ...] = tuple(passages)
        self.min_coverage = min_coverage
        self.relative_floor = relative_floor
        self.gate_passages = gate_passages
        titles = titles or {}
        # The title and heading are indexed with the body: "how do I use the VPN" should
        # find the VPN document's sections even when a section body never says "VPN".
        counts = [Counter(tokenize(f"{titles.get(p.source_id, '')}\n{p.heading}\n{p.text}")) for p in self.passages]
        n = len(counts)
        avg_len = (sum(sum(c.values()) for c in counts) / n) if n else 0.0
        df: Counter[str] = Counter()
        for c in counts:
            df.update(c.keys())
        self._idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in df.items()}
        self._unseen_idf = math.log(1 + (n + 0.5) / 0.5)
        # term -> ((passage index, BM25 contribution), ...): a search only adds these up.
        postings: dict[str, list[tuple[int, float]]] = {}
        for i, c in enumerate(counts):
            length = sum(c.values())
            norm = k1 * (1 - b + b * length / avg_len) if avg_len else k1
            for term, tf in c.items():
                weight = self._idf[term] * tf * (k1 + 1) / (tf + norm)
                postings.setdefault(term, []).append((i, weight))
        self._postings = {t: tuple(p) for t, p in postings.items()}

    @classmethod
    def from_docs(cls, docs: Iterable[CorpusDoc], **options: float) -> Retriever:
        """Index every passage of ``docs`` (keyword options are the constructor's floors)."""
        passages: list[Passage] = []
        titles: dict[str, str] = {}
        for doc in docs:
            parts = split_passages(doc)
            passages.extend(parts)
            titles[doc.source_id] = _title(doc)
        return cls(passages, titles=titles, **options)

    def idf(self, term: str) -> float:
        """Inverse document frequency of a (tokenized) term; unseen terms get the maximum."""
        return self._idf.get(term, self._unseen_idf)

    def query_terms(self, query: str) -> dict[str, float]:
        """The distinct terms of ``query`` with their idf weights, placeholders removed."""
        return {t: self.idf(t) for t in tokenize(strip_placeholders(query))}

    def search(self, query: str, k: int = 4) -> list[Passage]:
        """Up to ``k`` passages relevant to ``query``, best first; ``[]`` below the floors."""
        ranked, scores, coverage = self._rank(query)
        if not ranked or k <= 0 or coverage < self.min_coverage:
            return []
        floor = scores[ranked[0]] * self.relative_floor
        out = []
        for i in ranked[:k]:
            if scores[i] < floor:
                break
            p = self.passages[i]
            out.append(Passage(p.source_id, p.heading, p.text, round(scores[i], 4)))
        return out

    def coverage(self, query: str) -> float:
        """The share (0..1) of ``query``'s idf weight found in its best passages: what
        ``search`` compares with ``min_coverage``. Useful to tune the floor and to log."""
        return self._rank(query)[2]

    def _rank(self, query: str) -> tuple[list[int], dict[int, float], float]:
        terms = self.query_terms(query)
        total = sum(terms.values())
        scores: dict[int, float] = {}
        matched: dict[int, list[str]] = {}
        for term in terms:
            for i, contribution in self._postings.get(term, ()):
                scores[i] = scores.get(i, 0.0) + contribution
                matched.setdefault(i, []).append(term)
        if not scores:
            return [], scores, 0.0
        # Ties break on corpus order so results are deterministic.
        ranked = sorted(scores, key=lambda i: (-scores[i], i))
        covered = {t for i in ranked[: self.gate_passages] for t in matched[i]}
        return ranked, scores, sum(terms[t] for t in covered) / total


def _title(doc: CorpusDoc) -> str:
    for line in doc.text.splitlines():
        parsed = _heading(line)
        if parsed and parsed[0] == 1:
            return parsed[1]
        if line.strip():
            break
    return doc.source_id
