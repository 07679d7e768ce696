"""One contract, every Store: LocalStore (a temp dir), MemoryStore, S3Store on a moto server.

Also: no lost update under 8 processes x 50 compare-and-swap increments (LocalStore and S3),
backend-unavailable mapping, the ``open_store`` factory, and S3 specifics (conditional writes
really enforced by the server, SSE-KMS, prefix isolation).
"""

from __future__ import annotations

import multiprocessing
import os
import random
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from controller.adapters import (
    AlreadyExists,
    LocalStore,
    MemoryStore,
    Store,
    Versioned,
    open_store,
)
from controller.adapters.s3 import S3Store
from controller.errors import BackendUnavailable, Conflict, InvalidInput

try:  # `tests` is a package when the rootdir is on sys.path (pytest `pythonpath = ["."]`)
    from tests.fakes.s3 import S3Bucket, make_bucket, make_client, s3_bucket, s3_server
except ModuleNotFoundError:  # rootdir-less layout: pytest puts tests/ itself on sys.path
    from fakes.s3 import S3Bucket, make_bucket, make_client, s3_bucket, s3_server

__all__ = ["s3_bucket", "s3_server"]  # fixtures, imported so this module runs without a conftest

BACKENDS = ["local", "memory", "s3"]


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "local":
        return LocalStore(tmp_path / "store")
    if request.param == "memory":
        return MemoryStore()
    bucket: S3Bucket = request.getfixturevalue("s3_bucket")
    return S3Store(bucket.name, "pre/fix", make_client(bucket.endpoint_url))


# -- create-only ----------------------------------------------------------------------------


def test_get_missing_is_none(store: Store) -> None:
    assert store.get("state/wf.json") is None


def test_create_then_get(store: Store) -> None:
    store.create("state/wf.json", b'{"a":1}')
    got = store.get("state/wf.json")
    assert isinstance(got, Versioned)
    assert got.data == b'{"a":1}'
    assert isinstance(got.version, str) and got.version


def test_create_is_create_only(store: Store) -> None:
    store.create("k", b"first")
    with pytest.raises(AlreadyExists) as info:
        store.create("k", b"second")
    assert isinstance(info.value, Conflict)
    assert info.value.exit_code == 4
    assert store.get("k").data == b"first"  # type: ignore[union-attr]


def test_create_even_identical_bytes_conflicts(store: Store) -> None:
    store.create("k", b"same")
    with pytest.raises(AlreadyExists):
        store.create("k", b"same")


def test_concurrent_creates_have_one_winner(store: Store) -> None:
    winners: list[int] = []
    losers: list[int] = []
    start = threading.Barrier(8)

    def attempt(i: int) -> None:
        start.wait()
        try:
            store.create("race", f"writer-{i}".encode())
            winners.append(i)
        except AlreadyExists:
            losers.append(i)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1 and len(losers) == 7
    assert store.get("race").data == f"writer-{winners[0]}".encode()  # type: ignore[union-attr]


def test_binary_empty_and_large_objects_round_trip(store: Store) -> None:
    blobs = {"empty": b"", "binary": bytes(range(256)) * 4, "large": os.urandom(1 << 20)}
    for key, data in blobs.items():
        store.create(f"blobs/{key}", data)
    for key, data in blobs.items():
        assert store.get(f"blobs/{key}").data == data  # type: ignore[union-attr]


# -- compare-and-swap -----------------------------------------------------------------------


def test_replace_expected_none_creates(store: Store) -> None:
    version = store.replace("k", b"v1", expected=None)
    got = store.get("k")
    assert got == Versioned(b"v1", version)


def test_replace_expected_none_conflicts_when_present(store: Store) -> None:
    store.create("k", b"v1")
    with pytest.raises(Conflict):
        store.replace("k", b"v2", expected=None)
    assert store.get("k").data == b"v1"  # type: ignore[union-attr]


def test_replace_with_current_version(store: Store) -> None:
    store.create("k", b"v1")
    v1 = store.get("k").version  # type: ignore[union-attr]
    v2 = store.replace("k", b"v2", expected=v1)
    assert v2 != v1
    assert store.get("k") == Versioned(b"v2", v2)
    v3 = store.replace("k", b"v3", expected=v2)
    assert store.get("k") == Versioned(b"v3", v3)


