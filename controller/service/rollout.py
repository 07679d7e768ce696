"""The rollout service: load -> decide -> save for promote, rollback, kill, release-kill, reconcile.

The decision is ``controller.core.gates.decide`` (pure); this module gathers its evidence and makes
it durable. Each mutating command takes these steps, in this order:

    (a) read the state ``state/<workflow>.json`` (and its store version)
    (b) decide with the gate
    (c) append the audit record, create-only, seq = head + 1; its ``from``/``to`` are the state
        before and after (``RolloutState.body()``); ``AlreadyExists`` -> re-read, retry
    (d) write the new state (with the new chain head) compare-and-swap on the version read in (a)
    (e) render the flag document from the state and write it atomically (``sync_flags``)

Crash safety, decided once: **roll forward**. The audit record is the decision; the state is
its consequence. A crash between (c) and (d) leaves the chain one record ahead of the state's
head; every load (``load``) finds the record at head + 1 and, when it extends the state (its
``prev_hash`` is the head's hash and its ``from`` is exactly the current state), writes its
``to`` as the state (CAS) and says so. Ignoring it instead would leave the chain asserting an
action that never took effect and wedge every later append on that seq. A record at head + 1
that does *not* extend the state means someone edited the state or the chain outside the
controller: ``InvalidInput`` (exit 2), see ``rollout audit verify``. A crash between (d) and (e)
leaves the flag file stale; (e) re-renders it from the state on every mutating command and is
idempotent, so the next command (or the cron ``reconcile``) repairs it.

Concurrency: the store serialises writers (LocalStore: create-only links and an flock'ed CAS;
S3: ``If-None-Match``/``If-Match`` conditional writes). A loser of (c) or (d) re-reads and
re-decides, up to ``max_attempts`` times with jittered backoff, then raises ``Conflict``
(exit 4). If (d) loses because another process already rolled *our* record forward, the
command succeeded. (e) takes a local flock and renders from a fresh read, so the last flag
write always reflects a state at least as new as every state written before it.

Kill is fail-safe: it reads no evals and needs only ``workflow.yaml``. When the state store
cannot be written (unreachable, conflicts exhausted, state or chain corrupt) it still writes the
flag document with the kill switch engaged, leaves a marker ``flags/<workflow>.kill-pending.json``
beside it, and raises the original error (exit 5 / 4 / 2) saying so. While the marker exists
every render keeps the kill switch engaged; the next mutating command that reaches the state
store records the kill in the state and the audit chain (operator and reason from the marker)
and removes the marker. Flag sinks (``controller.adapters.k8s_flags``) get the same bytes, best effort.

The flag document is a pure function of the state (``render``): ``metadata.version`` is the
state's ``generation`` (changes of the stable baseline), not its revision, so a rollback
restores the document byte for byte (with the kill switch in the same position). The controller
owns the live flag file from its first command on; a file the gateway seeded from the bundle
is replaced by the rendered equivalent (``rollout reconcile`` once does that explicitly).

Operator identity: ``--operator``, else the OS user (``getpass.getuser()``). With AWS the
accountable identity is the STS caller: ``sts_operator()`` calls ``sts:GetCallerIdentity`` and
uses the role session name (assumed roles, e.g. IAM Identity Center, where it is the SSO user
name) or the IAM user name as the operator, recording the full ARN in the audit evidence. A
role session name is chosen by whoever assumes the role, so only grant ``sts:AssumeRole`` on
the operators' role through the IdP.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import getpass
import json
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controller.adapters import flag_file as flag_files
from controller.adapters.flag_file import FileFlagSink
from controller.bundle.models import Workflow
from controller.core import audit
from controller.core.approvals import Approval, Principal, approvals_in
from controller.core.audit import GENESIS_HASH, AuditRecord, Verification
from controller.core.flags import encode_flag_document, render_flag_document
from controller.core.gates import (
    COHORTS,
    SYSTEM_OPERATORS,
    Allowed,
    Approve,
    AutoRollback,
    Command,
    Decision,
    EvalEvidence,
    EvalHistory,
    Evidence,
    Kill,
    Promote,
    Reason,
    Refused,
    ReleaseKill,
    Rollback,
    RolloutState,
    decide,
    due_rollbacks,
    latest,
    next_cohort,
    served,
)
from controller.core.timefmt import iso
from controller.errors import BackendUnavailable, Conflict, InvalidInput, RolloutError
from controller.ports import AlreadyExists, FlagSink, Store
from controller.service.publish import Published, publish_flags, publish_to

__all__ = [
    "DEFAULT_ATTEMPTS",
    "CallerIdentity",
    "FlagSync",
    "Loaded",
    "Outcome",
    "ReconcileOnFailedEval",
    "ReconcileReport",
    "RolloutService",
    "StatusReport",
    "StoreEvals",
    "canonical_state",
    "kill_marker_path",
    "operator_from_arn",
    "render",
    "resolve_operator",
    "state_key",
    "sts_operator",
]

DEFAULT_ATTEMPTS = 16


def state_key(workflow_id: str) -> str:
    return f"state/{workflow_id}.json"


def canonical_state(state: RolloutState) -> bytes:
    return audit.canonical_json(state.to_dict())


def kill_marker_path(flags_path: Path) -> Path:
    name = flags_path.name.removesuffix(".flagd.json").removesuffix(".json")
    return flags_path.with_name(f"{name}.kill-pending.json")


def render(
    workflow: Workflow, state: RolloutState, *, killed: bool = False, engaged_at: str | None = None
) -> dict[str, Any]:
    """The flag document for ``state`` (``killed`` forces the kill switch on, engaged at
    ``engaged_at``: a fail-safe kill the state does not know yet). Pure."""
    if state.kill.engaged:
        return render_flag_document(
            workflow, served(state), killed=True, engaged_at=state.kill.at, version=state.generation
        )
    return render_flag_document(
        workflow, served(state), killed=killed, engaged_at=engaged_at if killed else None, version=state.generation
    )


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# --- evidence sources ---------------------------------------------------------------------------


class StoreEvals:
    """Eval history from ``controller.evals.scoring.load_results`` (every result re-verified).

    ``verifier``: every result must be signed by the evaluator's key; ``release_store``: each
    verdict is re-derived against the thresholds of the release it judged (loaded from there)."""

    def __init__(self, store: Store, *, verifier: Any = None, release_store: Store | None = None) -> None:
        self.store = store
        self.verifier = verifier
        self.release_store = release_store

    def __call__(self, digest: str) -> EvalHistory:
        try:
            from controller.core.release import load_release
            from controller.evals.scoring import load_results, rejudge

            results = load_results(self.store, digest, verifier=self.verifier)
            if results and self.release_store is not None:
                release = load_release(self.release_store, digest)
                rejudge(results, {str(k): v for k, v in release.workflow.eval.thresholds.items()})
        except ImportError as exc:  # pragma: no cover - evals ships with the package
            return EvalHistory(error=f"controller.evals.scoring is unavailable ({exc})")
        except InvalidInput as exc:
            return EvalHistory(error=str(exc))
        except BackendUnavailable as exc:
            return EvalHistory(error=f"the eval store is unavailable: {exc}")
        return EvalHistory(
            tuple(
                EvalEvidence(r.digest, str(getattr(r.verdict, "value", r.verdict)), r.finished_at, r.content_hash)
                for r in results
            )
        )


def _release_problem(store: Store, digest: str) -> str | None:
    from controller.core.release import load_release

    try:
        load_release(store, digest)
    except InvalidInput as exc:
        return str(exc)
    except BackendUnavailable as exc:
        return f"the release store is unavailable: {exc}"
    return None


# --- results ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Loaded:
    state: RolloutState
    version: str | None  # the store's version token; None: no state yet
    repaired: tuple[str, ...] = ()
    pending: AuditRecord | None = None  # read-only loads: a logged record not yet applied
    problem: str | None = None  # read-only loads: the chain ahead of the state is not ours


@dataclass(frozen=True)
class FlagSync:
    path: Path
    changed: bool
    killed: bool
    served: dict[str, str]
    published: tuple[str, ...] = ()  # the flag sinks that had to be updated
    held: tuple[Published, ...] = ()  # sinks left as they were: releasing their kill needs an explicit release

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "path": str(self.path),
            "rewritten": self.changed,
            "killed": self.killed,
            "served": self.served,
            "published": list(self.published),
        }
        if self.held:
            out["held"] = [h.to_dict() for h in self.held]
        return out


@dataclass(frozen=True)
class Outcome:
    """What one command did. ``decision`` None: there was nothing to decide (reconcile)."""

    action: str
    decision: Decision | None
    state: RolloutState
    record: AuditRecord | None = None
    flags: FlagSync | None = None
    notes: tuple[str, ...] = ()

    @property
    def refused(self) -> bool:
        return isinstance(self.decision, Refused)

    @property
    def changed(self) -> bool:
        return self.record is not None

    @property
    def reasons(self) -> tuple[Reason, ...]:
        return () if self.decision is None else self.decision.reasons

    @property
    def exit_code(self) -> int:
        return 3 if self.refused else 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": not self.refused,
            "action": self.action,
            "decision": None if self.decision is None else ("refused" if self.refused else "allowed"),
            "changed": self.changed,
            "reasons": [r.to_dict() for r in self.reasons],
            "audit_seq": None if self.record is None else self.record.seq,
            "state": self.state.to_dict(),
            "served": served(self.state),
            "flags": None if self.flags is None else self.flags.to_dict(),
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class ReconcileReport:
    outcomes: tuple[Outcome, ...]
    state: RolloutState
    flags: FlagSync | None
    notes: tuple[str, ...] = ()

    @property
    def exit_code(self) -> int:
        return 3 if any(o.refused for o in self.outcomes) else 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.exit_code == 0,
            "actions": [o.to_dict() for o in self.outcomes],
            "state": self.state.to_dict(),
            "served": served(self.state),
            "flags": None if self.flags is None else self.flags.to_dict(),
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class StatusReport:
    workflow: str
    state: RolloutState
    served: dict[str, str]
    kill_pending: dict[str, Any] | None
    pending: AuditRecord | None
    problem: str | None
    flags_path: Path
    flags_in_sync: bool
    evals: dict[str, Any]
    due: list[str]
    next: dict[str, Any] | None
    store: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "workflow": self.workflow,
            "store": self.store,
            "state": self.state.to_dict(),
            "served": self.served,
            "kill_switch": {**dataclasses.asdict(self.state.kill), "pending_marker": self.kill_pending},
            "pending_audit_seq": None if self.pending is None else self.pending.seq,
            "problem": self.problem,
            "flags": {"path": str(self.flags_path), "in_sync": self.flags_in_sync},
            "evals": self.evals,
            "rollbacks_due": self.due,
            "next_promotion": self.next,
        }


# --- the service --------------------------------------------------------------------------------


class RolloutService:
    """Load -> decide -> save for one workflow over a Store and a local flag file."""

    def __init__(
        self,
        workflow: Workflow,
        store: Store,
        flags_path: Path,
        *,
        bundle_problems: Sequence[str] = (),
        eval_store: Store | None = None,
        evals: Callable[[str], EvalHistory] | None = None,
        release_check: Callable[[str], str | None] | None = None,
        clock: Callable[[], dt.datetime] = _utcnow,
        max_attempts: int = DEFAULT_ATTEMPTS,
        sleep: Callable[[float], None] = time.sleep,
        flag_sinks: Sequence[FlagSink] = (),
        signer: Any = None,
    ) -> None:
        """``signer`` (``controller.adapters.signing``): eval results must carry its signature and
        are re-judged against their release's thresholds; chain checkpoints are signed with it."""
        self.workflow = workflow
        self.signer = signer
        self.store = store
        self.flags_path = Path(flags_path)
        self.bundle_problems = tuple(bundle_problems)
        self.evals = evals or StoreEvals(
            eval_store if eval_store is not None else store,
            verifier=signer,
            release_store=store if signer is not None else None,
        )
        self.release_check = release_check or (lambda digest: _release_problem(store, digest))
        self.clock = clock
        self.max_attempts = max(1, max_attempts)
        self.sleep = sleep
        self.key = state_key(workflow.id)
        # The local document first (a kill must not wait on a remote sink), then where else the
        # same bytes go (S3, Kubernetes); all through the one publish path (service.publish).
        self.flag_file = FileFlagSink(self.flags_path)
        self.flag_sinks = tuple(flag_sinks)

    # -- reading ---------------------------------------------------------------------------------

    def _read(self) -> tuple[RolloutState, str | None]:
        got = self.store.get(self.key)
        if got is None:
            return RolloutState(workflow=self.workflow.id), None
        try:
            data = json.loads(got.data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise InvalidInput(f"rollout state {self.key} in {self.store.describe()} is not JSON.") from None
        state = RolloutState.from_dict(data)
        if state.workflow != self.workflow.id:
            raise InvalidInput(f"rollout state {self.key} belongs to workflow {state.workflow!r}.")
        return state, got.version

    def _next_record(self, state: RolloutState) -> AuditRecord | None:
        """The record at head + 1 when it extends ``state``; InvalidInput when it is foreign."""
        seq = (state.head.seq if state.head else 0) + 1
        got = self.store.get(audit.record_key(self.workflow.id, seq))
        if got is None:
            return None
        try:
            record = AuditRecord.from_json(got.data)
        except InvalidInput as exc:
            raise InvalidInput(f"audit record seq {seq} is unreadable ({exc}); run `rollout audit verify`.") from None
        prev = state.head.hash if state.head else GENESIS_HASH
        extends = (
            record.seq == seq
            and record.compute_hash() == record.hash
            and record.prev_hash == prev
            and audit.canonical_json(record.from_) == audit.canonical_json(state.body())
        )
        if not extends:
            raise InvalidInput(
                f"audit record seq {seq} does not extend the rollout state (state or chain changed outside "
                "the controller); run `rollout audit verify`."
            )
        return record

    def load(self, *, repair: bool = True) -> Loaded:
        """Read the state; with ``repair``, first complete any record logged but not applied.

        Without ``repair`` (status, history, verify) nothing is written and a record that does
        not extend the state is reported in ``problem`` instead of raised."""
        repaired: list[str] = []
        for attempt in range(self.max_attempts):
            state, version = self._read()
            if not repair:
                try:
                    return Loaded(state, version, (), self._next_record(state))
                except InvalidInput as exc:
                    return Loaded(state, version, (), None, str(exc))
            record = self._next_record(state)
            if record is None:
                return Loaded(state, version, tuple(repaired))
            completed = dataclasses.replace(RolloutState.from_body(record.to), head=record.head)
            with contextlib.suppress(Conflict):  # someone else moved the state; re-read
                self.store.replace(self.key, canonical_state(completed), expected=version)
                repaired.append(
                    f"completed audit seq {record.seq} ({record.action} by {record.operator}), "
                    "logged by a command that stopped before saving the state"
                )
            self._backoff(attempt, quick=True)
        raise Conflict(f"rollout state {self.key} kept changing while being repaired; retry.")

    def _backoff(self, attempt: int, *, quick: bool = False) -> None:
        if quick:
            return
        self.sleep(min(0.2, 0.002 * 2**attempt) * random.uniform(0.5, 1.5))

    # -- evidence --------------------------------------------------------------------------------

    def _evidence(self, releases: Iterable[str | None]) -> Evidence:
        evals = {d: self.evals(d) for d in dict.fromkeys(r for r in releases if r)}
        return Evidence(self.workflow, self.bundle_problems, evals)

    def _live_evidence(self, state: RolloutState, extra: Iterable[str | None] = ()) -> Evidence:
        live = [state.candidate.release if state.candidate else None, state.stable, *extra]
        evidence = self._evidence(live)
        if state.stable and any(d.release == state.stable for d in due_rollbacks(state, evidence)):
            # Only then do earlier stable releases matter (where the rollback goes).
            evidence = self._evidence([*live, *state.previous_stables])
        return evidence

    # -- flags -----------------------------------------------------------------------------------

    def kill_pending(self) -> dict[str, Any] | None:
        path = kill_marker_path(self.flags_path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {"operator": "unknown", "reason": f"unreadable kill marker {path}", "at": None}
        return (
            data if isinstance(data, dict) else {"operator": "unknown", "reason": "malformed kill marker", "at": None}
        )

    def flags_in_sync(self, state: RolloutState) -> bool:
        doc = render(self.workflow, state, killed=self.kill_pending() is not None)
        try:
            return self.flags_path.read_bytes() == encode_flag_document(doc)
        except OSError:
            return False

    def sync_flags(self, *, releasing_kill: bool = False) -> FlagSync:
        """(e): render the flag document from a fresh read of the state and publish it to the local
        file and every sink, through the one publish path: a sink whose live document has the kill
        switch engaged is left engaged unless this is the explicit release (``releasing_kill``)."""
        kill_flag = self.workflow.rollout.kill_switch_flag
        with self.flag_file.lock():
            state, _ = self._read()
            pending = self.kill_pending()
            killed = state.kill.engaged or pending is not None
            at = None if pending is None else pending.get("at")
            data = encode_flag_document(render(self.workflow, state, killed=killed, engaged_at=at))
            release = {"releasing_kill": releasing_kill, "released_at": state.kill.released_at}
            try:
                local = publish_to(self.flag_file, data, kill_flag, **release)
            except BackendUnavailable as exc:
                raise BackendUnavailable(f"{exc} The state is saved and the next command re-renders it.") from exc
            remote = publish_flags(self.flag_sinks, data, kill_flag, **release)
            held = tuple(p for p in (local, *remote) if p.held_because)
            published = tuple(p.sink for p in remote if p.written)
            return FlagSync(self.flags_path, local.written, killed, served(state), published, held)

    # -- the command loop ------------------------------------------------------------------------

    def _run(
        self,
        action: str,
        plan: Callable[[RolloutState], tuple[Command | None, Evidence]],
        *,
        extra_evidence: dict[str, Any] | None = None,
    ) -> Outcome:
        notes: list[str] = []
        for attempt in range(self.max_attempts):
            loaded = self.load()
            notes.extend(n for n in loaded.repaired if n not in notes)
            command, evidence = plan(loaded.state)
            if command is None:
                flags = self.sync_flags()
                return Outcome(action, None, loaded.state, None, flags, tuple(notes))
            decision = decide(loaded.state, command, evidence, self.clock())
            # Only an explicit release may un-kill a sink: the state's recorded release of that kill
            # (``publish_hold``), or this command, even when the state had no kill to release (a
            # fail-safe kill that reached the flags but not the state).
            releasing = isinstance(command, ReleaseKill) and not isinstance(decision, Refused)
            if isinstance(decision, Refused) or not decision.changed:
                flags = self.sync_flags(releasing_kill=releasing)
                return Outcome(action, decision, loaded.state, None, flags, tuple(notes))
            record = self._record(loaded.state, command, decision, extra_evidence)
            try:
                audit.append(self.store, record)  # (c)
            except AlreadyExists:
                self._backoff(attempt)
                continue
            new_state = dataclasses.replace(decision.new_state, head=record.head)
            try:
                self.store.replace(self.key, canonical_state(new_state), expected=loaded.version)  # (d)
            except Conflict:
                # Our record holds seq head+1, so the state can only have moved by completing it.
                again = self.load()
                if again.state.head is None or again.state.head.seq < record.seq:
                    raise
                notes.append(f"audit seq {record.seq} was applied by a concurrent command's repair")
                new_state = again.state
            notes.extend(self._checkpoint(record))
            flags = self.sync_flags(releasing_kill=releasing)  # (e)
            return Outcome(action, decision, new_state, record, flags, tuple(notes))
        raise Conflict(
            f"{action}: the rollout state kept changing under concurrent commands ({self.max_attempts} attempts); "
            "nothing was applied by this command. Retry."
        )

    def _record(
        self, state: RolloutState, command: Command, decision: Allowed, extra: dict[str, Any] | None
    ) -> AuditRecord:
        release = getattr(command, "release", None)
        if release is None:
            release = next((a.release for a in decision.new_state.last_actions[:1]), None)
        evidence = dict(decision.evidence)
        if getattr(command, "approvers", None):
            evidence["approvers_given"] = list(command.approvers)  # type: ignore[union-attr]
        if extra:
            evidence.update(extra)
        return audit.next_record(
            state.head,
            time=self.clock(),
            operator=command.operator,
            action=command.action,
            workflow=self.workflow.id,
            from_=state.body(),
            to=decision.new_state.body(),
            release=release,
            evidence=evidence,
            reason=command.reason,
        )

    def _apply_pending_kill(self) -> list[str]:
        marker = self.kill_pending()
        if marker is None:
            return []
        operator = str(marker.get("operator") or "unknown")
        reason = f"{marker.get('reason')} [engaged at {marker.get('at')} while the state store was unavailable]"
        out = self._run("kill", lambda s: (Kill(operator, reason), Evidence(self.workflow)))
        kill_marker_path(self.flags_path).unlink(missing_ok=True)
        what = "recorded" if out.changed else "already recorded"
        return [f"kill switch engaged by {operator} while the state store was unavailable: {what} in the state"]

    def _command(
        self,
        action: str,
        plan: Callable[[RolloutState], tuple[Command | None, Evidence]],
        *,
        extra_evidence: dict[str, Any] | None = None,
    ) -> Outcome:
        notes = self._apply_pending_kill()
        out = self._run(action, plan, extra_evidence=extra_evidence)
        return dataclasses.replace(out, notes=(*notes, *out.notes)) if notes else out

    # -- commands --------------------------------------------------------------------------------

    def promote(
        self,
        release: str | None,
        cohort: str,
        *,
        operator: str,
        approvers: Sequence[str] = (),
        reason: str | None = None,
        operator_arn: str | None = None,
        actor: Principal | None = None,
    ) -> Outcome:
        """``actor``: the authenticated principal behind ``operator`` (``controller.service.identity``);
        with the bundle's ``access``, only approvals recorded in the chain count."""
        verified: dict[str, str | None] = {}  # a release is immutable: verify it once per command

        def plan(state: RolloutState) -> tuple[Command, Evidence]:
            live = [state.candidate.release if state.candidate else None, state.stable]
            evidence = self._evidence([release, *live])
            if release is not None:
                if release not in verified:
                    verified[release] = self.release_check(release)
                evidence = dataclasses.replace(evidence, releases=dict(verified))
            evidence = dataclasses.replace(evidence, actor=actor, approvals=self.approvals())
            return Promote(release, cohort, operator, tuple(approvers), reason), evidence

        return self._command("promote", plan, extra_evidence=_identity(operator_arn, actor))

    def approvals(self) -> tuple[Approval, ...]:
        """Every approval recorded in the chain (``rollout approve``), oldest first."""
        if self.workflow.access is None:
            return ()
        return approvals_in(self.history())

    def approve(self, approval: Approval, *, reason: str | None = None) -> Outcome:
        """Record ``approval`` in the chain: an authenticated approver's act, bound to one release
        digest and cohort, counted by a later promote until it expires."""
        verified: dict[str, str | None] = {}

        def plan(state: RolloutState) -> tuple[Command, Evidence]:
            if approval.release not in verified:
                verified[approval.release] = self.release_check(approval.release)
            evidence = Evidence(self.workflow, self.bundle_problems, releases=dict(verified))
            return Approve(approval, approval.approver.name, reason), evidence

        return self._command("approve", plan, extra_evidence=_identity(approval.approver.arn, approval.approver))

    def rollback(
        self, *, operator: str, reason: str, operator_arn: str | None = None, actor: Principal | None = None
    ) -> Outcome:
        return self._command(
            "rollback",
            lambda s: (Rollback(operator, reason), Evidence(self.workflow, self.bundle_problems, actor=actor)),
            extra_evidence=_identity(operator_arn, actor),
        )

    def kill(
        self, *, operator: str, reason: str, operator_arn: str | None = None, actor: Principal | None = None
    ) -> Outcome:
        """Engage the kill switch. No gate, no eval read; fail-safe when the state store is down."""
        try:
            return self._command(
                "kill",
                lambda s: (Kill(operator, reason), Evidence(self.workflow)),
                extra_evidence=_identity(operator_arn, actor),
            )
        except RolloutError as exc:  # unreachable, conflicts exhausted, corrupt state or chain
            try:
                path = self._failsafe_kill(operator, reason)
            except (OSError, RolloutError) as flag_exc:
                why = getattr(flag_exc, "strerror", None) or flag_exc
                raise BackendUnavailable(
                    f"{exc} The fail-safe write of the flag document {self.flags_path} failed too "
                    f"({why}): the kill switch is NOT engaged. Pull it by hand (runbook)."
                ) from exc
            raise type(exc)(
                f"{exc} Fail-safe: the flag document {path} was written with the kill switch ENGAGED, and "
                f"{kill_marker_path(self.flags_path).name} beside it keeps it engaged until a command records "
                "the kill in the state store (if it is not there already)."
            ) from exc

    def _failsafe_kill(self, operator: str, reason: str) -> Path:
        marker = {"operator": operator, "reason": reason, "at": iso(self.clock())}
        # What each cohort was served is unknowable without the state; the kill overrides it.
        doc = render(self.workflow, RolloutState(self.workflow.id), killed=True, engaged_at=marker["at"])
        data = encode_flag_document(doc)
        kill_flag = self.workflow.rollout.kill_switch_flag
        with self.flag_file.lock():
            flag_files.write_flag_bytes(kill_marker_path(self.flags_path), encode_flag_document(marker))
            self.flag_file.write(data)  # engaging is always allowed: no publish rule to consult
        for sink in self.flag_sinks:
            with contextlib.suppress(RolloutError):  # best effort: the local file is engaged already
                publish_to(sink, data, kill_flag)
        return self.flags_path

    def release_kill(
        self, *, operator: str, reason: str, operator_arn: str | None = None, actor: Principal | None = None
    ) -> Outcome:
        def plan(state: RolloutState) -> tuple[Command, Evidence]:
            # Live evals only inform a warning; an unreadable eval store does not block a release.
            return ReleaseKill(operator, reason), dataclasses.replace(self._live_evidence(state), actor=actor)

        return self._command("release-kill", plan, extra_evidence=_identity(operator_arn, actor))

    def reconcile(self, *, operator: str = "reconcile", trigger: str | None = None) -> ReconcileReport:
        """Idempotent (cron): complete logged-but-unapplied records, roll back every live release
        whose latest eval FAILED (audited), and re-render the flag document."""
        outcomes: list[Outcome] = []
        synced: list[FlagSync | None] = []
        notes = self._apply_pending_kill()
        for _ in range(4):  # candidate, then stable (possibly twice), bounded

            def plan(state: RolloutState) -> tuple[Command | None, Evidence]:
                evidence = self._live_evidence(state)
                due = due_rollbacks(state, evidence)
                if not due:
                    return None, evidence
                first = due[0]
                reason = first.reason if trigger is None else f"{first.reason} ({trigger})"
                return AutoRollback(first.release, operator, reason), evidence

            out = self._run("reconcile", plan)
            notes.extend(n for n in out.notes if n not in notes)
            synced.append(out.flags)
            if out.decision is None:
                break
            outcomes.append(out)
            if not out.changed:
                break
        flags = self.sync_flags()
        # What this reconcile wrote, in any of its syncs (the last one usually finds nothing to do).
        flags = dataclasses.replace(
            flags,
            changed=flags.changed or any(f.changed for f in synced if f),
            published=tuple(dict.fromkeys(s for f in (*synced, flags) if f for s in f.published)),
        )
        state = self.load(repair=False).state
        return ReconcileReport(tuple(outcomes), state, flags, tuple(notes))

    # -- read-only -------------------------------------------------------------------------------

    def status(
        self,
        *,
        operator: str,
        release: str | None = None,
        approvers: Sequence[str] = (),
        actor: Principal | None = None,
    ) -> StatusReport:
        """The state, what is served, live evals, and what the next promotion still needs (the
        gate's own refusal reasons for it). ``release``: the one the current bundle builds."""
        loaded = self.load(repair=False)
        state = loaded.state
        cand = state.candidate.release if state.candidate else None
        evidence = self._live_evidence(state, [release])
        target: str | None = cand or (release if release != state.stable else None)
        next_up: dict[str, Any] | None = None
        if target is not None:
            cohort = next_cohort(state, target) or COHORTS[-1]
            check = self.release_check(target)
            evidence = dataclasses.replace(evidence, releases={target: check}, actor=actor, approvals=self.approvals())
            decision = decide(state, Promote(target, cohort, operator, tuple(approvers)), evidence, self.clock())
            next_up = {
                "release": target,
                "cohort": cohort,
                "operator": operator,
                "ready": isinstance(decision, Allowed),
                "needs": [r.to_dict() for r in decision.reasons] if isinstance(decision, Refused) else [],
            }
        evals: dict[str, Any] = {}
        roles = {state.stable: "stable", cand: "candidate", release: "bundle"}
        for digest, history in evidence.evals.items():
            last = latest(history)
            evals[digest] = {
                "role": roles.get(digest, "previous stable"),
                "results": len(history.results),
                "error": history.error,
                "latest": None if last is None else last.to_dict(),
            }
        return StatusReport(
            workflow=self.workflow.id,
            state=state,
            served=served(state),
            kill_pending=self.kill_pending(),
            pending=loaded.pending,
            problem=loaded.problem,
            flags_path=self.flags_path,
            flags_in_sync=self.flags_in_sync(state),
            evals=evals,
            due=[d.reason or "" for d in due_rollbacks(state, evidence)],
            next=next_up,
            store=self.store.describe(),
        )

    def history(self) -> list[AuditRecord | bytes]:
        return audit.read_chain(self.store, self.workflow.id)

    def _checkpoint(self, record: AuditRecord) -> list[str]:
        """Anchor the new head: a signed checkpoint, create-only beside the chain (``core.audit``).
        The command has already happened; a checkpoint that cannot be written is a note, and the
        next command's checkpoint covers this record too (through the hash chain)."""
        if self.signer is None:
            return []
        body = audit.checkpoint_body(self.workflow.id, record.head, self.clock())
        try:
            data = audit.encode_checkpoint(body, self.signer.seal(body))
            self.store.create(audit.checkpoint_key(self.workflow.id, record.seq), data)
        except AlreadyExists:
            return []
        except RolloutError as exc:
            return [f"the signed checkpoint of audit seq {record.seq} was not written ({exc})"]
        return []

    def checkpoints(self) -> tuple[list[audit.Checkpoint], list[str]]:
        """The chain's checkpoints whose signature verifies with the controller's key, and a
        problem for each one that is malformed, misplaced or not signed by it."""
        points: list[audit.Checkpoint] = []
        problems: list[str] = []
        prefix = audit.checkpoint_prefix(self.workflow.id)
        retained = getattr(self.store, "retained", None)  # S3: every locked version, not just the latest
        if callable(retained):
            stored = list(retained(prefix))
        else:
            stored = [(k, got.data) for k in self.store.list(prefix) if (got := self.store.get(k)) is not None]
        for key, data in stored:
            try:
                point, body, envelope = audit.parse_checkpoint(data)
            except InvalidInput as exc:
                problems.append(f"checkpoint {key}: {exc}")
                continue
            if point.workflow != self.workflow.id or key != audit.checkpoint_key(self.workflow.id, point.seq):
                problems.append(f"checkpoint {key}: it is the checkpoint of {point.workflow} seq {point.seq} (moved)")
                continue
            if self.signer is not None:
                why = self.signer.check(body, envelope)
                if why is not None:
                    problems.append(f"checkpoint {key}: {why}")
                    continue
            points.append(point)
        return points, problems

    def verify(self) -> tuple[Verification, list[str]]:
        """Re-walk the chain against the state's head; also check the state is the head's ``to``."""
        loaded = self.load(repair=False)
        records = self.history()
        result = audit.verify_chain(records, loaded.state.head)
        problems: list[str] = []
        head = loaded.state.head
        if result.ok and head is not None:
            at_head = records[head.seq - 1]
            if isinstance(at_head, AuditRecord) and audit.canonical_json(at_head.to) != audit.canonical_json(
                loaded.state.body()
            ):
                problems.append(
                    f"the state does not match the `to` of audit seq {head.seq}: it was changed outside the controller"
                )
        elif result.ok and head is None and loaded.version is not None and loaded.state.revision:
            problems.append("the state has a revision but no audit chain head")
        points, bad = self.checkpoints()
        problems += bad + audit.check_checkpoints(records, points)
        return result, problems


def _arn(arn: str | None) -> dict[str, Any] | None:
    return {"operator_arn": arn} if arn else None


def _identity(arn: str | None, actor: Principal | None) -> dict[str, Any] | None:
    """The audit evidence of who acted: the principal and how it is known (``source``)."""
    out = _arn(arn or (actor.arn if actor is not None else None)) or {}
    if actor is not None:
        out["operator_identity"] = actor.to_dict()
    return out or None


# --- the eval hook --------------------------------------------------------------------------------


class ReconcileOnFailedEval:
    """``controller.evals.scoring.RollbackHook``: a FAIL of a live release rolls it back at once.

    ``run_eval`` stores the result before calling the hook, so a reconcile sees it as the
    latest evidence; the rollback is audited with operator ``eval-run``.
    """

    def __init__(self, service: RolloutService) -> None:
        self.service = service
        self.reports: list[ReconcileReport] = []

    def on_failed_eval(self, digest: str, result: Any) -> None:
        state = self.service.load(repair=False).state
        live = {state.candidate.release if state.candidate else None, state.stable}
        if digest not in live:
            return
        short = str(getattr(result, "content_hash", ""))[:12]
        self.reports.append(self.service.reconcile(operator="eval-run", trigger=f"`rollout eval run` {short}"))


# --- operator identity ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CallerIdentity:
    name: str
    arn: str | None = None
    source: str = "os"  # "flag" | "os" | "sts"
    extra: dict[str, Any] = field(default_factory=dict)


def operator_from_arn(arn: str) -> str:
    """``...:assumed-role/Role/session`` -> session; ``...:user/path/name`` -> name; ``...:root`` -> root."""
    resource = arn.split(":", 5)[-1] if arn.count(":") >= 5 else ""
    if not resource:
        raise InvalidInput(f"not an AWS ARN: {arn!r}.")
    if resource == "root":
        return "root"
    name = resource.rsplit("/", 1)[-1]
    if not name:
        raise InvalidInput(f"cannot tell an operator name from ARN {arn!r}.")
    return name


def sts_operator(client: Any = None) -> CallerIdentity:
    """The STS caller identity (``sts:GetCallerIdentity``) as the operator."""
    try:
        if client is None:
            import boto3
            from botocore.config import Config

            client = boto3.client("sts", config=Config(connect_timeout=5, read_timeout=10, retries={"max_attempts": 2}))
        arn = client.get_caller_identity()["Arn"]
    except RolloutError:
        raise
    except Exception as exc:  # botocore raises many types; all mean "no identity"
        raise BackendUnavailable(f"cannot get the STS caller identity: {exc}.") from exc
    return CallerIdentity(operator_from_arn(arn), arn, "sts")


def resolve_operator(explicit: str | None = None, *, from_sts: bool = False, sts_client: Any = None) -> CallerIdentity:
    if explicit is not None and from_sts:
        raise InvalidInput("give --operator NAME or --operator-from-sts, not both.")
    if from_sts:
        identity = sts_operator(sts_client)
    elif explicit is not None:
        identity = CallerIdentity(explicit.strip(), None, "flag")
    else:
        try:
            identity = CallerIdentity(getpass.getuser(), None, "os")
        except (OSError, KeyError) as exc:
            raise InvalidInput("cannot tell who you are; pass --operator NAME.") from exc
    if not identity.name:
        raise InvalidInput("the operator name is empty; pass --operator NAME.")
    if identity.name in SYSTEM_OPERATORS:
        raise InvalidInput(f"operator {identity.name!r} is reserved for automatic actions.")
    return identity
