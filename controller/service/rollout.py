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

The result types are ``controller.service.outcomes``, the eval and release evidence sources
``controller.service.evidence_sources``, the operator's identity ``controller.service.operator``, the
state key, kill marker and flag rendering ``controller.service.state_docs``;
all are re-exported here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import random
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from controller.adapters import flag_file as flag_files
from controller.adapters.flag_file import FileFlagSink
from controller.bundle.models import Workflow
from controller.core import audit
from controller.core.approvals import Approval, Principal, approvals_in
from controller.core.audit import GENESIS_HASH, AuditRecord, Verification
from controller.core.flags import encode_flag_document
from controller.core.gates import (
    COHORTS,
    Allowed,
    Approve,
    AutoRollback,
    Command,
    EvalHistory,
    GateEvidence,
    Kill,
    Promote,
    Refused,
    ReleaseKill,
    Rollback,
    RolloutState,
    decide,
    due_rollbacks,
    next_cohort,
    no_fresh_evidence_notes,
    served,
)
from controller.core.timefmt import iso
from controller.errors import BackendUnavailable, Conflict, InvalidInput, RolloutError
from controller.ports import AlreadyExists, FlagSink, Store
from controller.service.checkpoints import read_checkpoints, write_checkpoint
from controller.service.evidence_sources import ReconcileOnFailedEval, StoreEvals, release_problem
from controller.service.operator import CallerIdentity, operator_from_arn, resolve_operator, sts_operator
from controller.service.outcomes import (
    FlagSync,
    Loaded,
    Outcome,
    Preview,
    ReconcileReport,
    StatusReport,
    eval_summaries,
    flag_diff,
    next_promotion,
)
from controller.service.publish import publish_flags, publish_to
from controller.service.state_docs import canonical_state, kill_marker_path, render, state_key

