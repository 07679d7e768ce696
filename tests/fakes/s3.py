"""A real S3 HTTP endpoint for tests: moto's ``ThreadedMotoServer`` on 127.0.0.1.

As a library::

    endpoint_url, stop = start_s3_server()      # a new server on a free port
    endpoint_url = shared_s3_server()           # one server per process, started on first use

As a pytest plugin (``pytest_plugins = ["fakes.s3"]`` in ``tests/conftest.py``), fixtures:

    s3_server    session   endpoint URL of the shared server; fake credentials in the environment
    s3_bucket    function  a fresh, empty bucket on it: ``S3Bucket(endpoint_url, name)``
    s3_client    function  a boto3 S3 client pointed at the server

Why requests are serialised: moto 5.2.5 checks ``If-Match``/``If-None-Match`` and then writes
as two steps, and its threaded server runs requests concurrently, so two conditional PUTs can
both pass the check (measured: 8 writers x 100 CAS increments lost 8 updates). Real S3 makes a
conditional write atomic, so the fake runs one S3 request at a time, which is the behaviour the
code under test relies on. Without it a "no lost update" test would test moto, not us.

Credentials are fake and set only for the session (``AWS_ACCESS_KEY_ID=testing``...); the shared
config and credentials files are pointed at nothing so no real profile is ever read.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

__all__ = [
    "FAKE_AWS_ENV",
    "S3Bucket",
    "fake_aws_env",
    "make_bucket",
    "make_client",
    "s3_bucket",
    "s3_client",
    "s3_server",
    "shared_s3_server",
    "start_s3_server",
]

FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": "/nonexistent/aws-config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
}


class _OneRequestAtATime:
    """WSGI middleware: run each request, body included, under one lock (see module doc)."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with self._lock:
            result = self._app(environ, start_response)
            try:
                return [bytes(chunk) for chunk in result]
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()


def _server_class() -> type:
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from moto.server import ThreadedMotoServer
    from werkzeug.serving import make_server

    class _AtomicMotoServer(ThreadedMotoServer):
        # Mirrors ThreadedMotoServer._server_entry (moto 5.2.5) with the app wrapped.
        def _server_entry(self) -> None:
            app = _OneRequestAtATime(DomainDispatcherApplication(create_backend_app))
            self._server = make_server(
                self._ip_address, self._port, app, True, request_handler=MotoRequestHandler
            )
            self._server_ready_event.set()
            self._server.serve_forever()

    return _AtomicMotoServer


def start_s3_server(host: str = "127.0.0.1") -> tuple[str, Callable[[], None]]:
    """Start a moto S3 server on a free port of ``host``; return ``(endpoint_url, stop)``.

    Port 0 lets the kernel pick a free port at bind time, so there is no race with another
    process grabbing a port we probed.
    """
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per request
    server = _server_class()(ip_address=host, port=0, verbose=False)
    server.start()
    bound_host, port = server.get_host_and_port()
    return f"http://{bound_host}:{port}", server.stop


_shared: tuple[str, Callable[[], None]] | None = None
_shared_lock = threading.Lock()


def shared_s3_server() -> str:
    """The endpoint of this process's one S3 server, started on first use, stopped at exit.

    Every fixture and helper uses it, so registering the plugin *and* importing its fixtures
    into a test module still starts a single server.
    """
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = start_s3_server()
            atexit.register(_shared[1])
        return _shared[0]


def make_client(endpoint_url: str) -> Any:
    """A boto3 S3 client for the fake server with fake credentials and fast failure."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=FAKE_AWS_ENV["AWS_DEFAULT_REGION"],
        aws_access_key_id=FAKE_AWS_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_AWS_ENV["AWS_SECRET_ACCESS_KEY"],
        config=Config(connect_timeout=2, read_timeout=20, retries={"max_attempts": 2}),
    )


def make_bucket(endpoint_url: str, name: str | None = None) -> str:
    """Create a bucket (a unique name unless given) and return its name."""
    name = name or f"test-{uuid.uuid4().hex[:20]}"
    make_client(endpoint_url).create_bucket(Bucket=name)
    return name


@dataclass(frozen=True)
class S3Bucket:
    endpoint_url: str
    name: str


@contextlib.contextmanager
def fake_aws_env() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        for var, value in FAKE_AWS_ENV.items():
            mp.setenv(var, value)
        for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
            mp.delenv(var, raising=False)
        yield


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    with fake_aws_env():
        yield shared_s3_server()


@pytest.fixture
def s3_bucket(s3_server: str) -> S3Bucket:
    return S3Bucket(s3_server, make_bucket(s3_server))


@pytest.fixture
def s3_client(s3_server: str) -> Any:
    return make_client(s3_server)
