"""A fake Kubernetes API server on 127.0.0.1 for the real ``kubernetes`` client (ConfigMaps)."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["FakeKubeApi"]


class FakeKubeApi:
    """The ConfigMap subset of the Kubernetes API on 127.0.0.1: GET, POST and PUT, with
    ``resourceVersion`` checked on PUT (409 when stale) and 409 on a POST of an existing name."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.requests: list[tuple[str, str]] = []
        self.interfere = 0  # the next N PUTs find the object changed by someone else
        lock = threading.Lock()
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

            def _status(self, code: int, reason: str) -> None:
                self._send(code, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason, "code": code})

            def _route(self) -> tuple[str, str | None] | None:
                parts = self.path.split("?")[0].strip("/").split("/")
                if parts[:3] != ["api", "v1", "namespaces"] or len(parts) not in (5, 6) or parts[4] != "configmaps":
                    return None
                return parts[3], (parts[5] if len(parts) == 6 else None)

            def _body(self) -> dict[str, Any]:
                return json.loads(self.rfile.read(int(self.headers["Content-Length"])))

            def do_GET(self) -> None:
                api.requests.append(("GET", self.path))
                route = self._route()
                with lock:
                    obj = api.objects.get(route) if route else None  # type: ignore[arg-type]
                self._send(200, obj) if obj else self._status(404, "NotFound")

            def do_POST(self) -> None:
                api.requests.append(("POST", self.path))
                ns, _ = self._route() or ("", None)
                body = self._body()
                key = (ns, body["metadata"]["name"])
                with lock:
                    if key in api.objects:
                        return self._status(409, "AlreadyExists")
                    body["metadata"]["resourceVersion"] = "1"
                    api.objects[key] = body
                self._send(201, body)

            def do_PUT(self) -> None:
                api.requests.append(("PUT", self.path))
                route = self._route()
                body = self._body()
                with lock:
                    current = api.objects.get(route)  # type: ignore[arg-type]
                    if current is None:
                        return self._status(404, "NotFound")
                    if api.interfere:
                        api.interfere -= 1
                        current["metadata"]["resourceVersion"] = str(int(current["metadata"]["resourceVersion"]) + 1)
                    if body["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
                        return self._status(409, "Conflict")
                    body["metadata"]["resourceVersion"] = str(int(current["metadata"]["resourceVersion"]) + 1)
                    api.objects[route] = body  # type: ignore[index]
                self._send(200, body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def core_v1(self) -> Any:
        from kubernetes import client

        config = client.Configuration()
        config.host = self.url
        return client.CoreV1Api(client.ApiClient(config))

    def data(self, ns: str = "flags", name: str = "docs-qa") -> dict[str, str]:
        return self.objects[(ns, name)]["data"]
