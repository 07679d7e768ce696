"""Flag evaluation through the OpenFeature SDK and the flagd provider.

Two flags decide whether a request may reach the model: the kill switch (boolean, evaluated
first) and the release flag (string: the digest of the release this user's cohort is served,
or ``off``). Defaults are the safe state: any evaluation error, or a provider that is not
READY, counts as killed and off.

Where the flags come from is chosen by configuration (``flag_source``):

- ``FlagdFileSource``: a flag document on disk (the controller rewrites it atomically). The
  flagd provider's own file watcher looks at the mtime only, so it misses a document made
  unreadable (``chmod 000``) and one replaced with its mtime preserved (``cp -p``, ``rsync -t``,
  a backup restore). Here a watcher reads the document on every poll, checks that it can be
  read and compares its SHA-256, and hands each new content to the provider through a private
  snapshot; an unreadable or removed document, or one not yet loaded, answers "killed" at once.
- ``FlagdSidecarSource``: the flagd sidecar the OpenFeature Operator injects, over gRPC (the
  provider's RPC resolver against flagd's evaluation service, or its in-process resolver fed by
  flagd's sync service). An unreachable sidecar leaves the provider not READY (or STALE): killed.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.event import EventDetails, ProviderEvent
from openfeature.provider import ProviderStatus

from controller.core.flags import evaluation_attributes
from controller.errors import InvalidInput
from controller.ports import OFF, FlagDecision, FlagSource

__all__ = [
    "FLAG_SOURCE_MODES",
    "FlagDecision",
    "FlagSource",
    "FlagdFileSource",
    "FlagdSidecarSource",
    "StaticFlagSource",
    "flag_source",
]

FLAG_SOURCE_MODES = ("file", "rpc", "in-process")


def _closed(reason: str) -> FlagDecision:
    return FlagDecision(True, reason, OFF, reason)


class _ProviderFlags:
    """What every provider-backed source shares: one OpenFeature domain per source (several
    gateways, tests and evals live in one process) and the two evaluations, failing closed."""

    _lock = threading.Lock()
    _count = 0

    def __init__(self, provider: Any, *, release_flag: str, kill_switch_flag: str) -> None:
        with _ProviderFlags._lock:
            _ProviderFlags._count += 1
            self.domain = f"ai-rollout-{_ProviderFlags._count}"
        self.release_flag = release_flag
        self.kill_switch_flag = kill_switch_flag
        self.provider = provider
        self.client = api.get_client(self.domain)

    def _start(self) -> None:
        # A provider that cannot load leaves the status not READY: decide() then fails closed.
        with contextlib.suppress(Exception):  # the SDK raises several types; all mean "not ready"
            api.set_provider_and_wait(self.provider, self.domain)

    def fault(self) -> str | None:
        """Why the source cannot be trusted right now, before asking the provider (None: it can)."""
        return None

    def ready(self) -> bool:
        return self.fault() is None and self.client.get_provider_status() == ProviderStatus.READY

    def decide(self, subject: str, email: str, groups: tuple[str, ...]) -> FlagDecision:
        fault = self.fault()
        if fault is not None:
            return _closed(fault)
        status = self.client.get_provider_status()
        if status != ProviderStatus.READY:
            return _closed(f"flag provider {status.value.lower()}")
        # The cohort bucket travels in the context: every flagd engine then splits alike (core.flags).
        attributes = evaluation_attributes(self.release_flag, subject, email, groups)
        ctx = EvaluationContext(targeting_key=subject, attributes=attributes)
        kill = self.client.get_boolean_details(self.kill_switch_flag, True, ctx)
        if kill.error_code is not None:
            killed, kill_reason = True, f"kill switch unreadable ({kill.error_code.value})"
        else:
            killed, kill_reason = bool(kill.value), f"{kill.variant or 'default'} ({kill.reason})"
        release = self.client.get_string_details(self.release_flag, OFF, ctx)
        if release.error_code is not None:
            variant, variant_reason = OFF, f"release flag unreadable ({release.error_code.value})"
            cohort = OFF
        else:
            variant, variant_reason = str(release.value), f"{release.variant or 'default'} ({release.reason})"
            cohort = str(release.variant or OFF)
        # A check that raced the evaluation (the document vanished meanwhile) still wins.
        fault = self.fault()
        if fault is not None:
            return _closed(fault)
        return FlagDecision(killed, kill_reason, variant, variant_reason, cohort)

    def close(self) -> None:
        self.provider.shutdown()


def _read_document(path: Path) -> bytes:
    """One read of the flag document (a seam: tests simulate the errors a foreign owner causes)."""
    return path.read_bytes()


class FlagdFileSource(_ProviderFlags):
    """The flagd provider (in-process, file mode) fed from a document checked on every poll.

    Every ``poll_ms`` the watcher reads ``path``: a read error (permission, removal, anything)
    is a fault that turns every answer into the fallback until a read succeeds again; a content
    hash unlike the last one is written to a private snapshot that the provider loads, and
    answers stay closed until the provider says it has loaded it (a configuration-changed
    event), so no request is answered from a document older than the one on disk.
    """

    def __init__(self, path: Path, *, release_flag: str, kill_switch_flag: str, poll_ms: int = 500):
        from openfeature.contrib.provider.flagd import FlagdProvider
        from openfeature.contrib.provider.flagd.config import ResolverType

        self.path = Path(path)
        self.poll_s = max(poll_ms, 1) / 1000
        self._dir = Path(tempfile.mkdtemp(prefix="ai-rollout-flags-"))
        self._snapshot = self._dir / "flags.flagd.json"
        self._state = threading.Lock()
        self._polling = threading.Lock()  # one poll at a time: a slow read never lands after a newer one
        self._fault: str | None = "flag document not read yet"
        self._digest: str | None = None
        self._written = 0  # snapshots written
        self._loaded = 0  # snapshots the provider has reported loaded
        self._mtime_ns = 0
        self._stop = threading.Event()
        provider = FlagdProvider(
            resolver_type=ResolverType.FILE,
            offline_flag_source_path=str(self._snapshot),
            # the snapshot is ours and local: the provider may look at it often and cheaply
            deadline_ms=max(5, poll_ms // 5),
        )
        super().__init__(provider, release_flag=release_flag, kill_switch_flag=kill_switch_flag)
        self.client.add_handler(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, self._on_loaded)
        self.poll()
        written = self._written
        self._start()
        if self.client.get_provider_status() == ProviderStatus.READY:
            with self._state:
                self._loaded = max(self._loaded, written)
        self._thread = threading.Thread(target=self._watch, daemon=True, name=f"flag-watch-{self.domain}")
        self._thread.start()

    def poll(self) -> None:
        """Check the document once: readable, and its content the one the provider has."""
        with self._polling:
            self._poll_once()

    def _poll_once(self) -> None:
        try:
            data = _read_document(self.path)
        except FileNotFoundError:
            self._set_fault(f"flag document {self.path} missing")
            return
        except OSError as exc:
            self._set_fault(f"flag document {self.path} unreadable ({exc.strerror or exc})")
            return
        digest = hashlib.sha256(data).hexdigest()
        with self._state:
            if digest != self._digest:
                try:
                    self._write_snapshot(data)
                except OSError as exc:  # our temp dir is full or gone: closed, and retried next poll
                    self._fault = f"cannot stage the flag document ({exc.strerror or exc})"
                    return
                self._digest = digest
            self._fault = None

    def _set_fault(self, reason: str) -> None:
        with self._state:
            self._fault = reason

    def _write_snapshot(self, data: bytes) -> None:
        tmp = self._snapshot.with_suffix(".tmp")
        tmp.write_bytes(data)
        # The provider reloads on a newer mtime only: make each snapshot's strictly newer, even
        # two writes inside one tick of the filesystem clock.
        self._mtime_ns = max(self._mtime_ns + 1_000_000, os.stat(tmp).st_mtime_ns)
        os.utime(tmp, ns=(self._mtime_ns, self._mtime_ns))
        os.replace(tmp, self._snapshot)
        self._written += 1

    def _on_loaded(self, details: EventDetails) -> None:
        with self._state:
            # The provider read the snapshot at the latest one replaced before this event (a read
            # that began just before a replace loads the newer file at its next poll, poll_ms/5).
            self._loaded = self._written

    def fault(self) -> str | None:
        with self._state:
            if self._fault is not None:
                return self._fault
            if self._loaded < self._written:
                return "flag document changed; not loaded yet"
        return None

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                self.poll()
            except Exception as exc:  # the watcher must outlive any fault; until then: closed
                self._set_fault(f"flag watcher failed ({exc})")

    def close(self) -> None:
        self._stop.set()
        super().close()
        shutil.rmtree(self._dir, ignore_errors=True)


class FlagdSidecarSource(_ProviderFlags):
    """The flagd sidecar over gRPC: ``rpc`` asks flagd's evaluation service per request;
    ``in-process`` takes the flag set from flagd's sync service and evaluates here. Either way an
    unreachable sidecar is a provider that is not READY, so every answer is the fallback."""

    def __init__(
        self,
        *,
        release_flag: str,
        kill_switch_flag: str,
        mode: str = "rpc",
        host: str = "localhost",
        port: int | None = None,
        deadline_ms: int = 500,
        retry_backoff_ms: int = 250,
        retry_backoff_max_ms: int = 1000,
    ):
        from openfeature.contrib.provider.flagd import FlagdProvider
        from openfeature.contrib.provider.flagd.config import CacheType, ResolverType

        if mode not in ("rpc", "in-process"):
            raise InvalidInput(f"flag source mode {mode!r}: expected one of {', '.join(FLAG_SOURCE_MODES)}.")
        resolver = ResolverType.RPC if mode == "rpc" else ResolverType.IN_PROCESS
        self.mode = mode
        self.target = f"{host}:{port or (8013 if mode == 'rpc' else 8015)}"
        provider = FlagdProvider(
            resolver_type=resolver,
            host=host,
            port=port or (8013 if mode == "rpc" else 8015),
            tls=False,  # the sidecar shares the pod's network namespace: localhost only
            deadline_ms=deadline_ms,
            # A lost sidecar must surface fast: the provider notices only when it reconnects (and
            # fails), so reconnect attempts stay frequent; STALE (then ERROR) means fallback here.
            retry_backoff_ms=retry_backoff_ms,
            retry_backoff_max_ms=retry_backoff_max_ms,
            retry_grace_period=1,
            cache=CacheType.DISABLED,  # a cached answer could outlive a kill the sidecar has seen
        )
        super().__init__(provider, release_flag=release_flag, kill_switch_flag=kill_switch_flag)
        self._start()


class StaticFlagSource:
    """An in-memory flag source: evals pin the release they judge; tests pin anything."""

    def __init__(self, variant: str, *, killed: bool = False, reason: str = "pinned"):
        self.decision = FlagDecision(killed, reason if killed else "released", variant, reason)

    def decide(self, subject: str, email: str, groups: tuple[str, ...]) -> FlagDecision:
        return self.decision


def flag_source(
    mode: str,
    *,
    path: Path,
    release_flag: str,
    kill_switch_flag: str,
    poll_ms: int = 500,
    host: str = "localhost",
    port: int | None = None,
) -> _ProviderFlags:
    """The one choice of flag source: ``file`` (the document at ``path``), ``rpc`` or
    ``in-process`` (the flagd sidecar at ``host:port``)."""
    if mode == "file":
        return FlagdFileSource(path, release_flag=release_flag, kill_switch_flag=kill_switch_flag, poll_ms=poll_ms)
    if mode in ("rpc", "in-process"):
        return FlagdSidecarSource(
            release_flag=release_flag, kill_switch_flag=kill_switch_flag, mode=mode, host=host, port=port,
            deadline_ms=max(poll_ms, 100),
        )
    raise InvalidInput(f"flag source {mode!r}: expected one of {', '.join(FLAG_SOURCE_MODES)}.")