def test_replace_with_stale_version_conflicts(store: Store) -> None:
    store.create("k", b"v1")
    stale = store.get("k").version  # type: ignore[union-attr]
    store.replace("k", b"v2", expected=stale)
    with pytest.raises(Conflict) as info:
        store.replace("k", b"lost update", expected=stale)
    assert info.value.exit_code == 4
    assert store.get("k").data == b"v2"  # type: ignore[union-attr]


def test_replace_expected_version_on_missing_key_conflicts(store: Store) -> None:
    store.create("other", b"x")
    version = store.get("other").version  # type: ignore[union-attr]
    with pytest.raises(Conflict):
        store.replace("missing", b"x", expected=version)
    assert store.get("missing") is None


def test_replace_with_garbage_version_conflicts(store: Store) -> None:
    store.create("k", b"v1")
    with pytest.raises(Conflict):
        store.replace("k", b"v2", expected="not-a-version")
    assert store.get("k").data == b"v1"  # type: ignore[union-attr]


def test_replace_after_create_uses_returned_versions_only(store: Store) -> None:
    # The version returned by replace is immediately usable as the next expected.
    version = store.replace("chain", b"0", expected=None)
    for i in range(1, 6):
        version = store.replace("chain", str(i).encode(), expected=version)
    assert store.get("chain") == Versioned(b"5", version)


# -- list -----------------------------------------------------------------------------------

KEYS = ["a/b/c", "a/b/d", "a/bc", "a/b/c2", "b", "audit/wf/000000000001.json", "z/y/x/w.json"]


def test_list_sorted_with_string_prefix_semantics(store: Store) -> None:
    for key in reversed(KEYS):
        store.create(key, key.encode())
    assert store.list("") == sorted(KEYS)
    assert store.list("a/") == ["a/b/c", "a/b/c2", "a/b/d", "a/bc"]
    assert store.list("a/b") == ["a/b/c", "a/b/c2", "a/b/d", "a/bc"]
    assert store.list("a/b/") == ["a/b/c", "a/b/c2", "a/b/d"]
    assert store.list("a/b/c") == ["a/b/c", "a/b/c2"]
    assert store.list("audit/wf/") == ["audit/wf/000000000001.json"]
    assert store.list("z/y/x/w.json") == ["z/y/x/w.json"]
    assert store.list("nothing/") == []
    assert store.list("q") == []


def test_list_empty_store(store: Store) -> None:
    assert store.list("") == []


# -- keys -----------------------------------------------------------------------------------

BAD_KEYS = [
    "",
    "/abs",
    "/",
    "a//b",
    "a/",
    "..",
    "../x",
    "a/../b",
    "a/..",
    ".",
    "./a",
    "a/./b",
    "a\\b",
    "..\\x",
    "a\x00b",
    "a\nb",
    ".hidden",
    ".lock",
    ".tmp/x",
    "a/.tmp",
    "x" * 1025,
]


@pytest.mark.parametrize("key", BAD_KEYS, ids=repr)
def test_bad_keys_are_invalid_input_everywhere(store: Store, key: str) -> None:
    for op in (
        lambda: store.get(key),
        lambda: store.create(key, b"x"),
        lambda: store.replace(key, b"x", expected=None),
        lambda: store.replace(key, b"x", expected="v"),
    ):
        with pytest.raises(InvalidInput) as info:
            op()
        assert info.value.exit_code == 2
    assert store.list("") == []


@pytest.mark.parametrize("prefix", ["/a", "../", "a/../", "a//", "a\\", ".tmp/", "a\x00"], ids=repr)
def test_bad_prefixes_are_invalid_input(store: Store, prefix: str) -> None:
    with pytest.raises(InvalidInput):
        store.list(prefix)


def test_unusual_but_valid_keys(store: Store) -> None:
    keys = ["with space/ü-ñ.json", "a-b_c.d", "a..b", "deep/" * 20 + "leaf", "x" * 200]
    for key in keys:
        store.create(key, key.encode())
        assert store.get(key).data == key.encode()  # type: ignore[union-attr]
    assert store.list("") == sorted(keys)


