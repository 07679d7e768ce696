"""A fake Kubernetes API server on 127.0.0.1 for the real ``kubernetes`` client on the wire.

It speaks the real REST paths of the two resources the flag sinks write:

- ConfigMaps: ``/api/v1/namespaces/{ns}/configmaps[/{name}]``;
- custom objects: ``/apis/{group}/{version}/namespaces/{ns}/{plural}[/{name}]`` for the kinds
  whose CRD was installed (``install_crd``, from the operator's own CRD file); others are 404,
  as on a cluster without the OpenFeature Operator. Bodies are checked against the CRD's
  ``openAPIV3Schema`` (422 Invalid, unknown fields included, as with strict field validation).

Like the API server: GET/POST/PUT, ``resourceVersion`` checked on PUT (409 Conflict when stale),
409 AlreadyExists on a POST of an existing name, and RBAC: once any identity is ``grant``ed
Role-style rules, a request needs its bearer token (401 without) and a rule allowing its verb
on the resource (403 Forbidden, with the API server's message). ``interfere`` makes the next N
PUTs find the object changed by someone else.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jsonschema

__all__ = ["CRD_DIR", "FakeKubeApi", "unknown_fields"]

CRD_DIR = Path(__file__).resolve().parent.parent / "data" / "k8s-schemas" / "open-feature-operator"
_VERBS = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


def unknown_fields(schema: dict[str, Any], value: Any, path: str = "") -> list[str]:
    """Fields a structural schema does not declare (the API server prunes them, or refuses them
    under strict field validation), except below ``x-kubernetes-preserve-unknown-fields``."""
    if schema.get("x-kubernetes-preserve-unknown-fields") or not isinstance(value, dict):
        if isinstance(value, list) and "items" in schema:
            return [p for i, v in enumerate(value) for p in unknown_fields(schema["items"], v, f"{path}[{i}]")]
        return []
    props = schema.get("properties")
    extra = schema.get("additionalProperties")
    found: list[str] = []
    for key, v in value.items():
        if props is not None and key in props:
            found += unknown_fields(props[key], v, f"{path}.{key}")
        elif isinstance(extra, dict):
            found += unknown_fields(extra, v, f"{path}.{key}")
        elif props is not None:
            found.append(f"{path}.{key}")
    return found


class FakeKubeApi:
    def __init__(self, *, crds: tuple[str, ...] = ("featureflags",)) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}  # ConfigMaps by (namespace, name)
        self.custom: dict[tuple[str, str, str, str], dict[str, Any]] = {}  # (group, plural, ns, name)
        self.schemas: dict[tuple[str, str, str], dict[str, Any]] = {}  # (group, version, plural)
        self.grants: dict[str, tuple[str, list[dict[str, Any]]]] = {}  # token -> (user, rules)
        self.requests: list[tuple[str, str]] = []
        self.interfere = 0  # the next N PUTs find the object changed by someone else
        self._lock = threading.Lock()
        for name in crds:
            self.install_crd(CRD_DIR / f"core.openfeature.dev_{name}.yaml")
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    # --- set-up -----------------------------------------------------------------------------------

    def install_crd(self, path: Path) -> None:
        from ruamel.yaml import YAML

        crd = YAML(typ="safe").load(path.read_text())
        group, plural = crd["spec"]["group"], crd["spec"]["names"]["plural"]
        for version in crd["spec"]["versions"]:
            if version.get("served"):
                self.schemas[(group, version["name"], plural)] = version["schema"]["openAPIV3Schema"]

    def grant(self, token: str, rules: list[dict[str, Any]], *, user: str = "system:serviceaccount:x:y") -> None:
        """Let ``token`` do what Role ``rules`` allow (apiGroups, resources, verbs, resourceNames)."""
        self.grants[token] = (user, rules)

    def core_v1(self, token: str | None = None) -> Any:
        from kubernetes import client

        return client.CoreV1Api(self.api_client(token))

    def custom_objects(self, token: str | None = None) -> Any:
        from kubernetes import client

        return client.CustomObjectsApi(self.api_client(token))

    def api_client(self, token: str | None = None) -> Any:
        from kubernetes import client

        config = client.Configuration()
        config.host = self.url
        if token:
            config.api_key = {"authorization": token}
            config.api_key_prefix = {"authorization": "Bearer"}
        return client.ApiClient(config)

    def data(self, ns: str = "flags", name: str = "docs-qa") -> dict[str, str]:
        return self.objects[(ns, name)]["data"]

    def featureflag(self, ns: str = "flags", name: str = "docs-qa") -> dict[str, Any] | None:
        return self.custom.get(("core.openfeature.dev", "featureflags", ns, name))

    # --- the server -------------------------------------------------------------------------------

    def _allowed(self, token: str | None, verb: str, group: str, resource: str, name: str | None) -> str | None:
        """None when allowed; else the status to answer ("401" or a 403 message)."""
        if not self.grants:
            return None
        if token is None or token not in self.grants:
            return "401"
        user, rules = self.grants[token]
        for rule in rules:
            if (
                group in rule.get("apiGroups", [])
                and resource in rule.get("resources", [])
                and (verb in rule.get("verbs", []) or "*" in rule.get("verbs", []))
                and (not rule.get("resourceNames") or name in rule["resourceNames"])
            ):
                return None
        where = f'"{name}" ' if name else ""
        return (
            f'{resource} {where}is forbidden: User "{user}" cannot {verb} resource "{resource}" '
            f'in API group "{group}"'
        )

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _status(self, code: int, reason: str, message: str = "") -> None:
                self._send(code, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason,
                                  "message": message or reason, "code": code})

            def _route(self) -> tuple[str, str, str, str, str | None] | None:
                """(group, version, plural, namespace, name or None) of a namespaced resource path."""
                parts = self.path.split("?")[0].strip("/").split("/")
                if parts[:3] == ["api", "v1", "namespaces"] and len(parts) in (5, 6) and parts[4] == "configmaps":
                    return "", "v1", "configmaps", parts[3], (parts[5] if len(parts) == 6 else None)
                if parts[:1] == ["apis"] and len(parts) in (6, 7) and parts[3] == "namespaces":
                    return parts[1], parts[2], parts[5], parts[4], (parts[6] if len(parts) == 7 else None)
                return None

            def _begin(self, method: str) -> tuple[str, str, str, str, str | None] | None:
                api.requests.append((method, self.path))
                route = self._route()
                if route is None or (route[0] and route[:3] not in api.schemas):
                    self._status(404, "NotFound", "the server could not find the requested resource")
                    return None
                group, _, plural, _, name = route
                verb = _VERBS[method] if (name or method != "GET") else "list"
                auth = self.headers.get("Authorization", "")
                token = auth.removeprefix("Bearer ").strip() or None
                refused = api._allowed(token, verb, group, plural, name)
                if refused == "401":
                    self._status(401, "Unauthorized")
                    return None
                if refused:
                    self._status(403, "Forbidden", refused)
                    return None
                return route

            def _store(self, route: tuple[str, str, str, str, str | None]) -> tuple[dict[Any, Any], Any]:
                group, _, plural, ns, name = route
                return (api.objects, (ns, name)) if not group else (api.custom, (group, plural, ns, name))

            def _body(self) -> dict[str, Any]:
                return json.loads(self.rfile.read(int(self.headers["Content-Length"])))

            def _invalid(self, route: tuple[str, str, str, str, str | None], body: dict[str, Any]) -> str | None:
                schema = api.schemas.get(route[:3])
                if schema is None:
                    return None
                try:
                    jsonschema.validate(body, schema)
                except jsonschema.ValidationError as exc:
                    return f"{'.'.join(str(p) for p in exc.absolute_path)}: {exc.message}"
                extra = unknown_fields(schema, body)
                return f"strict decoding error: unknown field {', '.join(extra)}" if extra else None

            def do_GET(self) -> None:
                route = self._begin("GET")
                if route is None:
                    return
                objects, key = self._store(route)
                with api._lock:
                    obj = objects.get(key)
                self._send(200, obj) if obj else self._status(404, "NotFound")

            def do_POST(self) -> None:
                route = self._begin("POST")
                if route is None:
                    return
                body = self._body()
                problem = self._invalid(route, body)
                if problem:
                    return self._status(422, "Invalid", problem)
                objects, key = self._store((*route[:4], body["metadata"]["name"]))
                with api._lock:
                    if key in objects:
                        return self._status(409, "AlreadyExists")
                    body["metadata"]["resourceVersion"] = "1"
                    objects[key] = body
                self._send(201, body)

            def do_PUT(self) -> None:
                route = self._begin("PUT")
                if route is None:
                    return
                body = self._body()
                problem = self._invalid(route, body)
                if problem:
                    return self._status(422, "Invalid", problem)
                objects, key = self._store(route)
                with api._lock:
                    current = objects.get(key)
                    if current is None:
                        return self._status(404, "NotFound")
                    if api.interfere:
                        api.interfere -= 1
                        current["metadata"]["resourceVersion"] = str(int(current["metadata"]["resourceVersion"]) + 1)
                    if body["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
                        return self._status(409, "Conflict", "the object has been modified; please apply your "
                                            "changes to the latest version and try again")
                    body["metadata"]["resourceVersion"] = str(int(current["metadata"]["resourceVersion"]) + 1)
                    objects[key] = body
                self._send(200, body)

        return Handler

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
