"""Stored eval results: the result document, its key, and the loader that re-verifies every byte.

Results are create-only, one object per run::

    evals/<digest>/<finished_at as 20261126T171500123456Z>-<content_hash[:16]>.json

Stored as canonical JSON carrying the release manifest and ``content_hash`` = sha256 of the
canonical JSON of the result without that field. ``load_results`` re-verifies every byte (the
object must be canonical), the hash, that the embedded manifest hashes to the digest it is
stored under, that the file name matches, and that the stored verdict (PASS, FAIL or
INCONCLUSIVE, ``controller.core.verdict``) follows from the stored cases; anything else is
refused with ``InvalidInput`` (exit 2) naming the key. An INCONCLUSIVE result is stored like
any other: it is the record that an eval ran and proved nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from controller import __version__
from controller.core.release import canonical_json, release_digest
from controller.core.timefmt import parse_time
from controller.core.verdict import Verdict
from controller.errors import InvalidInput
from controller.evals.scoring import CaseResult, judge
from controller.ports import Store

__all__ = [
    "RESULT_SCHEMA",
    "EvalResult",
    "EvidenceSeal",
    "build_result",
    "latest_result",
    "list_all_results",
    "load_results",
    "rejudge",
    "result_key",
    "signature_key",
    "store_result",
]

RESULT_SCHEMA = "ai-rollout.eval-result/v1"
_PREFIX = "evals/"
_STAMP = "%Y%m%dT%H%M%S%fZ"
_HEX = frozenset("0123456789abcdef")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def result_key(result: Mapping[str, Any]) -> str:
    """``evals/<digest>/<finished_at compact>-<content_hash[:16]>.json`` for a built result."""
    finished = parse_time(result["finished_at"])
    return f"{_PREFIX}{result['digest']}/{finished.strftime(_STAMP)}-{result['content_hash'][:16]}.json"


@dataclass(frozen=True)
class EvalResult:
    """One stored (or storable) eval of one release; ``raw`` is the exact result document."""

    key: str
    digest: str
    verdict: Verdict
    started_at: dt.datetime
    finished_at: dt.datetime
    content_hash: str
    rates: dict[str, float]
    operator: str
    model: dict[str, Any]
    raw: dict[str, Any] = field(repr=False)

    @property
    def passed(self) -> bool:
        return self.verdict is Verdict.PASS

    @property
    def inconclusive(self) -> bool:
        return self.verdict is Verdict.INCONCLUSIVE

    @property
    def workflow(self) -> str:
        return str(self.raw["workflow"])

    @property
    def manifest(self) -> dict[str, Any]:
        return self.raw["manifest"]

    @property
    def cases(self) -> list[dict[str, Any]]:
        return self.raw["cases"]

    @property
    def failed_cases(self) -> list[dict[str, Any]]:
        return [c for c in self.cases if not c["passed"]]

    @property
    def reasons(self) -> list[str]:
        return list(self.raw["reasons"])

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> EvalResult:
        env = raw["environment"]
        return cls(
            key=result_key(raw),
            digest=raw["digest"],
            verdict=Verdict(raw["verdict"]),
            started_at=parse_time(raw["started_at"]),
            finished_at=parse_time(raw["finished_at"]),
            content_hash=raw["content_hash"],
            rates={k: float(v["rate"]) for k, v in raw["categories"].items()},
            operator=str(env["operator"]),
            model=dict(env["model"]),
            raw=raw,
        )


def build_result(
    *,
    manifest: Mapping[str, Any],
    cases: Sequence[CaseResult],
    thresholds: Mapping[str, float],
    started_at: dt.datetime,
    finished_at: dt.datetime,
    operator: str,
    extra_environment: Mapping[str, Any] | None = None,
) -> EvalResult:
    """The result document for ``cases`` of the release ``manifest`` describes. Pure."""
    for name, t in (("started_at", started_at), ("finished_at", finished_at)):
        if t.tzinfo is None:
            raise ValueError(f"{name} must be timezone-aware")
    judged = judge(cases, thresholds)
    model = manifest["model"]
    raw: dict[str, Any] = {
        "schema": RESULT_SCHEMA,
        "digest": release_digest(manifest),
        "workflow": manifest["workflow"],
        "verdict": judged.verdict.value,
        "reasons": list(judged.reasons),
        "started_at": started_at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
        "finished_at": finished_at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
        "environment": {
            "model": {"adapter": model["adapter"], "id": model["id"]},
            "operator": operator,
            "package_version": __version__,
            **(extra_environment or {}),
        },
        "thresholds": {str(k): float(v) for k, v in thresholds.items()},
        "categories": {c.category: c.to_dict() for c in judged.categories},
        "cases": [c.to_dict() for c in cases],
        "manifest": dict(manifest),
    }
    # JSON round trip: the hash must cover exactly what a reader will parse back
    raw = json.loads(canonical_json(raw))
    raw["content_hash"] = _sha256(canonical_json(raw))
    return EvalResult.from_dict(raw)


class EvidenceSeal(Protocol):
    """The evaluator's key (``controller.adapters.signing``): ``seal`` signs bytes, ``check`` says
    why an envelope is not a valid signature of them by that key (``None``: it is)."""

    def seal(self, data: bytes) -> bytes: ...

    def check(self, data: bytes, envelope: bytes) -> str | None: ...


def signature_key(key: str) -> str:
    """Where the signature of the stored object ``key`` lives (create-only, beside it)."""
    return f"signatures/{key}"


def store_result(store: Store, result: EvalResult, *, signer: EvidenceSeal | None = None) -> str:
    """Write ``result`` create-only under its release digest; ``AlreadyExists`` if present.

    With ``signer`` its signature is written first, so a crash never leaves an unsigned result
    (an orphan signature signs nothing that exists)."""
    data = canonical_json(result.raw)
    if signer is not None:
        store.create(signature_key(result.key), signer.seal(data))
    store.create(result.key, data)
    return result.key


def _sealed(store: Store, key: str, data: bytes, verifier: EvidenceSeal) -> None:
    envelope = store.get(signature_key(key))
    if envelope is None:
        raise InvalidInput(f"eval result {key}: is not signed by the evaluator's key; it cannot be used as evidence.")
    problem = verifier.check(data, envelope.data)
    if problem is not None:
        raise InvalidInput(f"eval result {key}: {problem}; it cannot be used as evidence.")


def _thresholds_match(key: str, raw: dict[str, Any], thresholds: Mapping[str, float]) -> dict[str, float]:
    policy = {str(k): float(v) for k, v in thresholds.items()}
    if raw.get("thresholds") != policy:
        raise InvalidInput(
            f"eval result {key}: was judged against thresholds {raw.get('thresholds')}, but the release it "
            f"judged sets {policy} (edited); it cannot be used as evidence."
        )
    return policy


def _verify(key: str, data: bytes, digest: str) -> EvalResult:
    def refuse(why: str) -> InvalidInput:
        return InvalidInput(f"eval result {key}: {why}; it cannot be used as evidence.")

    try:
        raw = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise refuse("is not valid JSON (truncated or edited)") from None
    if not isinstance(raw, dict):
        raise refuse("is not a result document")
    if canonical_json(raw) != data:
        raise refuse("is not byte-for-byte what was written (edited)")
    if raw.get("schema") != RESULT_SCHEMA:
        raise refuse(f"has schema {raw.get('schema')!r}, expected {RESULT_SCHEMA!r}")
    claimed = raw.get("content_hash")
    body = {k: v for k, v in raw.items() if k != "content_hash"}
    if not isinstance(claimed, str) or _sha256(canonical_json(body)) != claimed:
        raise refuse("does not match its content_hash (edited)")
    try:
        embedded = release_digest(raw["manifest"])
    except (KeyError, TypeError):
        raise refuse("carries no release manifest") from None
    if embedded != digest or raw.get("digest") != digest:
        raise refuse(
            f"is stored under release {digest[:12]} but judged release {str(raw.get('digest'))[:12]} "
            f"(its manifest hashes to {embedded[:12]}): a result of another release"
        )
    try:
        result = EvalResult.from_dict(raw)
    except (KeyError, TypeError, ValueError) as exc:
        raise refuse(f"is malformed ({type(exc).__name__}: {exc})") from None
    if result.key != key:
        raise refuse(f"does not match its file name (expected {result.key})")
    try:
        again = judge(raw["cases"], raw["thresholds"])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise refuse(f"has malformed cases or thresholds ({type(exc).__name__})") from None
    if again.verdict.value != raw["verdict"]:
        raise refuse(f"says {raw['verdict']} but its cases give {again.verdict.value}")
    return result


def load_results(
    store: Store,
    digest: str,
    *,
    verifier: EvidenceSeal | None = None,
    thresholds: Mapping[str, float] | None = None,
) -> list[EvalResult]:
    """Every stored result of release ``digest``, oldest first, each re-verified.

    Raises ``InvalidInput`` (exit 2) naming the key of any edited, truncated, misplaced or
    mismatched result: evidence that cannot be trusted is never silently skipped. With
    ``verifier`` every result must carry a valid signature by the evaluator's key; with
    ``thresholds`` (the judged release's ``eval.thresholds``) the verdict is re-derived against
    them, never against the result's own.
    """
    if len(digest) != 64 or not set(digest) <= _HEX:
        raise InvalidInput(f"release digest {digest!r} is not 64 lowercase hex characters.")
    results = []
    for key in store.list(f"{_PREFIX}{digest}/"):
        obj = store.get(key)
        if obj is None:
            continue
        result = _verify(key, obj.data, digest)
        if verifier is not None:
            _sealed(store, key, obj.data, verifier)
        results.append(result)
    if thresholds is not None:
        rejudge(results, thresholds)
    return sorted(results, key=lambda r: (r.finished_at, r.key))


def rejudge(results: Iterable[EvalResult], thresholds: Mapping[str, float]) -> None:
    """Refuse (``InvalidInput``) any result not judged against ``thresholds``, the judged
    release's own ``eval.thresholds``, or whose verdict they do not give."""
    for result in results:
        again = judge(result.cases, _thresholds_match(result.key, result.raw, thresholds))
        if again.verdict != result.verdict:
            raise InvalidInput(f"eval result {result.key}: its release's thresholds give {again.verdict.value}.")


def latest_result(store: Store, digest: str, **checks: Any) -> EvalResult | None:
    """The most recent verified result of release ``digest``, or ``None`` if it has none."""
    results = load_results(store, digest, **checks)
    return results[-1] if results else None


def list_all_results(store: Store, *, verifier: EvidenceSeal | None = None) -> list[EvalResult]:
    """Every stored result of every release, verified (and its signature, with ``verifier``), oldest first."""
    digests: set[str] = set()
    for key in store.list(_PREFIX):
        parts = key.split("/")
        if len(parts) != 3 or len(parts[1]) != 64 or not set(parts[1]) <= _HEX:
            raise InvalidInput(f"eval result {key}: not under evals/<digest>/; it cannot be used as evidence.")
        digests.add(parts[1])
    out = [r for d in sorted(digests) for r in load_results(store, d, verifier=verifier)]
    return sorted(out, key=lambda r: (r.finished_at, r.key))
