"""The rollout gate: pure decisions over the rollout state of one workflow.

``decide(state, command, evidence, now)`` is the one place that computes a next state. It reads
nothing and writes nothing: the service (``controller.service.rollout``) gathers the evidence, calls it,
and persists what it returns. It returns ``Allowed(new_state, reasons, evidence)`` or
``Refused(reasons)``; a refusal is a value, never an exception, and lists *every* reason.

The package, one concept per module (everything is re-exported here)::

    state.py       RolloutState and its strict encoding; what each cohort is served
    commands.py    Promote, Rollback, AutoRollback, Kill, ReleaseKill
    decisions.py   Allowed / Refused, reason codes, the rules every command shares
    evidence.py    GateEvidence, eval history and its rules (fresh PASS, forced rollbacks)
    promotion.py   Promote, and the precedence that holds it: kill > rollback > promote
    rollback.py    Rollback and AutoRollback
    kill.py        Kill and ReleaseKill
    approval.py    Approve: record an authenticated approval (rules in core.approvals)

The policy (operators, cohorts, bake times, approvals, ``eval.max_result_age``) is the deployed
bundle's ``workflow.yaml`` (``GateEvidence.policy``), not the snapshot inside the release being
promoted: a release cannot loosen the rules that admit it.

Decisions documented here, once:

- **Idempotence.** Promoting a release to a cohort it already holds (or promoting the stable
  release) is an ``Allowed`` no-op, as are a rollback with nothing to undo, a kill of an engaged
  switch and a release of a released one. Retries after a lost response are therefore safe.
- **Eval verdicts** (``controller.core.verdict``): only a fresh, verified, latest PASS promotes;
  only a FAIL that is the latest conclusive result rolls back; an INCONCLUSIVE result is "no
  fresh evidence": it never passes a gate and never rolls anything back.
- **Unknown evidence fails closed.** Eval history that was not gathered, could not be read or
  verified, judges another digest, carries an unknown verdict or finished in the future refuses.
"""

from __future__ import annotations

import datetime as dt

from controller.core.gates.approval import approve
from controller.core.gates.commands import Approve, AutoRollback, Command, Kill, Promote, ReleaseKill, Rollback
from controller.core.gates.decisions import Allowed, Decision, Reason, ReasonCode, Refused
from controller.core.gates.evidence import (
    CLOCK_SKEW,
    EvalEvidence,
    EvalHistory,
    GateEvidence,
    due_rollbacks,
    eval_problems,
    failed_eval,
    latest,
    latest_conclusive,
    no_fresh_evidence,
    no_fresh_evidence_notes,
)
from controller.core.gates.kill import kill, release_kill
from controller.core.gates.promotion import Precedence, promote
from controller.core.gates.rollback import auto_rollback, rollback
from controller.core.gates.state import (
    COHORTS,
    MAX_LAST_ACTIONS,
    MAX_PREVIOUS_STABLES,
    OFF,
    STATE_SCHEMA,
    SYSTEM_OPERATORS,
    ActionNote,
    Candidate,
    KillSwitchState,
    RolloutState,
    next_cohort,
    served,
)
from controller.core.timefmt import is_aware
from controller.errors import InvalidInput

__all__ = [
    "CLOCK_SKEW",
    "COHORTS",
    "MAX_LAST_ACTIONS",
    "MAX_PREVIOUS_STABLES",
    "OFF",
    "STATE_SCHEMA",
    "SYSTEM_OPERATORS",
    "ActionNote",
    "Allowed",
    "Approve",
    "AutoRollback",
    "Candidate",
    "Command",
    "Decision",
    "EvalEvidence",
    "EvalHistory",
    "GateEvidence",
    "Kill",
    "KillSwitchState",
    "Precedence",
    "Promote",
    "Reason",
    "ReasonCode",
    "Refused",
    "ReleaseKill",
    "Rollback",
    "RolloutState",
    "decide",
    "due_rollbacks",
    "eval_problems",
    "failed_eval",
    "latest",
    "latest_conclusive",
    "next_cohort",
    "no_fresh_evidence",
    "no_fresh_evidence_notes",
    "served",
]


def decide(state: RolloutState, command: Command, evidence: GateEvidence, now: dt.datetime) -> Decision:
    """The next state for ``command``, or every reason it may not happen. Pure."""
    if not is_aware(now):
        raise InvalidInput("the gate's clock must be timezone-aware.")
    if isinstance(command, Promote):
        return promote(state, command, evidence, now)
    if isinstance(command, Rollback):
        return rollback(state, command, evidence, now)
    if isinstance(command, AutoRollback):
        return auto_rollback(state, command, evidence, now)
    if isinstance(command, Kill):
        return kill(state, command, now)
    if isinstance(command, ReleaseKill):
        return release_kill(state, command, evidence, now)
    if isinstance(command, Approve):
        return approve(state, command, evidence, now)
    raise InvalidInput(f"unknown rollout command {command!r}.")
