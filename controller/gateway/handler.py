"""The data plane: every request, locally (`rollout ask`/`serve`) and in AWS (the gateway Lambda).

identity -> kill switch -> release flag -> load the release -> boundaries on the question ->
retrieval -> boundaries on the context -> model -> boundaries on the output -> one audit
record -> answer (or the documented fallback). Every error path fails closed: when identity,
flags, the release store or the model cannot be read, the AI path is off and the bundle's
fallback answers.

The invariant: every call of ``ask`` / ``ask_stream`` writes exactly one audit record. Text
that cannot be encoded (lone surrogates) is replaced with U+FFFD and counted
(``findings.sanitized``) before anything sees it; an unexpected failure inside the pipeline
is recorded with decision ``error`` and answered with HTTP 500 and the fallback text.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from controller.boundaries.redactor import bundle_redactor, summarize
from controller.bundle.models import Workflow
from controller.core.release import Release, load_release
from controller.errors import RolloutError
from controller.gateway.streaming import DEFAULT_HOLDBACK, StreamRedactor
from controller.ports import OFF, REQUEST_SCHEMA, FlagDecision, FlagSource, RequestSink

__all__ = ["AnswerStream", "AskResponse", "Decision", "Gateway", "render_prompt", "sanitize_text"]


class Decision(StrEnum):
    ANSWERED = "answered"
    BLOCKED = "blocked"  # a forbidden input: refused, naming the categories
    FALLBACK = "fallback"  # the model failed or the user is not in a cohort: fallback answer
    DISABLED = "disabled"  # kill switch engaged or flags unreadable
    REFUSED = "refused"  # identity rejected (401/403)
    ERROR = "error"  # an unexpected failure inside the pipeline (500), recorded before answering


@dataclass(frozen=True)
class AskResponse:
    request_id: str
    decision: Decision
    status: int
    answer: str
    citations: tuple[str, ...] = ()
    release: str | None = None
    model: str | None = None
    blocked_categories: tuple[str, ...] = ()
    reason: str = ""
    requires_human_verification: bool = False  # a draft: a person checks it before it is used (bundle review)

    def to_dict(self) -> dict[str, Any]:
        return {
            "requires_human_verification": self.requires_human_verification,
            "request_id": self.request_id,
            "decision": self.decision.value,
            "answer": self.answer,
            "citations": list(self.citations),
            "release": self.release,
            "model": self.model,
            "blocked_categories": list(self.blocked_categories),
            "reason": self.reason,
        }


class Verifier(Protocol):
    def verify(self, token: str) -> Any: ...


def sanitize_text(text: str) -> tuple[str, int]:
    """``text`` with every lone surrogate replaced by U+FFFD, and how many were replaced.

    JSON lets a client send ``"\\ud800"``; such a string cannot be encoded as UTF-8, so it must
    not reach the detectors, the model or the audit log as it is."""
    try:
        text.encode("utf-8")
        return text, 0
    except UnicodeEncodeError:
        pass
    out = []
    replaced = 0
    for ch in text:
        if "\ud800" <= ch <= "\udfff":
            out.append("\ufffd")
            replaced += 1
        else:
            out.append(ch)
    return "".join(out), replaced


def render_prompt(template: str, question: str, passages: list[Any]) -> str:
    """Fill the versioned template; the context lists each passage with its source id."""
    context = "\n\n".join(f"[{p.source_id}] {p.text}" for p in passages) or "(no relevant documents)"
    return template.replace("{{context}}", context).replace("{{question}}", question)


@dataclass
class _Served:
    """A release ready to serve: its retriever, redactor and model adapter, built once."""

    release: Release
    retriever: Any
    redactor: Any
    adapter: Any


@dataclass
class Gateway:
    """One workflow's request handler; the same object behind the CLI, HTTP server and Lambda.

    ``workflow`` is the deployed policy (SSO, flag keys, fallback); behaviour (prompt, corpus,
    boundaries, model) comes from the release the flags select, loaded from ``store``.
    """

    workflow: Workflow
    verifier: Verifier
    flags: FlagSource
    store: Any
    sink: RequestSink
    subject_key: bytes
    adapter_factory: Callable[[Release, Any], Any]
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
    _cache: dict[str, _Served] = field(default_factory=dict)
    _log_redactor: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # --- the one entry point ---------------------------------------------------------------

    def ask(
        self, question: str, token: str | None, *, eval_of: str | None = None, history: tuple[str, ...] = ()
    ) -> AskResponse:
        """Answer ``question`` for the bearer of ``token``; ``eval_of`` pins a release for its eval.

        ``history`` is the rest of a chat conversation: it passes the same boundaries as the
        question (a blocked earlier message blocks the request) but is not sent to the model,
        whose prompt is the release's template."""
        started = time.perf_counter()
        rec = self._record(eval_of)
        try:
            step = self._prepare(question, token, eval_of, history, rec)
            response = step if isinstance(step, AskResponse) else self._complete(step, rec)
        except Exception as exc:  # noqa: BLE001 - fail closed on anything unexpected, and record it
            response = self._error(rec, exc)
        self._write(rec, response, started)
        return response

    def ask_stream(
        self, question: str, token: str | None, *, history: tuple[str, ...] = ()
    ) -> AskResponse | AnswerStream:
        """Like ``ask``, but an answer comes as an ``AnswerStream`` of redacted deltas; any other
        decision is returned (and recorded) at once. The stream writes its record when it ends."""
        started = time.perf_counter()
        rec = self._record(None)
        try:
            step = self._prepare(question, token, None, history, rec)
        except Exception as exc:  # noqa: BLE001
            step = self._error(rec, exc)
        if isinstance(step, AskResponse):
            self._write(rec, step, started)
            return step
        return AnswerStream(self, step, rec, started)

    def _record(self, eval_of: str | None) -> dict[str, Any]:
        return {
            "schema": REQUEST_SCHEMA,
            "request_id": str(uuid.uuid4()),
            "time": self.clock().isoformat(),
            "workflow": self.workflow.id,
            "eval": eval_of is not None,
            "latency_ms": {},
            "subject": None, "groups": [], "release": None, "cohort": None, "kill_switch": None,
            "prompt_template": None, "context_sources": [], "model": None, "prompt": None, "output": None,
            "findings": {},
        }

    def _error(self, rec: dict[str, Any], exc: BaseException) -> AskResponse:
        rec["error"] = type(exc).__name__
        response = self._fallback(rec, Decision.ERROR, f"internal error ({type(exc).__name__})")
        return response

    def _write(self, rec: dict[str, Any], response: AskResponse, started: float) -> None:
        rec["decision"] = response.decision.value
        rec["reason"] = response.reason
        rec["latency_ms"]["total"] = round((time.perf_counter() - started) * 1000, 3)
        self._scrub(rec)
        self.sink.write(rec)

    def _prepare(
        self, question: str, token: str | None, eval_of: str | None, history: tuple[str, ...], rec: dict[str, Any]
    ) -> AskResponse | _Prepared:
        """Steps 1-5: everything before the model. Returns the final answer when one is due."""
        lat = rec["latency_ms"]
        question, replaced = sanitize_text(question)
        texts = []
        for text in history:
            clean_text, n = sanitize_text(text)
            texts.append(clean_text)
            replaced += n
        if replaced:
            rec["findings"]["sanitized"] = {"invalid_text": replaced}
        token, _ = sanitize_text(token or "")
        # 1. identity
        t = time.perf_counter()
        try:
            identity = self.verifier.verify(token)
        except RolloutError as exc:
            lat["identity"] = _ms(t)
            status = getattr(exc, "http_status", 401)
            return AskResponse(rec["request_id"], Decision.REFUSED, status, str(exc), reason=str(exc))
        lat["identity"] = _ms(t)
        rec["subject"] = self._pseudonym(identity.subject)
        rec["groups"] = list(identity.groups)

        # 2. kill switch, then the release flag. An eval pins the release it judges and runs even
        #    while the kill switch is engaged: it serves no user, and judging a fix must not wait.
        t = time.perf_counter()
        decision: FlagDecision = self.flags.decide(identity.subject, identity.email, tuple(identity.groups))
        lat["flags"] = _ms(t)
        rec["kill_switch"] = {"engaged": decision.killed, "reason": decision.kill_reason}
        rec["cohort"] = {"name": decision.cohort, "variant": decision.variant, "reason": decision.variant_reason}
        if eval_of is None and decision.killed:
            return self._fallback(rec, Decision.DISABLED, "kill switch engaged or flags unreadable")
        digest = eval_of or decision.variant
        if digest == OFF:
            return self._fallback(rec, Decision.FALLBACK, "not in a cohort that is served a release")
        rec["release"] = digest

        # 3. the release snapshot (cached by digest); unreadable -> fallback
        try:
            served = self._served(digest)
        except RolloutError as exc:
            return self._fallback(rec, Decision.FALLBACK, f"release unavailable: {exc}")
        release = served.release
        rec["prompt_template"] = {
            "id": release.prompt.id, "version": release.prompt.version, "sha256": release.manifest["prompt"]["sha256"],
        }
        rec["model"] = release.model.to_dict()

        # 4. boundaries on the question (and on the rest of a conversation)
        t = time.perf_counter()
        checked = served.redactor.apply(question)
        blocked = set(checked.blocked_categories)
        prompt_findings = list(checked.findings)
        for text in texts:
            earlier = served.redactor.apply(text)
            blocked.update(earlier.blocked_categories)
            prompt_findings.extend(earlier.findings)
        lat["boundaries"] = _ms(t)
        rec["prompt"] = checked.text
        rec["findings"]["prompt"] = summarize(prompt_findings)
        if blocked:
            cats = tuple(sorted(blocked))
            message = (
                "This request was blocked because it contains forbidden input "
                f"({', '.join(cats)}). Remove it and ask again; see the published policy "
                "(`rollout policy`). Nothing was sent to the model."
            )
            return AskResponse(
                rec["request_id"], Decision.BLOCKED, 422, message, release=digest,
                blocked_categories=cats, reason="forbidden input",
            )

        # 5. retrieval over the release's corpus; the context passes the same boundaries
        t = time.perf_counter()
        passages = served.retriever.search(checked.text, k=4)
        lat["retrieval"] = _ms(t)
        clean = []
        context_findings: dict[str, int] = {}
        for p in passages:
            r = served.redactor.apply(p.text)
            for k, v in summarize(r.findings).items():
                context_findings[k] = context_findings.get(k, 0) + v
            if not r.blocked:
                clean.append(_with_text(p, r.text))
        rec["findings"]["context"] = context_findings
        rec["context_sources"] = sorted({p.source_id for p in clean})

        from controller.models.base import ModelRequest

        prompt = render_prompt(release.prompt.text, checked.text, clean)
        request = ModelRequest(
            model_id=release.model.model_id, system="", prompt=prompt, passages=tuple(clean), question=checked.text,
        )
        return _Prepared(served, request, digest)

    def _complete(self, step: _Prepared, rec: dict[str, Any]) -> AskResponse:
        """Steps 6-7: the model, then the boundaries on its output; any model failure falls back."""
        from controller.models.base import ModelError

        lat = rec["latency_ms"]
        t = time.perf_counter()
        try:
            reply = step.served.adapter.complete(step.request)
        except ModelError as exc:
            lat["model"] = _ms(t)
            rec["error"] = type(exc).__name__
            return self._fallback(rec, Decision.FALLBACK, f"model unavailable ({type(exc).__name__})")
        lat["model"] = _ms(t)

        out = step.served.redactor.apply(reply.text)
        rec["output"] = out.text
        rec["findings"]["output"] = summarize(out.findings)
        if out.blocked:
            return self._fallback(rec, Decision.FALLBACK, "model output contained forbidden content")
        return self._answered(step, rec, out.text)

    def _answered(self, step: _Prepared, rec: dict[str, Any], text: str) -> AskResponse:
        cited = tuple(s for s in rec["context_sources"] if f"[{s}]" in text)
        verify = step.served.release.workflow.review.requires_human_verification
        if verify:
            rec["requires_human_verification"] = True
        return AskResponse(
            rec["request_id"], Decision.ANSWERED, 200, text, citations=cited, release=step.digest,
            model=step.served.release.model.model_id, reason="answered", requires_human_verification=verify,
        )

    def release(self, digest: str) -> Release:
        """The release exactly as served: loaded, verified once and cached by digest."""
        return self._served(digest).release

    # --- helpers ------------------------------------------------------------------------------

    def fallback_text(self) -> str:
        fb = self.workflow.fallback
        return f"{fb.message.strip()} ({fb.contact}, {fb.link})"

    def _fallback(self, rec: dict[str, Any], decision: Decision, reason: str) -> AskResponse:
        answer = self.fallback_text()
        status = {Decision.DISABLED: 503, Decision.ERROR: 500}.get(decision, 200)
        return AskResponse(rec["request_id"], decision, status, answer, release=rec.get("release"), reason=reason)

    def _scrub(self, rec: dict[str, Any]) -> None:
        """The log's own floor: every builtin detector redacts the logged text, whatever the release.

        A release whose boundaries were weakened (a category removed, an action relaxed) must not
        turn the audit bucket, kept under Object Lock for years, into a store of secrets.
        """
        if self._log_redactor is None:
            from controller.boundaries import builtin_detectors
            from controller.boundaries.redactor import Action, Redactor

            detectors = builtin_detectors()
            self._log_redactor = Redactor(detectors, {d.category: Action.REDACT for d in detectors})
        for key in ("prompt", "output"):
            if rec.get(key):
                rec[key] = self._log_redactor.redact(rec[key])

    def _pseudonym(self, subject: str) -> str:
        return hmac.new(self.subject_key, subject.encode("utf-8"), hashlib.sha256).hexdigest()[:32]

    def _served(self, digest: str) -> _Served:
        served = self._cache.get(digest)
        if served is not None:
            return served
        with self._lock:
            if digest not in self._cache:
                self._cache[digest] = self._build(load_release(self.store, digest))
            return self._cache[digest]

    def _build(self, release: Release) -> _Served:
        from controller.core.retrieval import Retriever

        retriever = Retriever.from_docs(release.corpus)
        redactor = bundle_redactor(release.workflow.data_boundaries)
        return _Served(release, retriever, redactor, self.adapter_factory(release, retriever))


