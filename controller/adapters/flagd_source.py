"""Flag evaluation through the OpenFeature SDK and the flagd provider (in-process, file mode).

Two flags decide whether a request may reach the model: the kill switch (boolean, evaluated
first) and the release flag (string: the digest of the release this user's cohort is served,
or ``off``). Defaults are the safe state: any evaluation error, or a provider that is not
READY (missing, unparsable or stale flag file), counts as killed and off.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from pathlib import Path

from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.provider import ProviderStatus

from controller.core.flags import evaluation_attributes
from controller.ports import FlagSource

__all__ = ["FlagDecision", "FlagSource", "FlagdFileSource", "StaticFlagSource"]

OFF = "off"


@dataclass(frozen=True)
class FlagDecision:
    killed: bool
    kill_reason: str
    variant: str  # a release digest, or "off"
    variant_reason: str
    cohort: str = "off"  # the release flag's variant name: the cohort the user is in, or "off"

    @property
    def release(self) -> str | None:
        return None if self.killed or self.variant == OFF else self.variant


class FlagdFileSource:
    """The flagd provider reading a flag file that the controller rewrites atomically.

    The provider polls the file every ``poll_ms``; each source gets its own OpenFeature
    domain so several gateways (tests, evals) can live in one process.
    """

    _lock = threading.Lock()
    _count = 0

    def __init__(self, path: Path, *, release_flag: str, kill_switch_flag: str, poll_ms: int = 500):
        from openfeature.contrib.provider.flagd import FlagdProvider
        from openfeature.contrib.provider.flagd.config import ResolverType

        with FlagdFileSource._lock:
            FlagdFileSource._count += 1
            self.domain = f"ai-rollout-{FlagdFileSource._count}"
        self.release_flag = release_flag
        self.kill_switch_flag = kill_switch_flag
        self.provider = FlagdProvider(
            resolver_type=ResolverType.FILE,
            offline_flag_source_path=str(path),
            deadline_ms=poll_ms,
        )
        # A missing or unparsable file leaves the provider not READY: decide() then fails closed.
        with contextlib.suppress(Exception):  # the SDK raises several types; all mean "not ready"
            api.set_provider_and_wait(self.provider, self.domain)
        self.client = api.get_client(self.domain)

    def ready(self) -> bool:
        return self.client.get_provider_status() == ProviderStatus.READY

    def decide(self, subject: str, email: str, groups: tuple[str, ...]) -> FlagDecision:
        status = self.client.get_provider_status()
        if status != ProviderStatus.READY:
            reason = f"flag provider {status.value.lower()}"
            return FlagDecision(True, reason, OFF, reason)
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
        return FlagDecision(killed, kill_reason, variant, variant_reason, cohort)

    def close(self) -> None:
        self.provider.shutdown()


class StaticFlagSource:
    """An in-memory flag source: evals pin the release they judge; tests pin anything."""

    def __init__(self, variant: str, *, killed: bool = False, reason: str = "pinned"):
        self.decision = FlagDecision(killed, reason if killed else "released", variant, reason)

    def decide(self, subject: str, email: str, groups: tuple[str, ...]) -> FlagDecision:
        return self.decision
