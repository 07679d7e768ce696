"""Kubernetes flag sync: publish the rendered flag document to the cluster, two ways.

- ``FeatureFlagSink``: a ``FeatureFlag`` resource (``core.openfeature.dev/v1beta1``) for the
  OpenFeature Operator. The flagd sidecar the operator injects watches FeatureFlag resources
  (its ``kubernetes`` sync source), so this is what OpenFeature users run. The document goes in
  as ``spec.flagSpec`` = its ``flags``, ``metadata`` and ``$evaluators``; ``$schema`` is not a
  FlagSpec field and is dropped (the API server would prune it).
- ``ConfigMapFlagSink``: a ConfigMap key (``flags.flagd.json``) for plain-flagd users who mount
  the ConfigMap as a file (kubelet refreshes the mounted file when the ConfigMap changes). The
  operator never reads such a ConfigMap.

The controller still renders the document from its state alone (``controller.service.rollout.render``);
both sinks only carry that document, and what may be written is decided by the one publish path
(``controller.service.publish``, the never-un-kill rule), never here. Both sinks are:

- idempotent: read, compare, write only when the key's value differs;
- optimistic concurrency: the write carries the ``resourceVersion`` it read (a replace; the API
  server answers 409 when someone else wrote in between) and is retried on a fresh read, up to
  ``max_attempts``, then ``Conflict`` (exit 4); a create that loses (409) is retried the same way;
- other keys of the ConfigMap (other fields of the FeatureFlag's spec), labels and annotations
  are kept;
- an unreachable API server, or 401/403 (RBAC: the service account may not write), is
  ``BackendUnavailable`` (exit 5).

The ``kubernetes`` client is an optional dependency (extra ``[k8s]``), imported only here and
only when a sink is built. ``configmap_sink("ns/name")`` and ``featureflag_sink("ns/name")`` use
in-cluster configuration when they run in a pod, else the kubeconfig; pass ``api`` (a
``CoreV1Api`` / ``CustomObjectsApi``) to point them elsewhere.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

from controller.core.flags import encode_flag_document
from controller.errors import BackendUnavailable, Conflict, InvalidInput
from controller.ports import FlagSink

__all__ = [
    "DEFAULT_KEY",
    "FEATUREFLAG_GROUP",
    "FEATUREFLAG_PLURAL",
    "FEATUREFLAG_VERSION",
    "ConfigMapFlagSink",
    "FeatureFlagSink",
    "FlagSink",
    "configmap_sink",
    "featureflag_sink",
    "flag_spec",
]

DEFAULT_KEY = "flags.flagd.json"
FEATUREFLAG_GROUP = "core.openfeature.dev"
FEATUREFLAG_VERSION = "v1beta1"
FEATUREFLAG_PLURAL = "featureflags"
_FLAG_SPEC_KEYS = ("flags", "metadata", "$evaluators")  # the FlagSpec fields of the operator's CRD
MANAGED_BY = {"app.kubernetes.io/managed-by": "ai-rollout"}


class ConfigMapFlagSink:
    def __init__(
        self,
        namespace: str,
        name: str,
        api: Any,
        *,
        key: str = DEFAULT_KEY,
        labels: dict[str, str] | None = None,
        max_attempts: int = 5,
    ) -> None:
        if not namespace or not name:
            raise InvalidInput("a ConfigMap sink needs a namespace and a name (NAMESPACE/NAME).")
        self.namespace, self.name, self.key = namespace, name, key
        self._api = api  # a CoreV1Api, or a callable that builds one on first use
        self.labels = labels or dict(MANAGED_BY)
        self.max_attempts = max(1, max_attempts)

    def describe(self) -> str:
        return f"configmap:{self.namespace}/{self.name}#{self.key}"

    @property
    def api(self) -> Any:
        if not hasattr(self._api, "read_namespaced_config_map"):
            self._api = self._api()
        return self._api

    def swap(self, decide: Callable[[bytes | None], bytes | None]) -> bool:
        """Read, decide, write with the ``resourceVersion`` read (409 on a concurrent write: retried
        on a fresh read, up to ``max_attempts``). What may be written is decided by the one publish
        path (``controller.service.publish``), never here."""
        from kubernetes.client import V1ConfigMap, V1ObjectMeta

        for _ in range(self.max_attempts):
            current = self._call(
                "read", self.api.read_namespaced_config_map, self.name, self.namespace, missing_ok=True
            )
            live = None if current is None else (current.data or {}).get(self.key)
            data = decide(None if live is None else live.encode("utf-8"))
            if data is None:
                return False
            text = data.decode("utf-8")
            if text == live:
                return False
            if current is None:
                body = V1ConfigMap(
                    api_version="v1",
                    kind="ConfigMap",
                    metadata=V1ObjectMeta(name=self.name, namespace=self.namespace, labels=self.labels),
                    data={self.key: text},
                )
                if self._call("create", self.api.create_namespaced_config_map, self.namespace, body, conflict_ok=True):
                    return True
                continue
            current.data = {**(current.data or {}), self.key: text}
            # current.metadata.resource_version is sent back: the server refuses a stale write (409)
            if self._call(
                "replace", self.api.replace_namespaced_config_map, self.name, self.namespace, current, conflict_ok=True
            ):
                return True
        raise Conflict(f"{self.describe()}: changed concurrently {self.max_attempts} times; retry.")

    def _call(self, op: str, fn: Any, *args: Any, missing_ok: bool = False, conflict_ok: bool = False) -> Any:
        return _call(self.describe(), op, fn, *args, missing_ok=missing_ok, conflict_ok=conflict_ok)


def _call(what: str, op: str, fn: Any, *args: Any, missing_ok: bool = False, conflict_ok: bool = False) -> Any:
    """One API call: 404 -> None (``missing_ok``), 409 -> False (``conflict_ok``), anything else
    that fails -> ``BackendUnavailable`` (exit 5) naming the sink, the operation and the status."""
    from kubernetes.client.rest import ApiException

    try:
        return fn(*args, _request_timeout=10)
    except ApiException as exc:
        if missing_ok and exc.status == 404:
            return None
        if conflict_ok and exc.status == 409:
            return False
        hint = ""
        if exc.status in (401, 403):
            hint = " (the cluster refused this identity: check its RBAC, deploy/base/rbac.yaml)"
        raise BackendUnavailable(f"{what}: cannot {op}: HTTP {exc.status} {exc.reason}{hint}.") from exc
    except Exception as exc:  # urllib3 and socket errors: the API server is not reachable
        raise BackendUnavailable(f"{what}: cannot {op}: {exc}.") from exc


def flag_spec(document: bytes) -> dict[str, Any]:
    """The FeatureFlag ``spec.flagSpec`` of a rendered flag document (``$schema`` dropped)."""
    doc = json.loads(document)
    return {k: doc[k] for k in _FLAG_SPEC_KEYS if k in doc}


class FeatureFlagSink:
    """The flag document as the ``spec.flagSpec`` of a ``FeatureFlag`` (OpenFeature Operator).

    Compare-and-swap on ``resourceVersion``, like the ConfigMap sink. ``decide`` sees the live
    flagSpec encoded as a flag document (the one byte encoding), so the never-un-kill rule reads
    the kill switch the sidecar is serving; equal specs are not rewritten."""

    def __init__(
        self,
        namespace: str,
        name: str,
        api: Any,
        *,
        labels: dict[str, str] | None = None,
        max_attempts: int = 5,
    ) -> None:
        if not namespace or not name:
            raise InvalidInput("a FeatureFlag sink needs a namespace and a name (NAMESPACE/NAME).")
        self.namespace, self.name = namespace, name
        self._api = api  # a CustomObjectsApi, or a callable that builds one on first use
        self.labels = labels or dict(MANAGED_BY)
        self.max_attempts = max(1, max_attempts)

    def describe(self) -> str:
        return f"featureflag:{self.namespace}/{self.name}"

    @property
    def api(self) -> Any:
        if not hasattr(self._api, "get_namespaced_custom_object"):
            self._api = self._api()
        return self._api

    def _where(self) -> tuple[str, str, str, str]:
        return FEATUREFLAG_GROUP, FEATUREFLAG_VERSION, self.namespace, FEATUREFLAG_PLURAL

    def swap(self, decide: Callable[[bytes | None], bytes | None]) -> bool:
        for _ in range(self.max_attempts):
            current = _call(
                self.describe(), "read", self.api.get_namespaced_custom_object, *self._where(), self.name,
                missing_ok=True,
            )
            live = None if current is None else (current.get("spec") or {}).get("flagSpec")
            data = decide(None if live is None else encode_flag_document(live))
            if data is None:
                return False
            try:
                spec = flag_spec(data)
            except (ValueError, TypeError) as exc:
                raise InvalidInput(f"{self.describe()}: the rendered flag document is not JSON: {exc}.") from exc
            if spec == live:
                return False
            if current is None:
                body = {
                    "apiVersion": f"{FEATUREFLAG_GROUP}/{FEATUREFLAG_VERSION}",
                    "kind": "FeatureFlag",
                    "metadata": {"name": self.name, "namespace": self.namespace, "labels": self.labels},
                    "spec": {"flagSpec": spec},
                }
                if _call(
                    self.describe(), "create", self.api.create_namespaced_custom_object, *self._where(), body,
                    conflict_ok=True,
                ):
                    return True
                continue
            current["spec"] = {**(current.get("spec") or {}), "flagSpec": spec}
            # metadata.resourceVersion is sent back: the server refuses a stale write (409)
            if _call(
                self.describe(), "replace", self.api.replace_namespaced_custom_object, *self._where(), self.name,
                current, conflict_ok=True,
            ):
                return True
        raise Conflict(f"{self.describe()}: changed concurrently {self.max_attempts} times; retry.")


def _target(option: str, target: str) -> tuple[str, str]:
    namespace, _, name = target.partition("/")
    if not namespace or not name or "/" in name:
        raise InvalidInput(f"{option} {target!r}: expected NAMESPACE/NAME.")
    return namespace, name


def configmap_sink(target: str, *, api: Any = None, key: str = DEFAULT_KEY) -> ConfigMapFlagSink:
    """A sink for ``NAMESPACE/NAME``; the API client from the pod or the kubeconfig unless given."""
    namespace, name = _target("--k8s-configmap", target)
    # The configuration is loaded on first publish, so a missing kubeconfig never stops a command
    # before the local flag file is written (a kill above all).
    return ConfigMapFlagSink(namespace, name, api if api is not None else _default_api, key=key)


def featureflag_sink(target: str, *, api: Any = None) -> FeatureFlagSink:
    """A FeatureFlag sink for ``NAMESPACE/NAME``; the client is built on first publish, as above."""
    namespace, name = _target("--k8s-featureflag", target)
    return FeatureFlagSink(namespace, name, api if api is not None else _default_custom_api)


def _default_custom_api() -> Any:
    from kubernetes import client

    return client.CustomObjectsApi(_default_api().api_client)


def _default_api() -> Any:
    try:
        from kubernetes import client, config
    except ImportError as exc:
        raise InvalidInput(
            "Kubernetes flag sync needs the 'kubernetes' package: pip install 'ai-rollout[k8s]'."
        ) from exc
    try:
        config.load_incluster_config()
    except config.ConfigException:
        try:
            # KUBECONFIG is read now: the client reads it once, when it is first imported
            config.load_kube_config(config_file=os.environ.get("KUBECONFIG") or None)
        except (config.ConfigException, OSError) as exc:
            raise BackendUnavailable(f"no Kubernetes configuration (in-cluster or kubeconfig): {exc}.") from exc
    return client.CoreV1Api()
