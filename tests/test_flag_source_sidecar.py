"""The gateway's flags from the flagd sidecar (what the OpenFeature Operator injects), over gRPC
against a small flagd on 127.0.0.1 (tests/fakes/flagd.py: flagd's published evaluation and sync
protocols): served, killed when the FeatureFlag is killed, and failing closed when the sidecar
is unreachable, not started, or gone mid-flight; back when it returns."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.adapters.flagd_source import FlagdSidecarSource, flag_source
from controller.bundle.models import Workflow
from controller.bundle.yamlio import load_yaml
from controller.core.flags import render_flag_document
from controller.errors import InvalidInput
from tests.fakes.flagd import FakeFlagd

REPO = Path(__file__).resolve().parent.parent
WF = Workflow.model_validate(load_yaml(REPO / "workflows/internal-docs-qa/workflow.yaml").data)
DIGEST = "b" * 64
RELEASED = render_flag_document(WF, {"internal": DIGEST}, killed=False)
KILLED = render_flag_document(WF, {"internal": DIGEST}, killed=True, engaged_at="2026-12-01T10:00:00Z")
PILOT = ("u-1", "ana@corp.example", ("ai-pilot",))
MODES = ("rpc", "in-process")


def wait_for(predicate, timeout: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sidecar_source(mode: str, port: int) -> FlagdSidecarSource:
    source = flag_source(
        mode, path=Path("/nonexistent"), release_flag=WF.rollout.release_flag,
        kill_switch_flag=WF.rollout.kill_switch_flag, host="127.0.0.1", port=port, poll_ms=300,
    )
    assert isinstance(source, FlagdSidecarSource)
    return source


@pytest.fixture
def flagd() -> Iterator[FakeFlagd]:
    server = FakeFlagd(RELEASED)
    yield server
    server.stop()


@pytest.mark.parametrize("mode", MODES)
def test_the_sidecar_serves_and_a_kill_reaches_the_gateway(mode: str, flagd: FakeFlagd) -> None:
    source = sidecar_source(mode, flagd.port)
    try:
        assert source.ready()
        decision = source.decide(*PILOT)
        assert decision.release == DIGEST and decision.cohort == "internal"
        assert source.decide("u-2", "bo@elsewhere.example", ("ai-pilot",)).release is None, "outside the domains"
        flagd.set_flags(KILLED)
        assert wait_for(lambda: source.decide(*PILOT).killed)
        assert "engaged" in source.decide(*PILOT).kill_reason
        if mode == "rpc":
            assert "boolean:internal-docs-qa-kill-switch" in flagd.requests, "evaluated by the sidecar"
    finally:
        source.close()


@pytest.mark.parametrize("mode", MODES)
def test_a_sidecar_that_goes_away_turns_answers_into_the_fallback(mode: str, flagd: FakeFlagd) -> None:
    source = sidecar_source(mode, flagd.port)
    try:
        assert source.decide(*PILOT).release == DIGEST
        flagd.stop()
        assert wait_for(lambda: source.decide(*PILOT).killed, timeout=3), "fails closed once the sidecar is gone"
        decision = source.decide(*PILOT)
        assert decision.release is None and not source.ready()
        flagd.start()  # the container restarts on the same port
        assert wait_for(lambda: source.decide(*PILOT).release == DIGEST, timeout=20), "served again"
    finally:
        source.close()


@pytest.mark.parametrize("mode", MODES)
def test_no_sidecar_at_all_is_the_fallback_not_a_hang(mode: str) -> None:
    started = time.monotonic()
    source = sidecar_source(mode, free_port())
    try:
        assert time.monotonic() - started < 10
        decision = source.decide(*PILOT)
        assert decision.killed and decision.release is None and not source.ready()
    finally:
        source.close()


def test_an_unknown_mode_is_refused_with_the_choices() -> None:
    with pytest.raises(InvalidInput, match="file, rpc, in-process"):
        flag_source("grpc", path=Path("x"), release_flag="r", kill_switch_flag="k")


def test_the_gateway_takes_its_flags_from_the_sidecar_when_configured(
    project: Path, tmp_path: Path, flagd: FakeFlagd
) -> None:
    from controller.bundle.models import load_bundle
    from controller.service.compose import build_gateway

    bundle = load_bundle(project)
    env = {"ROLLOUT_FLAG_SOURCE": "rpc", "ROLLOUT_FLAGD_HOST": "127.0.0.1", "ROLLOUT_FLAGD_PORT": str(flagd.port)}
    gateway = build_gateway(bundle, tmp_path / "state", flag_env=env)
    try:
        assert isinstance(gateway.flags, FlagdSidecarSource) and gateway.flags.target == f"127.0.0.1:{flagd.port}"
        assert gateway.flags.decide(*PILOT).release == DIGEST
    finally:
        gateway.flags.close()
    file_gateway = build_gateway(bundle, tmp_path / "state", flag_env={})
    try:
        assert not isinstance(file_gateway.flags, FlagdSidecarSource), "the file is the default"
    finally:
        file_gateway.flags.close()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ROLLOUT_FLAG_SOURCE": "sidecar"}, "ROLLOUT_FLAG_SOURCE: flag source 'sidecar': expected one of file, rpc"),
        ({"ROLLOUT_FLAG_SOURCE": "rpc", "ROLLOUT_FLAGD_PORT": "80a"}, "ROLLOUT_FLAGD_PORT='80a': expected a TCP port"),
    ],
)
def test_a_bad_flag_source_configuration_names_the_variable(
    project: Path, tmp_path: Path, env: dict[str, str], message: str
) -> None:
    from controller.bundle.models import load_bundle
    from controller.service.compose import build_gateway

    with pytest.raises(InvalidInput, match=message.replace("(", r"\(")):
        build_gateway(load_bundle(project), tmp_path / "state", flag_env=env)
