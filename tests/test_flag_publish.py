"""The never-un-kill rule, once, against every flag sink: the local file, S3 (moto's server), a
Kubernetes ConfigMap and an OpenFeature ``FeatureFlag`` (a fake API server, the real client). Every sink goes through the one
publish path (``controller.service.publish``), so the same attacks get the same answer."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from controller.adapters.flag_file import FileFlagSink
from controller.adapters.k8s_flags import configmap_sink, featureflag_sink
from controller.adapters.s3_flags import S3FlagSink
from controller.core.flags import (
    FLAGD_SCHEMA_URL,
    encode_flag_document,
    kill_engaged,
    publish_hold,
    render_flag_document,
)
from controller.service.publish import publish_flags, publish_to
from tests.fakes.kube import FakeKubeApi
from tests.fakes.s3 import S3Bucket, make_client

KILL = "kill-switch"


class _Wf:
    """Just what rendering reads: one cohort, the kill switch and release flag names."""

    id = "wf"

    class rollout:  # noqa: N801 - mirrors the bundle's attribute name
        kill_switch_flag = KILL
        release_flag = "release"
        cohorts = ()

    class sso:  # noqa: N801
        allowed_email_domains = ("example.com",)


def doc(*, killed: bool, engaged_at: str | None = None, version: int = 0) -> bytes:
    class Cohort:
        name, groups, percentage = "internal", ("eng",), None

    wf = _Wf()
    wf.rollout.cohorts = (Cohort,)  # type: ignore[assignment]
    return encode_flag_document(
        render_flag_document(wf, {"internal": "d" * 64}, killed=killed, engaged_at=engaged_at, version=version)
    )


KILLED = doc(killed=True, engaged_at="2026-12-01T10:00:00Z")
KILLED_UNKNOWN = doc(killed=True)  # a kill pulled by hand: no engagedAt
RELEASED = doc(killed=False, version=1)


# --- the rule (pure) --------------------------------------------------------------------------


def test_kill_engaged_reads_the_default_variant() -> None:
    assert kill_engaged(KILLED, KILL) and not kill_engaged(RELEASED, KILL) and not kill_engaged(None, KILL)
    assert not kill_engaged(b"not json", KILL) and not kill_engaged(b'{"flags": {}}', KILL)


@pytest.mark.parametrize(
    ("live", "rendered", "kwargs", "held"),
    [
        (None, RELEASED, {}, False),  # first publish
        (RELEASED, KILLED, {}, False),  # engaging is always published
        (KILLED, KILLED, {}, False),
        (KILLED, RELEASED, {}, True),  # the state does not know this kill: left engaged
        (KILLED, RELEASED, {"releasing_kill": True}, False),  # the explicit release
        (KILLED, RELEASED, {"released_at": "2026-12-01T11:00:00Z"}, False),  # a release recorded after it
        (KILLED, RELEASED, {"released_at": "2026-12-01T09:00:00Z"}, True),  # a release recorded BEFORE it
        (KILLED_UNKNOWN, RELEASED, {"released_at": "2026-12-01T11:00:00Z"}, True),  # unknown kill: held
        (KILLED, RELEASED, {"released_at": "garbage"}, True),
        (KILLED.replace(b'"engagedAt"', b'"other"'), RELEASED, {"released_at": "2026-12-01T11:00:00Z"}, True),
        (b'{"flags": {"kill-switch": {"variants": {"on": true}, "defaultVariant": "on", "metadata": "x"}}}',
         RELEASED, {"released_at": "2026-12-01T11:00:00Z"}, True),  # malformed metadata: held, no crash
    ],
)
def test_publish_hold(live: bytes | None, rendered: bytes, kwargs: dict[str, Any], held: bool) -> None:
    assert (publish_hold(live, rendered, KILL, **kwargs) is not None) is held


# --- every sink ---------------------------------------------------------------------------------


@pytest.fixture
def kube() -> Iterator[FakeKubeApi]:
    api = FakeKubeApi()
    yield api
    api.close()


Sink = tuple[Any, Callable[[], bytes | None], Callable[[bytes], None]]  # sink, read live, write live


@pytest.fixture(params=["file", "s3", "configmap", "featureflag"])
def sink(request: pytest.FixtureRequest, tmp_path: Path) -> Sink:
    if request.param == "file":
        path = tmp_path / "flags" / "wf.flagd.json"
        file_sink = FileFlagSink(path)

        def read_file() -> bytes | None:
            return path.read_bytes() if path.exists() else None

        def write_file(data: bytes) -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)

        return file_sink, read_file, write_file
    if request.param == "s3":
        bucket: S3Bucket = request.getfixturevalue("s3_bucket")
        client = make_client(bucket.endpoint_url)
        key = "flags/wf.flagd.json"

        def read_s3() -> bytes | None:
            try:
                return client.get_object(Bucket=bucket.name, Key=key)["Body"].read()
            except client.exceptions.NoSuchKey:
                return None

        return (
            S3FlagSink(bucket.name, key, client=client),
            read_s3,
            lambda data: client.put_object(Bucket=bucket.name, Key=key, Body=data),
        )
    kube = request.getfixturevalue("kube")
    if request.param == "featureflag":
        ff = featureflag_sink("flags/docs-qa", api=kube.custom_objects())

        def read_ff() -> bytes | None:
            obj = kube.featureflag()
            # what the sidecar serves, as a flag document with the $schema the sink drops
            return None if obj is None else encode_flag_document({"$schema": FLAGD_SCHEMA_URL, **obj["spec"]["flagSpec"]})

        return ff, read_ff, lambda data: publish_to(ff, data, KILL, releasing_kill=True)
    cm = configmap_sink("flags/docs-qa", api=kube.core_v1())

    def read_cm() -> bytes | None:
        obj = kube.objects.get(("flags", "docs-qa"))
        return None if obj is None else obj["data"][cm.key].encode()

    def write_cm(data: bytes) -> None:
        publish_to(cm, data, KILL, releasing_kill=True)  # set up the live document through the API

    return cm, read_cm, write_cm


def test_every_sink_publishes_and_is_idempotent(sink: Sink) -> None:
    target, read, _ = sink
    assert publish_to(target, RELEASED, KILL).written
    assert read() == RELEASED
    assert not publish_to(target, RELEASED, KILL).written  # same bytes: nothing written
    assert publish_to(target, KILLED, KILL).written  # engaging always goes through
    assert read() == KILLED


def test_no_sink_releases_a_kill_the_state_did_not_record(sink: Sink) -> None:
    target, read, write = sink
    write(KILLED)
    result = publish_to(target, RELEASED, KILL)
    assert not result.written and result.held_because and "kill switch engaged" in result.held_because
    assert read() == KILLED
    # a release recorded before this kill does not release it either
    assert not publish_to(target, RELEASED, KILL, released_at="2026-12-01T09:00:00Z").written
    assert read() == KILLED


def test_every_sink_releases_on_the_explicit_release(sink: Sink) -> None:
    target, read, write = sink
    write(KILLED)
    assert publish_to(target, RELEASED, KILL, releasing_kill=True).written
    assert read() == RELEASED
    write(KILLED)
    assert publish_to(target, RELEASED, KILL, released_at="2026-12-01T10:00:00Z").written
    assert read() == RELEASED


def test_publish_flags_reports_each_sink(tmp_path: Path, kube: FakeKubeApi) -> None:
    file_sink = FileFlagSink(tmp_path / "wf.flagd.json")
    cm = configmap_sink("flags/docs-qa", api=kube.core_v1())
    file_sink.path.write_bytes(KILLED)
    results = publish_flags([file_sink, cm], RELEASED, KILL)
    assert [(r.written, bool(r.held_because)) for r in results] == [(False, True), (True, False)]
    assert json.loads(file_sink.path.read_bytes())["flags"][KILL]["defaultVariant"] == "engaged"


def test_the_file_sink_writes_the_document_readable_by_the_gateways_group(tmp_path: Path) -> None:
    file_sink = FileFlagSink(tmp_path / "wf.flagd.json")
    publish_to(file_sink, RELEASED, KILL)
    assert file_sink.path.stat().st_mode & 0o777 == 0o640


def test_the_mode_and_group_of_the_flag_document_are_configurable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import stat

    monkeypatch.setenv("ROLLOUT_FLAG_FILE_MODE", "0644")
    monkeypatch.setenv("ROLLOUT_FLAG_FILE_GROUP", "65534")
    file_sink = FileFlagSink(tmp_path / "flags" / "wf.flagd.json")
    publish_to(file_sink, RELEASED, KILL)
    st = file_sink.path.stat()
    assert st.st_mode & 0o777 == 0o644 and st.st_gid == 65534
    directory = file_sink.path.parent.stat()
    assert directory.st_gid == 65534 and directory.st_mode & stat.S_ISGID, "files are born in the group"
    publish_to(file_sink, KILLED, KILL)
    assert file_sink.path.stat().st_gid == 65534
    assert not [p for p in file_sink.path.parent.iterdir() if p.name.endswith(".tmp")]
    assert os.stat(file_sink.path).st_mode & 0o777 == 0o644


@pytest.mark.parametrize(
    ("var", "value", "message"),
    [
        ("ROLLOUT_FLAG_FILE_MODE", "rw-r-----", "expected an octal file mode"),
        ("ROLLOUT_FLAG_FILE_MODE", "0040", "expected an octal file mode the owner can read"),
        ("ROLLOUT_FLAG_FILE_MODE", "01777", "expected an octal file mode"),
        ("ROLLOUT_FLAG_FILE_GROUP", "no-such-group-here", "no such group"),
    ],
)
def test_a_bad_mode_or_group_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, var: str, value: str, message: str
) -> None:
    from controller.errors import InvalidInput

    monkeypatch.setenv(var, value)
    sink = FileFlagSink(tmp_path / "wf.flagd.json")
    with pytest.raises(InvalidInput, match=f"{var}={value!r}: {message}"):
        publish_to(sink, RELEASED, KILL)
    assert not (tmp_path / "wf.flagd.json").exists()
    sink.engage(KILLED)  # the kill switch does not wait on configuration
    assert sink.path.read_bytes() == KILLED and sink.path.stat().st_mode & 0o777 == 0o640


def test_a_malformed_mode_refuses_promote_unchanged_but_kill_still_engages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Misconfiguration stops every command before it writes, except the kill switch."""
    from controller.adapters.memory import MemoryStore
    from controller.bundle.models import load_bundle
    from controller.errors import InvalidInput
    from controller.service.rollout import RolloutService, kill_marker_path
    from tests.conftest import BUNDLE, REPO

    workflow = load_bundle(REPO / BUNDLE).workflow
    monkeypatch.setenv("ROLLOUT_FLAG_FILE_MODE", "not-a-mode")
    store = MemoryStore()
    svc = RolloutService(workflow, store, tmp_path / "flags" / "wf.flagd.json")
    with pytest.raises(InvalidInput, match="ROLLOUT_FLAG_FILE_MODE"):
        svc.rollback(operator="priya.natarajan", reason="x")
    assert store.list("") == [] and not svc.flags_path.exists()
    with pytest.raises(InvalidInput, match="ENGAGED anyway"):
        svc.kill(operator="sam.okafor", reason="incident")
    assert kill_engaged(svc.flags_path.read_bytes(), workflow.rollout.kill_switch_flag)
    assert kill_marker_path(svc.flags_path).exists()