# -- describe / protocol --------------------------------------------------------------------


def test_describe_names_the_backend(store: Store, tmp_path: Path) -> None:
    text = store.describe()
    if isinstance(store, LocalStore):
        assert text == f"local:{(tmp_path / 'store').resolve()}"
    elif isinstance(store, MemoryStore):
        assert text.startswith("memory://")
    else:
        assert isinstance(store, S3Store)
        assert text == f"s3://{store.bucket}/pre/fix"


def test_every_backend_satisfies_the_protocol(store: Store) -> None:
    assert isinstance(store, Store)


# -- no lost update across processes --------------------------------------------------------

WORKERS = 8
INCREMENTS = 50


def _open_for_worker(spec: tuple[str, ...]) -> Store:
    if spec[0] == "local":
        return LocalStore(Path(spec[1]))
    _, endpoint, bucket = spec
    return S3Store(bucket, "cas", make_client(endpoint))


def _increment_worker(spec: tuple[str, ...], start: Any, results: Any) -> None:
    """Run in a spawned process: INCREMENTS read-modify-CAS loops, retrying on Conflict."""
    store = _open_for_worker(spec)
    rng = random.Random(os.getpid())
    conflicts = 0
    start.wait()
    for _ in range(INCREMENTS):
        while True:
            current = store.get("counter")
            assert current is not None
            try:
                store.replace("counter", b"%d" % (int(current.data) + 1), expected=current.version)
                break
            except Conflict:
                conflicts += 1
                time.sleep(rng.random() * 0.002)
    results.put(conflicts)


@pytest.mark.parametrize("backend", ["local", "s3"])
def test_no_lost_update_8_processes_x_50_cas(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if backend == "local":
        spec: tuple[str, ...] = ("local", str(tmp_path / "store"))
    else:
        bucket: S3Bucket = request.getfixturevalue("s3_bucket")
        spec = ("s3", bucket.endpoint_url, bucket.name)
    store = _open_for_worker(spec)
    store.create("counter", b"0")

    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_increment_worker, args=(spec, start, results)) for _ in range(WORKERS)
    ]
    for p in procs:
        p.start()
    start.set()
    conflicts = [results.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=30)

    assert [p.exitcode for p in procs] == [0] * WORKERS
    assert store.get("counter").data == b"%d" % (WORKERS * INCREMENTS)  # type: ignore[union-attr]
    assert sum(conflicts) > 0, "the workers never contended; the test proves nothing"


# -- backend unavailable --------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed on exit: connections are refused


def test_s3_connection_refused_is_backend_unavailable() -> None:
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{_closed_port()}",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(connect_timeout=1, retries={"max_attempts": 1}),
    )
    store = S3Store("bucket-x", "p", client)
    for op in (
        lambda: store.get("k"),
        lambda: store.create("k", b"x"),
        lambda: store.replace("k", b"x", expected='"etag"'),
        lambda: store.list(""),
    ):
        with pytest.raises(BackendUnavailable) as info:
            op()
        assert info.value.exit_code == 5
        assert "s3://bucket-x/p" in str(info.value)


def test_s3_missing_bucket_is_backend_unavailable(s3_server: str) -> None:
    store = S3Store("no-such-bucket-here", "", make_client(s3_server))
    with pytest.raises(BackendUnavailable):
        store.get("k")
    with pytest.raises(BackendUnavailable):
        store.create("k", b"x")
    with pytest.raises(BackendUnavailable):
        store.list("")


