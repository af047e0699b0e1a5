"""Sentinel and Cluster deployments of real redis-server processes on loopback, for the tests.

``SentinelTopology``: a primary, one replica and three sentinels that know each other
and the replica from their config files (``sentinel myid``, ``known-replica``,
``known-sentinel``), so they agree within a second instead of discovering each other over
~10 s. ``ClusterTopology``: three primaries with one replica each, created with
``redis-cli --cluster create``. Both start every process on a free loopback port and stop
each by the PID they started, also at interpreter exit (``redis_servers.stop_all``).
"""

from __future__ import annotations

import contextlib
import random
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

import redis
from redis.crc import key_slot
from redis_servers import RedisServer, free_port

REDIS_CLI = shutil.which("redis-cli")
SERVICE = "mymaster"
# Sentinels call the primary down after this long without a reply; the failover follows.
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 5000
CLUSTER_NODE_TIMEOUT_MS = 2000


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll *condition* until it holds; RuntimeError naming *what* after *timeout* seconds."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(redis.RedisError, OSError):
            if condition():
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout} s waiting until {what}")
        time.sleep(0.02)


def listed_replicas(replication: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``slaveN`` entries of a primary's ``INFO replication``, as redis-py parses them."""
    return [v for k, v in replication.items() if k.startswith("slave") and isinstance(v, dict)]


def streams_to_replicas(raw: redis.Redis, replicas: int, probe: str) -> bool:
    """Whether a write on the primary behind *raw* reaches its *replicas*.

    Redis 7.0 marks a replica "online" after a diskless sync but starts streaming to it
    only at its first ``REPLCONF ACK`` (up to a second later): until then WAIT counts none.
    A write and delete of *probe* (a key of this primary's, so nothing is left) and a WAIT
    prove the stream flows.
    """
    if replicas == 0:
        return True
    raw.set(probe, 1)
    raw.delete(probe)
    acks = raw.execute_command("WAIT", replicas, 2000)  # type: ignore[no-untyped-call, unused-ignore]
    return int(acks) >= replicas


def free_cluster_port() -> int:
    """A free loopback port P with P + 10000 free too: a cluster node's bus listens there."""
    for _ in range(200):
        port = random.randint(20_000, 55_535)
        try:
            with socket.socket() as data, socket.socket() as bus:
                data.bind(("127.0.0.1", port))
                bus.bind(("127.0.0.1", port + 10_000))
        except OSError:
            continue
        return port
    raise RuntimeError("found no free pair of loopback ports for a cluster node")


class SentinelServer(RedisServer):
    """``redis-server <conf> --sentinel``: the config file comes first, and Sentinel rewrites it."""

    def __init__(self, workdir: Path, conf: str, *, port: int) -> None:
        super().__init__(workdir, port=port)
        self.conf = workdir / "sentinel.conf"
        self.conf.write_text(conf)

    def command(self) -> list[str]:
        assert self.binary is not None
        return [
            self.binary, str(self.conf), "--sentinel", "--port", str(self.port), "--bind", "127.0.0.1",
            "--daemonize", "no", "--dir", str(self.workdir), "--logfile", str(self.log),
        ]  # fmt: skip

    def start(self, timeout: float = 10.0, *, until: str = "+monitor master") -> Self:
        super().start(timeout, until=until)
        return self


class SentinelTopology:
    """A primary, a replica and three sentinels monitoring them as ``mymaster``.

    ``data_password`` protects the data nodes, ``sentinel_password`` the sentinels, so a
    test can show the two credentials are kept apart.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        sentinels: int = 3,
        data_password: str | None = None,
        sentinel_password: str | None = None,
    ) -> None:
        self.workdir = workdir
        self.data_password = data_password
        self.sentinel_password = sentinel_password
        auth = ("--requirepass", data_password, "--masterauth", data_password) if data_password else ()
        self._node_args = ("--repl-diskless-sync-delay", "0", *auth)
        self.primary = RedisServer(workdir / "node-a", *self._node_args)
        self.replica = RedisServer(
            workdir / "node-b", *self._node_args, "--replicaof", "127.0.0.1", str(self.primary.port)
        )
        self.nodes = [self.primary, self.replica]
        ids = [secrets.token_hex(20) for _ in range(sentinels)]
        ports = [free_port() for _ in range(sentinels)]
        self.sentinels = [
            SentinelServer(workdir / f"sentinel-{i}", self._sentinel_conf(i, ids, ports), port=port)
            for i, port in enumerate(ports)
        ]

    def _sentinel_conf(self, me: int, ids: list[str], ports: list[int]) -> str:
        lines = [
            f"sentinel myid {ids[me]}",
            f"sentinel monitor {SERVICE} 127.0.0.1 {self.primary.port} 2",
            f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}",
            f"sentinel failover-timeout {SERVICE} {FAILOVER_TIMEOUT_MS}",
            f"sentinel parallel-syncs {SERVICE} 1",
            f"sentinel known-replica {SERVICE} 127.0.0.1 {self.replica.port}",
        ]
        lines += [
            f"sentinel known-sentinel {SERVICE} 127.0.0.1 {port} {ids[i]}" for i, port in enumerate(ports) if i != me
        ]
        if self.data_password:
            lines.append(f"sentinel auth-pass {SERVICE} {self.data_password}")
        if self.sentinel_password:
            lines.append(f"requirepass {self.sentinel_password}")
            # Sentinels talk to each other with the same password.
            lines.append(f"sentinel sentinel-pass {self.sentinel_password}")
        return "\n".join(lines) + "\n"

    @property
    def addresses(self) -> str:
        return ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)

    @property
    def url(self) -> str:
        """``redis+sentinel://`` with the data nodes' password (if any) in the user info, as the
        backend reads it; the sentinels' password goes in ``sentinel_password``."""
        auth = f":{self.data_password}@" if self.data_password else ""
        return f"redis+sentinel://{auth}{self.addresses}/{SERVICE}"

    def start(self) -> Self:
        try:
            self.primary.start()
            self.replica.start()
            for sentinel in self.sentinels:
                sentinel.start()
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def sentinel_client(self, sentinel: RedisServer) -> redis.Redis:
        return redis.Redis(port=sentinel.port, password=self.sentinel_password, socket_timeout=2)

    def wait_ready(self, timeout: float = 20.0) -> None:
        """Until every sentinel names the same primary and sees a replica in sync and its peers."""

        def agreed() -> bool:
            primary = self.current_primary()
            with redis.Redis(port=primary.port, password=self.data_password, socket_timeout=3) as raw:
                # "online": past the initial sync (connected_slaves also counts a replica still loading).
                replicas = listed_replicas(raw.info("replication"))
                if not replicas or replicas[0].get("state") != "online":
                    return False
                if not streams_to_replicas(raw, len(replicas), "topology-ready-probe"):
                    return False
            for sentinel in self.sentinels:
                with self.sentinel_client(sentinel) as raw:
                    state = raw.sentinel_master(SERVICE)
                    replicas = raw.sentinel_slaves(SERVICE)
                if state["port"] != primary.port or state["is_sdown"] or state["is_odown"]:
                    return False
                if state["num-other-sentinels"] < len(self.sentinels) - 1:
                    return False
                healthy = [r for r in replicas if not (r["is_sdown"] or r["is_disconnected"])]
                if not healthy or any(r.get("master-link-status") != "ok" for r in healthy):
                    return False
            return True

        wait_until(agreed, timeout, "the sentinels agreed on a primary with a replica in sync")

    def current_primary(self) -> RedisServer:
        """The data node the sentinels currently name as primary."""
        for sentinel in self.sentinels:
            if sentinel.process is None:
                continue
            with contextlib.suppress(redis.RedisError), self.sentinel_client(sentinel) as raw:
                _, port = raw.sentinel_get_master_addr_by_name(SERVICE)
                return next(node for node in self.nodes if node.port == int(port))
        raise RuntimeError("no sentinel answered")

    def current_replica(self) -> RedisServer:
        primary = self.current_primary()
        return next(node for node in self.nodes if node is not primary)

    def wait_failover(self, old: RedisServer, timeout: float = 30.0) -> RedisServer:
        """Until the sentinels name a primary other than *old*; returns it."""
        wait_until(lambda: self.current_primary() is not old, timeout, "the sentinels promoted a replica")
        return self.current_primary()

    def rejoin(self, node: RedisServer) -> None:
        """Start a stopped data node again as a replica of the current primary, and wait until all agree.

        Started as a replica, not left to the sentinels to demote: they look at a returning
        node only every ~10 s.
        """
        primary = self.current_primary()
        node.args = (*self._node_args, "--replicaof", "127.0.0.1", str(primary.port))
        node.start()
        self.wait_ready()

    def stop(self) -> None:
        for server in (*self.sentinels, *self.nodes):
            server.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class ClusterTopology:
    """``primaries`` masters with ``replicas`` replicas each, all slots assigned."""

    def __init__(self, workdir: Path, *, primaries: int = 3, replicas: int = 1, password: str | None = None) -> None:
        self.workdir = workdir
        self.password = password
        self.replicas_per_primary = replicas
        auth = ("--requirepass", password, "--masterauth", password) if password else ()
        self.nodes: list[RedisServer] = []
        for i in range(primaries * (1 + replicas)):
            port = free_cluster_port()
            args = (
                "--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf",
                "--cluster-node-timeout", str(CLUSTER_NODE_TIMEOUT_MS), "--repl-diskless-sync-delay", "0", *auth,
            )  # fmt: skip
            self.nodes.append(RedisServer(workdir / f"node-{i}", *args, port=port))

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis+cluster://{auth}" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes[:3])

    def start(self) -> Self:
        if REDIS_CLI is None:
            raise RuntimeError("redis-cli is not on PATH: it creates the cluster")
        try:
            for node in self.nodes:
                node.start()
            auth = ["-a", self.password, "--no-auth-warning"] if self.password else []
            subprocess.run(
                [REDIS_CLI, *auth, "--cluster", "create", *(f"127.0.0.1:{n.port}" for n in self.nodes),
                 "--cluster-replicas", str(self.replicas_per_primary), "--cluster-yes"],
                check=True, capture_output=True, timeout=60,
            )  # fmt: skip
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def client(self, node: RedisServer) -> redis.Redis:
        return redis.Redis(port=node.port, password=self.password, socket_timeout=2)

    def info(self, node: RedisServer, section: str) -> dict[str, Any]:
        with self.client(node) as raw:
            found: dict[str, Any] = raw.info(section)
            return found

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Until every live node says the cluster is ok and every replica is in sync."""

        def ready() -> bool:
            primaries: list[tuple[RedisServer, int]] = []  # with how many replicas each lists
            for node in self.live():
                with self.client(node) as raw:
                    if raw.cluster("INFO")["cluster_state"] != "ok":
                        return False
                replication = self.info(node, "replication")
                if replication["role"] == "slave" and replication.get("master_link_status") != "up":
                    return False
                # A replica whose link is up may still be "wait_bgsave" on its primary's side,
                # where WAIT does not count it yet.
                replicas = listed_replicas(replication)
                if any(replica.get("state") != "online" for replica in replicas):
                    return False
                if replication["role"] == "master":
                    primaries.append((node, len(replicas)))
            for primary, count in primaries:
                with redis.Redis(port=primary.port, password=self.password, socket_timeout=3) as raw:
                    if not streams_to_replicas(raw, count, self._probe_key(raw, primary)):
                        return False
            return len(primaries) >= 3

        wait_until(ready, timeout, "the cluster was ok with every replica in sync")

    @staticmethod
    def _probe_key(raw: redis.Redis, primary: RedisServer) -> str:
        """A key in one of *primary*'s slots."""
        slots = raw.execute_command("CLUSTER", "SLOTS")  # type: ignore[no-untyped-call, unused-ignore]
        ranges = [(start, end) for start, end, owner, *_ in slots if int(owner[1]) == primary.port]
        for n in range(100_000):
            probe = f"topology-ready-probe-{n}"
            if any(start <= key_slot(probe.encode()) <= end for start, end in ranges):
                return probe
        raise RuntimeError(f"no key found in the slots of the primary on port {primary.port}")

    def live(self) -> list[RedisServer]:
        return [node for node in self.nodes if node.process is not None]

    def primaries(self) -> list[RedisServer]:
        return [n for n in self.live() if self.info(n, "replication")["role"] == "master"]

    def replicas_of(self, primary: RedisServer) -> list[RedisServer]:
        found = []
        for node in self.live():
            replication = self.info(node, "replication")
            if replication["role"] == "slave" and int(replication["master_port"]) == primary.port:
                found.append(node)
        return found

    def owner(self, key: str) -> RedisServer:
        """The primary that serves *key*'s slot."""
        with self.client(self.live()[0]) as raw:
            slot = raw.cluster("KEYSLOT", key)
            for start, end, primary, *_ in raw.execute_command("CLUSTER", "SLOTS"):
                if start <= slot <= end:
                    port = int(primary[1])
                    return next(n for n in self.nodes if n.port == port)
        raise RuntimeError(f"no node serves the slot of {key!r}")

    def node_id(self, node: RedisServer) -> str:
        with self.client(node) as raw:
            return str(raw.execute_command("CLUSTER", "MYID").decode())

    def slot(self, key: str) -> int:
        with self.client(self.live()[0]) as raw:
            return int(raw.cluster("KEYSLOT", key))

    def reshard(self, source: RedisServer, target: RedisServer, slots: int) -> subprocess.Popen[bytes]:
        """Start moving *slots* slots (and their keys) from *source* to *target*; returns the process."""
        assert REDIS_CLI is not None
        auth = ["-a", self.password, "--no-auth-warning"] if self.password else []
        return subprocess.Popen(
            [REDIS_CLI, *auth, "--cluster", "reshard", f"127.0.0.1:{source.port}",
             "--cluster-from", self.node_id(source), "--cluster-to", self.node_id(target),
             "--cluster-slots", str(slots), "--cluster-yes", "--cluster-pipeline", "10"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip

    def wait_promoted(self, replica: RedisServer, timeout: float = 30.0) -> None:
        """Until *replica* (of a primary that died) is a primary and the cluster is ok again."""

        def promoted() -> bool:
            if self.info(replica, "replication")["role"] != "master":
                return False
            with self.client(replica) as raw:
                return bool(raw.cluster("INFO")["cluster_state"] == "ok")

        wait_until(promoted, timeout, f"the replica on port {replica.port} took over its primary's slots")

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
