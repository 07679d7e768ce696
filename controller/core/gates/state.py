"""The rollout state of one workflow: what it holds, its strict JSON encoding, and what each
cohort is served. Pure data; the gate (``controller.core.gates``) computes the next one.

Per workflow: the stable release (served to every cohort the candidate has not reached; none at
first), the candidate and the cohorts it has reached in order (internal -> limited -> general;
reaching general makes it stable), the kill switch, the last actions, the audit chain head and
a revision. ``served`` follows from the state alone: the candidate for the cohorts it reached,
else the stable release, else off.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import Any

from controller.bundle.models import COHORT_ORDER
from controller.core.audit import ChainHead
from controller.core.timefmt import parse_time
from controller.errors import InvalidInput

__all__ = [
    "COHORTS",
    "MAX_LAST_ACTIONS",
    "MAX_PREVIOUS_STABLES",
    "OFF",
    "STATE_SCHEMA",
    "SYSTEM_OPERATORS",
    "ActionNote",
    "Candidate",
    "KillSwitchState",
    "RolloutState",
    "next_cohort",
    "served",
]

COHORTS: tuple[str, ...] = COHORT_ORDER
OFF = "off"
STATE_SCHEMA = "ai-rollout.rollout-state/v1"
# Actors that are not people: they may only do what evidence forces (AutoRollback).
SYSTEM_OPERATORS = frozenset({"reconcile", "eval-run"})
MAX_LAST_ACTIONS = 10
MAX_PREVIOUS_STABLES = 10


@dataclass(frozen=True)
class KillSwitchState:
    # Set by Kill (anyone; never gated), cleared by ReleaseKill (an authorised operator).
    engaged: bool = False
    reason: str | None = None
    by: str | None = None
    at: str | None = None
    # Set by ReleaseKill and kept: a flag document killed before it may be replaced (publish_hold).
    released_at: str | None = None


@dataclass(frozen=True)
class Candidate:
    # Set by the first Promote of a release (to internal); extended by each later Promote;
    # cleared by Rollback / AutoRollback, or by reaching general (it then becomes stable).
    release: str
    reached: tuple[tuple[str, str], ...]  # (cohort, ISO time reached), in cohort order

    @property
    def cohorts(self) -> tuple[str, ...]:
        return tuple(c for c, _ in self.reached)

    def reached_at(self, cohort: str) -> dt.datetime:
        return _parse_time(dict(self.reached)[cohort], f"candidate.reached.{cohort}")


@dataclass(frozen=True)
class ActionNote:
    """One applied action, as the state remembers it (the audit chain has the full record)."""

    revision: int
    action: str
    operator: str
    at: str
    release: str | None
    reason: str | None


@dataclass(frozen=True)
class RolloutState:
    workflow: str
    # Incremented by every applied decision; equals the seq of the audit record that made it.
    revision: int = 0
    # Set when a candidate reaches general; replaced by AutoRollback of a failed stable release.
    stable: str | None = None
    # Earlier stable releases, newest first: where an AutoRollback of the stable release goes.
    previous_stables: tuple[str, ...] = ()
    # Incremented whenever the stable baseline changes. It is the flag document's
    # metadata.version: candidate promotions and rollbacks leave it alone, so a rollback
    # restores the flag document byte for byte.
    generation: int = 0
    candidate: Candidate | None = None
    kill: KillSwitchState = KillSwitchState()
    # Set by AutoRollback when no stable release passes (every cohort off); cleared by Promote.
    off_reason: str | None = None
    last_actions: tuple[ActionNote, ...] = ()
    # The audit chain head; set by the service after the record is stored, never by the gate.
    head: ChainHead | None = None

    # -- encoding (pure) ---------------------------------------------------------------------

    def body(self) -> dict[str, Any]:
        """The state as JSON data without the chain head: the audit record's ``from``/``to``."""
        return {
            "schema": STATE_SCHEMA,
            "workflow": self.workflow,
            "revision": self.revision,
            "stable": self.stable,
            "previous_stables": list(self.previous_stables),
            "generation": self.generation,
            "candidate": None
            if self.candidate is None
            else {
                "release": self.candidate.release,
                "reached": [{"cohort": c, "at": t} for c, t in self.candidate.reached],
            },
            "kill": dataclasses.asdict(self.kill),
            "off_reason": self.off_reason,
            "last_actions": [dataclasses.asdict(a) for a in self.last_actions],
        }

    def to_dict(self) -> dict[str, Any]:
        return {**self.body(), "head": None if self.head is None else self.head.to_dict()}

    @classmethod
    def from_body(cls, body: Any, head: ChainHead | None = None) -> RolloutState:
        """Parse strictly; ``InvalidInput`` naming the field when the state is malformed."""
        try:
            return _parse_body(body, head)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            if isinstance(exc, InvalidInput):
                raise
            raise InvalidInput(f"rollout state is malformed ({type(exc).__name__}: {exc}).") from None

    @classmethod
    def from_dict(cls, data: Any) -> RolloutState:
        if not isinstance(data, dict):
            raise InvalidInput("rollout state is not a JSON object.")
        head = data.get("head")
        body = {k: v for k, v in data.items() if k != "head"}
        if head is not None and (not isinstance(head, dict) or set(head) != {"seq", "hash"}):
            raise InvalidInput(f"rollout state: head must be {{seq, hash}}, not {head!r}.")
        parsed_head = None if head is None else ChainHead(head["seq"], head["hash"])
        return cls.from_body(body, parsed_head)


