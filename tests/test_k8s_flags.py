"""The Kubernetes flag sinks against a fake API server on 127.0.0.1 (the real ``kubernetes``
client on the wire): the FeatureFlag the OpenFeature Operator's flagd sidecar watches, and the
ConfigMap for plain flagd; compare-and-swap under conflicts, RBAC refusals, a cluster without
the operator, an unreachable API server."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from controller.adapters.k8s_flags import DEFAULT_KEY, configmap_sink, featureflag_sink, flag_spec
from controller.bundle.models import Workflow
from controller.bundle.yamlio import load_yaml
from controller.core.flags import encode_flag_document, render_flag_document
from controller.errors import BackendUnavailable, Conflict, InvalidInput
from controller.service.publish import publish_to
from tests.fakes.kube import FakeKubeApi

REPO = Path(__file__).resolve().parent.parent
WF = Workflow.model_validate(load_yaml(REPO / "workflows/internal-docs-qa/workflow.yaml").data)
KILL = WF.rollout.kill_switch_flag
RELEASED = encode_flag_document(render_flag_document(WF, {"internal": "a" * 64}, killed=False, version=1))
KILLED = encode_flag_document(
    render_flag_document(WF, {"internal": "a" * 64}, killed=True, version=2, engaged_at="2026-12-01T10:00:00Z")
)
WRITER = [{"apiGroups": ["core.openfeature.dev"], "resources": ["featureflags"],
           "verbs": ["get", "list", "watch", "create", "update", "patch"]},
          {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "create", "update"]}]
READER = [{"apiGroups": ["core.openfeature.dev"], "resources": ["featureflags"], "verbs": ["get", "list", "watch"]}]


@pytest.fixture
def kube() -> Iterator[FakeKubeApi]:
    api = FakeKubeApi()
    yield api
    api.close()


def test_the_featureflag_carries_the_document_as_its_flag_spec(kube: FakeKubeApi) -> None:
    sink = featureflag_sink("flags/docs-qa", api=kube.custom_objects())
    assert publish_to(sink, RELEASED, KILL).written
    obj = kube.featureflag()
    assert obj is not None
    assert obj["apiVersion"] == "core.openfeature.dev/v1beta1" and obj["kind"] == "FeatureFlag"
    spec = obj["spec"]["flagSpec"]
    doc = json.loads(RELEASED)
    assert "$schema" not in spec, "$schema is not a FlagSpec field"
    assert spec == {"flags": doc["flags"], "metadata": doc["metadata"]}
    assert obj["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "ai-rollout"}
    assert [m for m, p in kube.requests] == ["GET", "POST"]
    assert kube.requests[1][1] == "/apis/core.openfeature.dev/v1beta1/namespaces/flags/featureflags"


def test_the_featureflag_is_idempotent_and_keeps_what_others_own(kube: FakeKubeApi) -> None:
    sink = featureflag_sink("flags/docs-qa", api=kube.custom_objects())
    publish_to(sink, RELEASED, KILL)
    obj = kube.featureflag()
    assert obj is not None
    obj["metadata"]["annotations"] = {"team": "platform"}
    kube.requests.clear()
    assert not publish_to(sink, RELEASED, KILL).written, "the same flags: nothing written"
    assert [m for m, _ in kube.requests] == ["GET"]
    assert publish_to(sink, KILLED, KILL).written
    obj = kube.featureflag()
    assert obj is not None and obj["metadata"]["annotations"] == {"team": "platform"}
    assert obj["spec"]["flagSpec"] == flag_spec(KILLED)


def test_a_concurrent_write_is_retried_on_a_fresh_read_then_refused(kube: FakeKubeApi) -> None:
    sink = featureflag_sink("flags/docs-qa", api=kube.custom_objects())
    publish_to(sink, RELEASED, KILL)
    kube.interfere = 1  # someone writes between our read and our replace: 409, re-read, retry
    assert publish_to(sink, KILLED, KILL).written
    assert [m for m, _ in kube.requests].count("PUT") == 2
    kube.interfere = 99
    sink.max_attempts = 3
    with pytest.raises(Conflict, match="changed concurrently 3 times"):
        publish_to(sink, RELEASED, KILL, releasing_kill=True)


def test_a_lost_create_race_reads_the_winner_and_applies_the_rule(kube: FakeKubeApi) -> None:
    """Another controller created the FeatureFlag (killed) between our 404 and our POST: the
    retry reads it and the never-un-kill rule holds it."""
    sink = featureflag_sink("flags/docs-qa", api=kube.custom_objects())
    winner = featureflag_sink("flags/docs-qa", api=kube.custom_objects())
    real_create = sink.api.create_namespaced_custom_object

    def create_after_the_winner(*args: Any, **kwargs: Any) -> Any:
        publish_to(winner, KILLED, KILL)
        return real_create(*args, **kwargs)

    sink.api.create_namespaced_custom_object = create_after_the_winner
    result = publish_to(sink, RELEASED, KILL)
    assert not result.written and result.held_because and "kill switch engaged" in result.held_because
    obj = kube.featureflag()
    assert obj is not None and obj["spec"]["flagSpec"] == flag_spec(KILLED)


def test_rbac_a_reader_may_not_write_and_a_writer_may(kube: FakeKubeApi) -> None:
    kube.grant("sidecar-token", READER, user="system:serviceaccount:docs-qa:docs-qa-gateway")
    kube.grant("controller-token", WRITER, user="system:serviceaccount:docs-qa:docs-qa-controller")
    reader = featureflag_sink("flags/docs-qa", api=kube.custom_objects("sidecar-token"))
    with pytest.raises(BackendUnavailable, match=r"cannot create: HTTP 403 Forbidden \(the cluster refused"):
        publish_to(reader, RELEASED, KILL)
    assert kube.featureflag() is None
    writer = featureflag_sink("flags/docs-qa", api=kube.custom_objects("controller-token"))
    assert publish_to(writer, RELEASED, KILL).written
    with pytest.raises(BackendUnavailable, match="cannot replace: HTTP 403"):
        publish_to(reader, KILLED, KILL)
    anonymous = featureflag_sink("flags/docs-qa", api=kube.custom_objects())
    with pytest.raises(BackendUnavailable, match="cannot read: HTTP 401"):
        publish_to(anonymous, KILLED, KILL)
    cm_reader = configmap_sink("flags/docs-qa", api=kube.core_v1("sidecar-token"))
    with pytest.raises(BackendUnavailable, match="configmap:flags/docs-qa#flags.flagd.json: cannot read: HTTP 403"):
        publish_to(cm_reader, KILLED, KILL)
    assert publish_to(configmap_sink("flags/docs-qa", api=kube.core_v1("controller-token")), KILLED, KILL).written


def test_a_cluster_without_the_operator_is_unavailable_not_a_crash() -> None:
    kube = FakeKubeApi(crds=())
    try:
        sink = featureflag_sink("flags/docs-qa", api=kube.custom_objects())
        with pytest.raises(BackendUnavailable, match="cannot create: HTTP 404"):
            publish_to(sink, RELEASED, KILL)
    finally:
        kube.close()


def test_the_fake_refuses_what_the_crd_does_not_allow(kube: FakeKubeApi) -> None:
    """The fake is strict like the API server with the operator's CRD: the raw document (with
    ``$schema``) or a flag without ``state`` is 422, so the sink's own shape is really checked."""
    from kubernetes.client.rest import ApiException

    api = kube.custom_objects()
    body = {"apiVersion": "core.openfeature.dev/v1beta1", "kind": "FeatureFlag",
            "metadata": {"name": "raw", "namespace": "flags"}, "spec": {"flagSpec": json.loads(RELEASED)}}
    with pytest.raises(ApiException) as err:
        api.create_namespaced_custom_object("core.openfeature.dev", "v1beta1", "flags", "featureflags", body)
    assert err.value.status == 422 and "$schema" in err.value.body
    spec = flag_spec(RELEASED)
    del spec["flags"][KILL]["state"]
    body["spec"] = {"flagSpec": spec}
    with pytest.raises(ApiException) as err:
        api.create_namespaced_custom_object("core.openfeature.dev", "v1beta1", "flags", "featureflags", body)
    assert err.value.status == 422 and "'state' is a required property" in err.value.body


def test_an_unreachable_api_server_is_unavailable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    from kubernetes import client

    config = client.Configuration()
    config.host = f"http://127.0.0.1:{port}"
    config.retries = 0
    sink = featureflag_sink("flags/docs-qa", api=client.CustomObjectsApi(client.ApiClient(config)))
    with pytest.raises(BackendUnavailable, match="featureflag:flags/docs-qa: cannot read"):
        publish_to(sink, RELEASED, KILL)


@pytest.mark.parametrize("target", ["flags", "flags/", "/x", "a/b/c"])
def test_a_bad_target_names_the_option(target: str) -> None:
    with pytest.raises(InvalidInput, match="--k8s-featureflag"):
        featureflag_sink(target)


def test_the_configmap_keeps_the_key_flagd_expects(kube: FakeKubeApi) -> None:
    sink = configmap_sink("flags/docs-qa", api=kube.core_v1())
    assert publish_to(sink, RELEASED, KILL).written
    assert kube.data() == {DEFAULT_KEY: RELEASED.decode()} and DEFAULT_KEY == "flags.flagd.json"