@dataclass(frozen=True)
class _Prepared:
    """A request that passed identity, flags and input boundaries: ready for the model."""

    served: _Served
    request: Any
    digest: str


class AnswerStream:
    """An answer as redacted text deltas, through a holdback window (``StreamRedactor``).

    Iterate it once; the audit record is written when iteration ends, fails or is abandoned
    (``close()``, e.g. the client went away). A model failure before anything was emitted
    becomes the fallback text; a blocking finding stops the stream with a policy message.
    ``response`` is the final ``AskResponse`` once the stream has ended.
    """

    def __init__(self, gateway: Gateway, step: _Prepared, rec: dict[str, Any], started: float):
        self.gateway, self.step, self.rec, self.started = gateway, step, rec, started
        self.request_id: str = rec["request_id"]
        self.release = step.digest
        self.model = step.served.release.model.model_id
        self.response: AskResponse | None = None
        self._gen: Any = None

    def __iter__(self) -> Any:
        if self._gen is not None:
            raise RuntimeError("an AnswerStream is iterated once")
        self._gen = self._run()
        return self._gen

    def close(self) -> None:
        """End the stream wherever it is and make sure its one record is written (idempotent)."""
        if self._gen is not None:
            self._gen.close()  # a started generator records in its finally; an unstarted one does not run
        if self.response is None:
            self._finish(None, "cut", cut=True)

    def _run(self) -> Any:
        from controller.models.base import ModelError

        gw, step, lat = self.gateway, self.step, self.rec["latency_ms"]
        redactor = StreamRedactor(step.served.redactor, getattr(gw, "stream_holdback", DEFAULT_HOLDBACK))
        t = time.perf_counter()
        outcome: str | None = None
        try:
            adapter = step.served.adapter
            if hasattr(adapter, "stream"):
                deltas = adapter.stream(step.request)
            else:
                deltas = [adapter.complete(step.request).text]
            for delta in deltas:
                out = redactor.feed(delta)
                if redactor.blocked:
                    break
                if out:
                    yield out
            if not redactor.blocked:
                tail = redactor.close()
                if tail:
                    yield tail
            if redactor.blocked:
                outcome = "blocked"
                yield _WITHHELD
        except ModelError as exc:
            self.rec["error"] = type(exc).__name__
            outcome = "model"
            if not redactor.emitted:
                yield gw.fallback_text()
            else:
                yield f"\n\n[answer interrupted: model unavailable ({type(exc).__name__})]"
        except GeneratorExit:
            outcome = "cut"
            raise
        except Exception as exc:  # noqa: BLE001 - recorded as an error below
            self.rec["error"] = type(exc).__name__
            outcome = "error"
        finally:
            lat["model"] = _ms(t)
            self._finish(redactor, outcome)

    def _finish(self, redactor: StreamRedactor | None, outcome: str | None, *, cut: bool = False) -> None:
        if self.response is not None:
            return  # exactly one record
        gw, rec = self.gateway, self.rec
        text = redactor.text if redactor is not None else ""
        rec["output"] = text
        rec["findings"]["output"] = dict(sorted(redactor.findings.items())) if redactor else {}
        if outcome == "blocked":
            response = gw._fallback(rec, Decision.FALLBACK, "model output contained forbidden content")
        elif outcome == "model":
            response = gw._fallback(rec, Decision.FALLBACK, f"model unavailable ({rec.get('error')})")
        elif outcome == "error":
            response = gw._fallback(rec, Decision.ERROR, f"internal error ({rec.get('error')})")
        elif outcome == "cut" or cut:
            response = gw._answered(self.step, rec, text)
            response = dataclasses.replace(response, reason="client disconnected during the stream")
        else:
            response = gw._answered(self.step, rec, text)
        self.response = response
        gw._write(rec, response, self.started)


_WITHHELD = "\n\n[the rest of this answer was withheld: it contained content the data boundaries forbid]"


def _with_text(passage: Any, text: str) -> Any:
    return passage if passage.text == text else dataclasses.replace(passage, text=text)


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 3)
