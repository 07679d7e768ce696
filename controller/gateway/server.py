"""``rollout serve``: the ASGI app on uvicorn (httptools, uvloop where available), N processes.

With one worker the app is built in this process. With ``--workers N`` uvicorn's supervisor
starts N processes sharing the listening socket; each builds its own Gateway from a
``ServeConfig`` passed in ``ROLLOUT_SERVE_CONFIG`` (JSON). Each worker has its own metrics
registry and audit file descriptor; JSONL appends from several processes never interleave
(one ``write()`` per record, O_APPEND).
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controller.gateway.limits import Limits

__all__ = ["BackgroundServer", "ServeConfig", "build_app", "serve", "uvicorn_config"]

CONFIG_ENV = "ROLLOUT_SERVE_CONFIG"


@dataclass(frozen=True)
class ServeConfig:
    workflow: str  # the bundle directory
    state: str
    store_url: str | None = None
    jwks: str | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    group_commit: bool = True


def build_app(config: ServeConfig, limits: Limits | None = None) -> Any:
    from controller.adapters import open_store
    from controller.bundle.models import load_bundle
    from controller.gateway.asgi import create_app
    from controller.service.compose import StatePaths, build_gateway, open_local_store

    bundle = load_bundle(Path(config.workflow))
    state = Path(config.state)
    store = open_store(config.store_url) if config.store_url else open_local_store(state)
    gateway = build_gateway(bundle, state, jwks=config.jwks, store=store)
    return create_app(gateway, limits, flags_path=StatePaths(state).flags(bundle.id))


def _worker_app() -> Any:
    """uvicorn's app factory in each worker process."""
    config = ServeConfig(**json.loads(os.environ[CONFIG_ENV]))
    return build_app(config)


def uvicorn_config(app: Any, config: ServeConfig, limits: Limits | None = None) -> Any:
    import uvicorn

    from controller.gateway.protocol import protocol_class

    limits = limits or Limits()
    return uvicorn.Config(
        app,
        host=config.host,
        port=config.port,
        workers=config.workers,
        factory=isinstance(app, str),
        # a worker process imports the protocol by name (a class bound at run time does not pickle)
        http=protocol_class(limits) if config.workers <= 1 else "controller.gateway.protocol:GatewayHttpProtocol",
        loop="auto",  # uvloop when installed
        timeout_keep_alive=limits.keep_alive_s,
        timeout_graceful_shutdown=10,
        backlog=2048,
        access_log=False,  # the audit record is the log; no question text on stderr
        log_level="warning",
        server_header=False,
        lifespan="off",
    )


def serve(config: ServeConfig, limits: Limits | None = None) -> None:
    """Serve until interrupted (SIGINT/SIGTERM stop gracefully)."""
    import uvicorn

    if config.workers > 1 and limits not in (None, Limits()):
        raise ValueError("custom limits need --workers 1 (worker processes use the defaults)")
    if config.workers <= 1:
        app = build_app(config, limits)
        try:
            uvicorn.Server(uvicorn_config(app, config, limits)).run()
        finally:
            app.gateway.sink.close()
            app.gateway.flags.close()
        return
    os.environ[CONFIG_ENV] = json.dumps(dataclasses.asdict(config))
    ucfg = uvicorn_config("controller.gateway.server:_worker_app", config, limits)
    sock = ucfg.bind_socket()
    from uvicorn.supervisors import Multiprocess

    Multiprocess(ucfg, sockets=[sock]).run()


class BackgroundServer:
    """The app on uvicorn in a daemon thread on 127.0.0.1 (tests, benchmarks, demos)."""

    def __init__(self, app: Any, limits: Limits | None = None, host: str = "127.0.0.1"):
        import socket
        import threading

        import uvicorn

        self.app = app
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://{host}:{self.port}"
        self.server = uvicorn.Server(uvicorn_config(app, ServeConfig(workflow="", state="", host=host, port=self.port),
                                                    limits))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True,
                                       name="rollout-serve")

    def __enter__(self) -> BackgroundServer:
        import time

        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the gateway server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()
