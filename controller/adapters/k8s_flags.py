"""Kubernetes flag sync: publish the rendered flag document as a ConfigMap key.

In Kubernetes, flagd (or the gateway's in-process flagd provider) reads the flag document from a
ConfigMap mounted as a file; kubelet refreshes the mounted file when the ConfigMap changes. The
controller still renders the document from its state alone (``controller.service.rollout.render``); this
sink only copies those exact bytes to ``<namespace>/<name>`` under ``key``:

- idempotent: read, compare, write only when the key's value differs;
- optimistic concurrency: the write carries the ``resourceVersion`` it read (a replace; the API
  server answers 409 when someone else wrote in between) and is retried on a fresh read, up to
  ``max_attempts``, then ``Conflict`` (exit 4); a create that loses (409) is retried the same way;
- other keys of the ConfigMap, its labels and annotations are kept;
- an unreachable API server, or 401/403, is ``BackendUnavailable`` (exit 5).

The ``kubernetes`` client is an optional dependency (extra ``[k8s]``), imported only here and
only when a sink is built. ``configmap_sink("ns/name")`` uses in-cluster configuration when it
runs in a pod, else the kubeconfig; pass ``api`` (a ``CoreV1Api``) to point it elsewhere.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from controller.errors import BackendUnavailable, Conflict, InvalidInput
from controller.ports import FlagSink

__all__ = ["DEFAULT_KEY", "ConfigMapFlagSink", "FlagSink", "configmap_sink"]

DEFAULT_KEY = "flags.flagd.json"


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
        self.labels = labels or {"app.kubernetes.io/managed-by": "ai-rollout"}
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
        from kubernetes.client.rest import ApiException

        try:
            return fn(*args, _request_timeout=10)
        except ApiException as exc:
            if missing_ok and exc.status == 404:
                return None
            if conflict_ok and exc.status == 409:
                return False
            raise BackendUnavailable(f"{self.describe()}: cannot {op}: HTTP {exc.status} {exc.reason}.") from exc
        except Exception as exc:  # urllib3 and socket errors: the API server is not reachable
            raise BackendUnavailable(f"{self.describe()}: cannot {op}: {exc}.") from exc


def configmap_sink(target: str, *, api: Any = None, key: str = DEFAULT_KEY) -> ConfigMapFlagSink:
    """A sink for ``NAMESPACE/NAME``; the API client from the pod or the kubeconfig unless given."""
    namespace, _, name = target.partition("/")
    if not namespace or not name or "/" in name:
        raise InvalidInput(f"--k8s-configmap {target!r}: expected NAMESPACE/NAME.")
    # The configuration is loaded on first publish, so a missing kubeconfig never stops a command
    # before the local flag file is written (a kill above all).
    return ConfigMapFlagSink(namespace, name, api if api is not None else _default_api, key=key)


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