def test_local_permission_denied_is_backend_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalStore(tmp_path / "store")
    store.create("k", b"x")

    def denied(*args: Any, **kwargs: Any) -> Any:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "open", denied)
    for op in (
        lambda: store.create("j", b"x"),
        lambda: store.replace("k", b"y", expected=None),
        lambda: LocalStore(tmp_path / "store"),
    ):
        with pytest.raises(BackendUnavailable) as info:
            op()
        assert info.value.exit_code == 5
    monkeypatch.undo()
    assert store.get("k").data == b"x"  # type: ignore[union-attr]
    assert store.list("") == ["k"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_local_read_only_directory_is_backend_unavailable(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    store.create("k", b"x")
    os.chmod(tmp_path / "store", 0o500)
    try:
        with pytest.raises(BackendUnavailable):
            store.create("j", b"x")
        with pytest.raises(BackendUnavailable):
            LocalStore(tmp_path / "store" / "sub")
    finally:
        os.chmod(tmp_path / "store", 0o700)


def test_local_root_that_is_a_file_is_backend_unavailable(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(BackendUnavailable):
        LocalStore(tmp_path / "file")


# -- S3 specifics ---------------------------------------------------------------------------


def test_moto_enforces_conditional_puts(s3_bucket: S3Bucket) -> None:
    """The S3 contract rests on these; prove the server (not our code) refuses them."""
    from botocore.exceptions import ClientError

    client = make_client(s3_bucket.endpoint_url)
    etag = client.put_object(Bucket=s3_bucket.name, Key="k", Body=b"1", IfNoneMatch="*")["ETag"]

    def status(**kwargs: Any) -> tuple[int, str]:
        try:
            client.put_object(Bucket=s3_bucket.name, Key="k", Body=b"2", **kwargs)
        except ClientError as exc:
            return exc.response["ResponseMetadata"]["HTTPStatusCode"], exc.response["Error"]["Code"]
        return 200, ""

    assert status(IfNoneMatch="*") == (412, "PreconditionFailed")
    assert status(IfMatch='"0123456789abcdef0123456789abcdef"') == (412, "PreconditionFailed")
    assert client.get_object(Bucket=s3_bucket.name, Key="k")["Body"].read() == b"1"
    assert status(IfMatch=etag) == (200, "")
    assert client.get_object(Bucket=s3_bucket.name, Key="k")["Body"].read() == b"2"


def test_s3_sse_kms_when_key_given(s3_bucket: S3Bucket) -> None:
    client = make_client(s3_bucket.endpoint_url)
    store = S3Store(s3_bucket.name, "enc", client, kms_key_id="alias/rollout-audit")
    store.create("a", b"x")
    version = store.replace("b", b"y", expected=None)
    store.replace("b", b"z", expected=version)
    for key in ("enc/a", "enc/b"):
        head = client.head_object(Bucket=s3_bucket.name, Key=key)
        assert head["ServerSideEncryption"] == "aws:kms"
        assert head["SSEKMSKeyId"].endswith("alias/rollout-audit")


def test_s3_prefixes_isolate_stores(s3_bucket: S3Bucket) -> None:
    client = make_client(s3_bucket.endpoint_url)
    one = S3Store(s3_bucket.name, "one", client)
    two = S3Store(s3_bucket.name, "/two/", client)
    root = S3Store(s3_bucket.name, "", client)
    one.create("k", b"1")
    two.create("k", b"2")
    client.put_object(Bucket=s3_bucket.name, Key="one//unsafe", Body=b"foreign")
    assert one.list("") == ["k"]
    assert two.get("k").data == b"2"  # type: ignore[union-attr]
    assert two.describe() == f"s3://{s3_bucket.name}/two"
    assert root.list("") == ["one/k", "two/k"]  # foreign unsafe names are not keys


# -- open_store -----------------------------------------------------------------------------


def test_open_store_local_forms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    plain = open_store(".rollout")
    assert isinstance(plain, LocalStore) and plain.root == tmp_path / ".rollout"
    absolute = open_store(str(tmp_path / "abs"))
    assert isinstance(absolute, LocalStore) and absolute.root == tmp_path / "abs"
    url = open_store(f"file://{tmp_path}/url%20dir")
    assert isinstance(url, LocalStore) and url.root == tmp_path / "url dir"
    assert isinstance(open_store(f"file://localhost{tmp_path}/lh"), LocalStore)


def test_open_store_memory() -> None:
    store = open_store("memory://")
    assert isinstance(store, MemoryStore) and store.describe() == "memory://"
    assert open_store("memory://dry-run").describe() == "memory://dry-run"


def test_open_store_s3_uses_endpoint_from_environment(
    s3_bucket: S3Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_bucket.endpoint_url)
    store = open_store(f"s3://{s3_bucket.name}/team/rollout")
    assert isinstance(store, S3Store)
    assert store.describe() == f"s3://{s3_bucket.name}/team/rollout"
    store.create("k", b"v")
    raw = make_client(s3_bucket.endpoint_url).get_object(
        Bucket=s3_bucket.name, Key="team/rollout/k"
    )
    assert raw["Body"].read() == b"v"


@pytest.mark.parametrize(
    "url",
    ["", "  ", "ftp://host/x", "file://otherhost/x", "file:relative/x", "s3://", "s3:///p",
     "s3://bucket/p?x=1", "s3://bucket/../p"],
)
def test_open_store_rejects_bad_urls(url: str) -> None:
    with pytest.raises(InvalidInput):
        open_store(url)


# -- backend-specific behaviour that is part of their docs ----------------------------------


def test_local_key_that_is_a_directory_of_keys_is_refused(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    store.create("a/b", b"x")
    with pytest.raises(InvalidInput):
        store.create("a", b"y")
    with pytest.raises(InvalidInput):
        store.create("a/b/c", b"y")
    assert store.get("a") is None
    assert store.list("") == ["a/b"]


def test_memory_copy_of_is_a_detached_snapshot() -> None:
    real = MemoryStore({"state/wf.json": b"1", "audit/wf/000000000001.json": b"r"})
    dry = MemoryStore.copy_of(real, "state/")
    assert dry.list("") == ["state/wf.json"]
    dry.replace("state/wf.json", b"2", expected=dry.get("state/wf.json").version)  # type: ignore[union-attr]
    assert real.get("state/wf.json").data == b"1"  # type: ignore[union-attr]


def test_s3_buckets_fixture_helpers_are_independent(s3_server: str) -> None:
    a, b = make_bucket(s3_server), make_bucket(s3_server)
    assert a != b


# -- S3 error mapping for answers moto never gives ------------------------------------------


def _stubbed_store() -> tuple[S3Store, Any]:
    import boto3
    from botocore.stub import Stubber

    client = boto3.client(
        "s3", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    return S3Store("bucket-x", "p", client), Stubber(client)


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("ConditionalRequestConflict", 409, Conflict),
        ("PreconditionFailed", 412, Conflict),
        ("SlowDown", 503, BackendUnavailable),
        ("InternalError", 500, BackendUnavailable),
        ("AccessDenied", 403, BackendUnavailable),
        ("KMS.NotFoundException", 400, BackendUnavailable),
    ],
)
def test_s3_error_codes_map_to_the_hierarchy(code: str, status: int, expected: type) -> None:
    store, stubber = _stubbed_store()
    stubber.add_client_error("put_object", service_error_code=code, http_status_code=status)
    stubber.add_client_error("put_object", service_error_code=code, http_status_code=status)
    with stubber:
        with pytest.raises(expected):
            store.replace("k", b"x", expected='"etag"')
        with pytest.raises(AlreadyExists if expected is Conflict else expected):
            store.create("k", b"x")


def test_s3_unknown_client_error_is_a_bug_not_a_verdict() -> None:
    from botocore.exceptions import ClientError

    store, stubber = _stubbed_store()
    stubber.add_client_error("put_object", service_error_code="InvalidArgument", http_status_code=400)
    with stubber, pytest.raises(ClientError):
        store.create("k", b"x")


def test_s3_connect_timeout_is_backend_unavailable() -> None:
    from botocore.exceptions import ConnectTimeoutError, ReadTimeoutError

    class TimingOut:
        def __init__(self, exc: Exception) -> None:
            self.exc = exc

        def get_object(self, **kwargs: Any) -> Any:
            raise self.exc

        put_object = get_object

    for exc in (
        ConnectTimeoutError(endpoint_url="https://s3.example"),
        ReadTimeoutError(endpoint_url="https://s3.example"),
    ):
        store = S3Store("bucket-x", "p", TimingOut(exc))
        with pytest.raises(BackendUnavailable):
            store.get("k")
        with pytest.raises(BackendUnavailable):
            store.create("k", b"x")