__all__ = [
    "DEFAULT_ATTEMPTS",
    "CallerIdentity",
    "FlagSync",
    "Loaded",
    "Outcome",
    "Preview",
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


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


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
        self.release_check = release_check or (lambda digest: release_problem(store, digest))
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

    def _evidence(self, releases: Iterable[str | None]) -> GateEvidence:
        evals = {d: self.evals(d) for d in dict.fromkeys(r for r in releases if r)}
        return GateEvidence(self.workflow, self.bundle_problems, evals)

    def _live_evidence(self, state: RolloutState, extra: Iterable[str | None] = ()) -> GateEvidence:
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
        plan: Callable[[RolloutState], tuple[Command | None, GateEvidence]],
        *,
        extra_evidence: dict[str, Any] | None = None,
    ) -> Outcome:
        if self.flag_file.config_problem is not None:  # refused before anything is written
            raise self.flag_file.config_problem
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
            notes.extend(write_checkpoint(self.store, self.workflow.id, record, self.signer, self.clock()))
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
        out = self._run("kill", lambda s: (Kill(operator, reason), GateEvidence(self.workflow)))
        kill_marker_path(self.flags_path).unlink(missing_ok=True)
        what = "recorded" if out.changed else "already recorded"
        return [f"kill switch engaged by {operator} while the state store was unavailable: {what} in the state"]

    def _command(
        self,
        action: str,
        plan: Callable[[RolloutState], tuple[Command | None, GateEvidence]],
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

        def plan(state: RolloutState) -> tuple[Command, GateEvidence]:
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

        def plan(state: RolloutState) -> tuple[Command, GateEvidence]:
            if approval.release not in verified:
                verified[approval.release] = self.release_check(approval.release)
            evidence = GateEvidence(self.workflow, self.bundle_problems, releases=dict(verified))
            return Approve(approval, approval.approver.name, reason), evidence

        return self._command("approve", plan, extra_evidence=_identity(approval.approver.arn, approval.approver))

    def preview_promote(
        self,
        release: str | None,
        cohort: str,
        *,
        operator: str,
        approvers: Sequence[str] = (),
        actor: Principal | None = None,
    ) -> Preview:
        """What ``promote`` would do, like ``pulumi preview``: the gate's verdict and the flag
        document's diff. Reads only; nothing is written, not even a repair."""
        state = self.load(repair=False).state
        live = [state.candidate.release if state.candidate else None, state.stable]
        evidence = self._evidence([release, *live])
        if release is not None:
            evidence = dataclasses.replace(evidence, releases={release: self.release_check(release)})
        evidence = dataclasses.replace(evidence, actor=actor, approvals=self.approvals())
        command = Promote(release, cohort, operator, tuple(approvers))
        decision = decide(state, command, evidence, self.clock())
        before = encode_flag_document(render(self.workflow, state, killed=self.kill_pending() is not None))
        after_state = decision.new_state if isinstance(decision, Allowed) else state
        after = encode_flag_document(render(self.workflow, after_state, killed=self.kill_pending() is not None))
        return Preview("promote", decision, state, after_state, flag_diff(before, after, self.flags_path.name))

    def rollback(
        self, *, operator: str, reason: str, operator_arn: str | None = None, actor: Principal | None = None
    ) -> Outcome:
        return self._command(
            "rollback",
            lambda s: (Rollback(operator, reason), GateEvidence(self.workflow, self.bundle_problems, actor=actor)),
            extra_evidence=_identity(operator_arn, actor),
        )

    def kill(
        self, *, operator: str, reason: str, operator_arn: str | None = None, actor: Principal | None = None
    ) -> Outcome:
        """Engage the kill switch. No gate, no eval read; fail-safe when the state store is down,
        and when the flag file's mode or group configuration is malformed."""
        problem = self.flag_file.config_problem
        if problem is not None:
            path = self._failsafe_kill(operator, reason)
            raise InvalidInput(
                f"{problem} The kill switch was ENGAGED anyway: {path} was written with mode 0640 and "
                f"{kill_marker_path(self.flags_path).name} keeps it engaged; fix the variable, then any command "
                "records the kill in the state store."
            )
        try:
            return self._command(
                "kill",
                lambda s: (Kill(operator, reason), GateEvidence(self.workflow)),
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
            self.flag_file.engage(data)  # engaging is always allowed: no publish rule to consult
        for sink in self.flag_sinks:
            with contextlib.suppress(RolloutError):  # best effort: the local file is engaged already
                publish_to(sink, data, kill_flag)
        return self.flags_path

    def release_kill(
        self, *, operator: str, reason: str, operator_arn: str | None = None, actor: Principal | None = None
    ) -> Outcome:
        def plan(state: RolloutState) -> tuple[Command, GateEvidence]:
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

            def plan(state: RolloutState) -> tuple[Command | None, GateEvidence]:
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
        stale = no_fresh_evidence_notes(state, self._live_evidence(state))
        return ReconcileReport(tuple(outcomes), state, flags, tuple(notes), stale)

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
            next_up = next_promotion(target, cohort, operator, decision)
        roles = {state.stable: "stable", cand: "candidate", release: "bundle"}
        evals = eval_summaries(evidence.evals, roles)
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
            no_fresh_evidence=no_fresh_evidence_notes(state, evidence),
        )

    def history(self) -> list[AuditRecord | bytes]:
        return audit.read_chain(self.store, self.workflow.id)

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

    def checkpoints(self) -> tuple[list[audit.Checkpoint], list[str]]:
        """The chain's checkpoints that verify with the controller's key, and what is wrong with the rest."""
        return read_checkpoints(self.store, self.workflow.id, self.signer)


def _identity(arn: str | None, actor: Principal | None) -> dict[str, Any] | None:
    """The audit evidence of who acted: the principal and how it is known (``source``)."""
    arn = arn or (actor.arn if actor is not None else None)
    out: dict[str, Any] = {"operator_arn": arn} if arn else {}
    if actor is not None:
        out["operator_identity"] = actor.to_dict()
    return out or None