def _parse_body(body: Any, head: ChainHead | None) -> RolloutState:
    expected = set(RolloutState(workflow="x").body())
    if not isinstance(body, dict) or set(body) != expected:
        got = sorted(body) if isinstance(body, dict) else type(body).__name__
        raise InvalidInput(f"rollout state has the wrong fields: {got}.")
    if body["schema"] != STATE_SCHEMA:
        raise InvalidInput(f"rollout state schema {body['schema']!r}, expected {STATE_SCHEMA!r}.")
    cand = body["candidate"]
    candidate = None
    if cand is not None:
        reached = tuple((str(r["cohort"]), str(r["at"])) for r in cand["reached"])
        cohorts = tuple(c for c, _ in reached)
        if not reached or cohorts != COHORTS[: len(cohorts)] or len(cohorts) >= len(COHORTS):
            raise InvalidInput(
                f"rollout state: candidate cohorts {list(cohorts)} are not a proper prefix of {list(COHORTS)}."
            )
        candidate = Candidate(str(cand["release"]), reached)
    kill = body["kill"]
    state = RolloutState(
        workflow=str(body["workflow"]),
        revision=_int(body["revision"], "revision"),
        stable=body["stable"],
        previous_stables=tuple(str(d) for d in body["previous_stables"]),
        generation=_int(body["generation"], "generation"),
        candidate=candidate,
        kill=KillSwitchState(bool(kill["engaged"]), kill["reason"], kill["by"], kill["at"], kill.get("released_at")),
        off_reason=body["off_reason"],
        last_actions=tuple(
            ActionNote(
                _int(a["revision"], "last_actions.revision"),
                str(a["action"]),
                str(a["operator"]),
                str(a["at"]),
                a["release"],
                a["reason"],
            )
            for a in body["last_actions"]
        ),
        head=head,
    )
    for name in ("stable", "off_reason"):
        if body[name] is not None and not isinstance(body[name], str):
            raise InvalidInput(f"rollout state: {name} must be a string or null.")
    if state.body() != body:
        raise InvalidInput("rollout state does not round-trip (a field has the wrong type).")
    return state


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInput(f"rollout state: {name} must be a non-negative integer, not {value!r}.")
    return value


def served(state: RolloutState) -> dict[str, str]:
    """Cohort -> release digest or ``off``: the candidate where it reached, else stable, else off."""
    base = state.stable or OFF
    reached = set(state.candidate.cohorts) if state.candidate else set()
    return {c: (state.candidate.release if c in reached else base) for c in COHORTS}  # type: ignore[union-attr]


def next_cohort(state: RolloutState, release: str | None) -> str | None:
    """The cohort a promotion of ``release`` would target next (None: it is already stable)."""
    if release is not None and state.candidate is not None and state.candidate.release == release:
        return COHORTS[len(state.candidate.cohorts)]
    if release is not None and release == state.stable and state.candidate is None:
        return None
    return COHORTS[0]


def _parse_time(text: str, what: str) -> dt.datetime:
    try:
        return parse_time(text)
    except ValueError as exc:
        raise InvalidInput(f"rollout state: {what}: {exc}.") from None
