"""The data plane: every request, locally (`rollout ask`/`serve`) and in AWS (the gateway Lambda).

identity -> kill switch -> release flag -> load the release -> boundaries on the question ->
retrieval -> boundaries on the context -> model -> boundaries on the output -> one audit
record -> answer (or the documented fallback). Every error path fails closed: when identity,
flags, the release store or the model cannot be read, the AI path is off and the bundle's
fallback answers.
"""

from __future__ import annotations

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

from controller.adapters.flagd_source import OFF, FlagDecision, FlagSource
from controller.adapters.request_sinks import REQUEST_SCHEMA, RequestSink
from controller.boundaries.redactor import bundle_redactor, summarize
from controller.bundle.models import Workflow
from controller.core.release import Release, load_release
from controller.errors import RolloutError

__all__ = ["AskResponse", "Decision", "Gateway", "render_prompt"]


class Decision(StrEnum):
    ANSWERED = "answered"
    BLOCKED = "blocked"  # a forbidden input: refused, naming the categories
    FALLBACK = "fallback"  # the model failed or the user is not in a cohort: fallback answer
    DISABLED = "disabled"  # kill switch engaged or flags unreadable
    REFUSED = "refused"  # identity rejected (401/403)


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

    def ask(self, question: str, token: str | None, *, eval_of: str | None = None) -> AskResponse:
        """Answer ``question`` for the bearer of ``token``; ``eval_of`` pins a release for its eval."""
        started = time.perf_counter()
        rec: dict[str, Any] = {
            "schema": REQUEST_SCHEMA,
            "request_id": str(uuid.uuid4()),
            "time": self.clock().isoformat(),
            "workflow": self.workflow.id,
            "eval": eval_of is not None,
            "latency_ms": {},
        }
        try:
            response = self._ask(question, token, eval_of, rec, started)
        except Exception as exc:  # noqa: BLE001 - fail closed on anything unexpected, and record it
            rec.setdefault("error", f"{type(exc).__name__}")
            response = self._fallback(rec, Decision.FALLBACK, f"internal error ({type(exc).__name__})")
        rec["decision"] = response.decision.value
        rec["reason"] = response.reason
        rec["latency_ms"]["total"] = round((time.perf_counter() - started) * 1000, 3)
        self._scrub(rec)
        self.sink.write(rec)
        return response

    def _ask(
        self, question: str, token: str | None, eval_of: str | None, rec: dict[str, Any], started: float
    ) -> AskResponse:
        lat = rec["latency_ms"]
        rec.update(
            subject=None, groups=[], release=None, cohort=None, kill_switch=None, prompt_template=None,
            context_sources=[], model=None, prompt=None, output=None, findings={},
        )
        # 1. identity
        t = time.perf_counter()
        try:
            identity = self.verifier.verify(token or "")
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

        # 4. boundaries on the question
        t = time.perf_counter()
        checked = served.redactor.apply(question)
        lat["boundaries"] = _ms(t)
        rec["prompt"] = checked.text
        rec["findings"]["prompt"] = summarize(checked.findings)
        if checked.blocked:
            cats = tuple(checked.blocked_categories)
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

        # 6. the model; any failure answers with the fallback
        from controller.models.base import ModelError, ModelRequest

        prompt = render_prompt(release.prompt.text, checked.text, clean)
        t = time.perf_counter()
        try:
            reply = served.adapter.complete(
                ModelRequest(
                    model_id=release.model.model_id, system="", prompt=prompt, passages=tuple(clean),
                    question=checked.text,
                )
            )
        except ModelError as exc:
            lat["model"] = _ms(t)
            rec["error"] = type(exc).__name__
            return self._fallback(rec, Decision.FALLBACK, f"model unavailable ({type(exc).__name__})")
        lat["model"] = _ms(t)

        # 7. boundaries on the output before it is logged or returned
        out = served.redactor.apply(reply.text)
        rec["output"] = out.text
        rec["findings"]["output"] = summarize(out.findings)
        if out.blocked:
            return self._fallback(rec, Decision.FALLBACK, "model output contained forbidden content")
        cited = tuple(s for s in rec["context_sources"] if f"[{s}]" in out.text)
        verify = release.workflow.review.requires_human_verification
        if verify:
            rec["requires_human_verification"] = True
        return AskResponse(
            rec["request_id"], Decision.ANSWERED, 200, out.text, citations=cited, release=digest,
            model=release.model.model_id, reason="answered", requires_human_verification=verify,
        )

    def release(self, digest: str) -> Release:
        """The release exactly as served: loaded, verified once and cached by digest."""
        return self._served(digest).release

    # --- helpers ------------------------------------------------------------------------------

    def _fallback(self, rec: dict[str, Any], decision: Decision, reason: str) -> AskResponse:
        fb = self.workflow.fallback
        answer = f"{fb.message.strip()} ({fb.contact}, {fb.link})"
        status = 200 if decision is not Decision.DISABLED else 503
        return AskResponse(rec["request_id"], decision, status, answer, release=rec.get("release"), reason=reason)

    def _scrub(self, rec: dict[str, Any]) -> None:
        """The log's own floor: every builtin detector redacts the logged text, whatever the release.

        A release whose boundaries were weakened (a category removed, an action relaxed) must not
        turn the audit bucket, kept under Object Lock for years, into a store of secrets.
        """
        if self._log_redactor is None:
            from controller.boundaries.detectors import builtin_detectors
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


def _with_text(passage: Any, text: str) -> Any:
    import dataclasses

    return passage if passage.text == text else dataclasses.replace(passage, text=text)


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 3)
