"""Redis Cluster: keys routed to the primary that owns their slot, batches grouped per node.

A single-slot command goes through redis-py's ``RedisCluster``, which follows ``MOVED``
and ``ASK`` itself. What it cannot do is done here, on the node's own connections:

- a write that ``WAIT`` must follow: both go on one connection to the key's primary, so
  ``WAIT`` counts that primary's replicas and covers that very write (:meth:`ClusterSource.route`);
- a batch over many slots: one command per slot (``MSET`` cannot span slots), all of a
  node's commands in one round trip on one connection, every node's sent before any
  reply is read, redirected slots sent again where they now live (:meth:`ClusterSource.per_node`).

``RedisCluster`` retries nothing (``Retry(NoBackoff(), 0)``, REDIS-NOTES): the backend's
retry policy is the only one. Its nodes' pools are ``BlockingConnectionPool`` s.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import redis
from redis import exceptions as rx
from redis.cluster import ClusterNode, LoadBalancingStrategy, RedisCluster
from redis.crc import key_slot

from storage_redis.config import RedisConfig

__all__ = ["ClusterClient", "ClusterSource", "Command"]

T = TypeVar("T")
Command = Sequence[Any]
# A command waiting to be sent: its index in the batch, the node to send it to, and
# whether ASKING must precede it there.
Pending = tuple[int, Any, bool]
# Redirections one operation follows before it gives up (and the retry policy takes over):
# a slot moves once per resharding step, so more than a few in a row means churn.
_REDIRECTS = 5
_TRYAGAIN_PAUSE = 0.02


def _slot(key: str | bytes) -> int:
    return int(key_slot(key.encode() if isinstance(key, str) else key))


class _AskingPool:
    """Connections to the node an ``ASK`` named, each sent ``ASKING`` before it is handed out.

    ``ASKING`` allows the very next command on that connection into a slot being imported.
    """

    def __init__(self, pool: Any) -> None:
        self._pool = pool

    def get_connection(self) -> Any:
        connection = self._pool.get_connection()
        try:
            connection.send_command("ASKING")
            connection.read_response()
        except BaseException:
            connection.disconnect()
            self._pool.release(connection)
            raise
        return connection

    def release(self, connection: Any) -> None:
        self._pool.release(connection)


class _NodeClient:
    """One node's pool, for a write and its ``WAIT`` on one connection (all ``Confirmation.send`` uses)."""

    def __init__(self, pool: Any) -> None:
        self.connection_pool = pool


class ClusterClient:
    """``RedisCluster`` behind the backend's ``Client`` protocol, for single-slot commands.

    ``MGET`` of keys in many slots becomes one ``MGET`` per slot, pipelined per node
    (redis-py's ``mget_nonatomic``); ``SCRIPT LOAD`` goes to every primary. The
    ``RedisCluster`` is built by the first command: building it asks a node for the slot
    map, and that must meet the retry policy like any other command.
    """

    def __init__(self, build: Callable[[], RedisCluster]) -> None:
        self._build = build
        self._cluster: Any = None
        self._lock = threading.Lock()

    @property
    def cluster(self) -> Any:
        """The ``RedisCluster`` (redis-py types none of its methods)."""
        cluster = self._cluster
        if cluster is None:
            with self._lock:
                if self._cluster is None:
                    self._cluster = self._build()
                cluster = self._cluster
        return cluster

    def close(self) -> None:
        with self._lock:
            cluster, self._cluster = self._cluster, None
        if cluster is not None:
            _disconnect_all(cluster)
            cluster.close()

    @property
    def connection_pool(self) -> Any:
        raise TypeError("a cluster has a pool per node: route a command by its key (ClusterSource.route)")

    def execute_command(self, *args: Any, **options: Any) -> Any:
        name = str(args[0]).upper()
        if name == "MGET":
            return self.cluster.mget_nonatomic(list(args[1:]))
        if name == "SCRIPT":
            replies = self.cluster.execute_command(*args, target_nodes=RedisCluster.PRIMARIES)
            return next(iter(replies.values())) if isinstance(replies, dict) else replies
        return self.cluster.execute_command(*args, **options)

    def pipeline(self, transaction: bool = False, shard_hint: Any = None) -> Any:
        return self.cluster.pipeline(transaction=transaction, shard_hint=shard_hint)


class ClusterSource:
    """The primaries of a Redis Cluster (and its replicas, with ``read_from_replicas``)."""

    def __init__(self, config: RedisConfig) -> None:
        self._config = config
        self._client: ClusterClient | None = None
        self._replica: ClusterClient | None = None
        hosts = ",".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in config.addresses)
        self._where = f"redis+cluster://{hosts}"

    # -- the ConnectionSource protocol ------------------------------------------------------

    def open(self) -> None:
        self._client = ClusterClient(self._build)
        self._replica = ClusterClient(lambda: self._build(replicas=True)) if self._config.read_from_replicas else None

    def _build(self, *, replicas: bool = False) -> RedisCluster:
        kwargs = self._config.node_kwargs()  # its retry=Retry(NoBackoff(), 0) is the cluster's too: no retries
        # RedisCluster hands these to plain Redis clients too, which know no pool timeout.
        pool = functools.partial(redis.BlockingConnectionPool, timeout=kwargs.pop("timeout"))
        node: Any = ClusterNode
        try:
            cluster = RedisCluster(
                startup_nodes=[node(host, port) for host, port in self._config.addresses],
                load_balancing_strategy=LoadBalancingStrategy.ROUND_ROBIN_REPLICAS if replicas else None,
                **kwargs,
            )
        except rx.RedisClusterException as exc:
            cause = exc.__cause__ or exc.__context__
            if isinstance(cause, rx.AuthenticationError | rx.AuthorizationError | rx.ResponseError):
                raise cause from None
            if isinstance(cause, rx.ConnectionError | rx.TimeoutError | OSError):
                # No startup node answered: a connection problem like any other, retried.
                raise rx.ConnectionError(f"no node of the cluster answered: {cause}") from exc
            raise
        _bounded_pools(cluster, pool)
        return cluster

    def primary(self) -> ClusterClient:
        if self._client is None:
            raise RuntimeError("the connection source is not open")
        return self._client

    def replica(self) -> ClusterClient:
        return self._replica if self._replica is not None else self.primary()

    def close(self) -> None:
        clients = [c for c in (self._client, self._replica) if c is not None]
        self._client = self._replica = None
        for client in clients:
            client.close()

    def describe(self) -> str:
        return self._where

    # -- routing ------------------------------------------------------------------------------

    def route(self, client: Any, key: str, operation: Callable[[Any], T]) -> T:
        """``operation(node_client)`` on the primary owning *key*, following MOVED and ASK."""
        cluster = client.cluster
        target: Any = self._node_client(cluster, cluster.get_node_from_key(key))
        last: Exception | None = None
        for _ in range(_REDIRECTS):
            try:
                return operation(target)
            except rx.AskError as exc:  # MovedError too: its subclass
                last = exc
                target = self._redirected(cluster, exc)
            except rx.TryAgainError as exc:
                last = exc
                time.sleep(_TRYAGAIN_PAUSE)
                target = self._node_client(cluster, cluster.get_node_from_key(key))
        raise rx.TryAgainError(f"the slot of the key kept moving between nodes: {last}") from last

    def _redirected(self, cluster: Any, exc: rx.AskError) -> Any:
        if isinstance(exc, rx.MovedError):
            cluster.nodes_manager.move_slot(exc)
            return self._node_client(cluster, cluster.nodes_manager.get_node_from_slot(exc.slot_id))
        node = self._node_at(cluster, exc.host, exc.port)
        return _NodeClient(_AskingPool(self._pool_of(cluster, node)))

    @staticmethod
    def _node_at(cluster: Any, host: str, port: int) -> Any:
        node = cluster.get_node(host=host, port=port)
        if node is None:  # a node the slot map has not met yet
            cluster.nodes_manager.initialize()
            node = cluster.get_node(host=host, port=port)
            if node is None:
                raise rx.TryAgainError(f"the cluster redirected to {host}:{port}, which it does not list")
        return node

    @staticmethod
    def _pool_of(cluster: Any, node: ClusterNode) -> Any:
        # A node met after a failover may have no client yet: the cluster makes one.
        return cluster.get_redis_connection(node).connection_pool

    def _node_client(self, cluster: Any, node: ClusterNode) -> _NodeClient:
        return _NodeClient(self._pool_of(cluster, node))

    def primaries(self, client: Any, prefix: str = "") -> list[Any]:
        """A client for each primary whose keys may start with *prefix*.

        A prefix that opens with a hash tag (``{fleet-a}...``) lives in one slot: one node.
        """
        cluster = client.cluster
        if prefix.startswith("{") and "}" in prefix[2:]:
            return [cluster.get_redis_connection(cluster.get_node_from_key(prefix))]
        return [cluster.get_redis_connection(node) for node in cluster.get_primaries()]

    def per_node(
        self,
        client: Any,
        groups: Sequence[tuple[str, Command]],
        wait: Command | None,
        *,
        on_noscript: Callable[[Any], None] | None = None,
    ) -> tuple[list[Any], list[Any]]:
        """Run each ``(key, command)`` on the primary owning *key*: one round trip per node.

        Every node's commands go out before any reply is read; a command met with MOVED or
        ASK goes again where the slot now is. With *wait*, each node's batch ends with it,
        on the same connection. Returns the replies in order, and each ``WAIT`` reply (or
        the error in its place) from a node where a command was applied.
        """
        cluster = client.cluster
        replies: list[Any] = [None] * len(groups)
        acks: list[Any] = []
        pending: list[Pending] = [(i, cluster.get_node_from_key(key), False) for i, (key, _) in enumerate(groups)]
        last: Exception | None = None
        for _ in range(_REDIRECTS):
            if not pending:
                return replies, acks
            retry: list[Pending] = []
            for node, batch, result, confirmed in self._send_batches(cluster, pending, groups, wait):
                for (i, _, _), reply in zip(batch, result, strict=True):
                    if not isinstance(reply, Exception):
                        replies[i] = reply
                        continue
                    last = reply
                    retry.append((i, *self._next_target(cluster, node, reply, on_noscript)))
                if confirmed is not None:
                    acks.append(confirmed)
            if isinstance(last, rx.TryAgainError):
                time.sleep(_TRYAGAIN_PAUSE)
            pending = retry
        if not pending:
            return replies, acks
        raise rx.TryAgainError(f"slots kept moving between nodes during a batch: {last}") from last

    def _next_target(
        self, cluster: Any, node: Any, reply: Exception, on_noscript: Callable[[Any], None] | None
    ) -> tuple[Any, bool]:
        """Where a command met with *reply* goes next, and whether ``ASKING`` precedes it; else raise."""
        if isinstance(reply, rx.MovedError):
            cluster.nodes_manager.move_slot(reply)
            return cluster.nodes_manager.get_node_from_slot(reply.slot_id), False
        if isinstance(reply, rx.AskError):
            return self._node_at(cluster, reply.host, reply.port), True
        if isinstance(reply, rx.NoScriptError) and on_noscript is not None:
            on_noscript(cluster.get_redis_connection(node))
            return node, False
        if isinstance(reply, rx.TryAgainError):
            return node, False
        raise reply

    def _send_batches(
        self, cluster: Any, pending: list[Pending], groups: Sequence[tuple[str, Command]], wait: Command | None
    ) -> list[tuple[Any, list[Pending], list[Any], Any]]:
        """Send each node its batch, then read every node's replies (so nodes work in parallel)."""
        by_node: dict[str, list[Pending]] = {}
        for entry in pending:
            by_node.setdefault(entry[1].name, []).append(entry)
        sent: list[tuple[Any, Any, list[Pending]]] = []
        try:
            for batch in by_node.values():
                pool = self._pool_of(cluster, batch[0][1])
                connection = pool.get_connection()
                sent.append((pool, connection, batch))
                commands: list[Command] = []
                for i, _, asking in batch:
                    commands.extend([("ASKING",), groups[i][1]] if asking else [groups[i][1]])
                if wait is not None:
                    commands.append(wait)
                connection.send_packed_command(connection.pack_commands(commands))
            return [(batch[0][1], batch, *_read_batch(connection, batch, wait)) for _, connection, batch in sent]
        except BaseException:
            for _, connection, _ in sent:
                connection.disconnect()  # a reply may be half read: these sockets must not be reused
            raise
        finally:
            for pool, connection, _ in sent:
                pool.release(connection)


def _read_batch(connection: Any, batch: list[Pending], wait: Command | None) -> tuple[list[Any], Any]:
    """The replies to one node's batch, and its WAIT's reply where something was written before it."""
    result = []
    for _, _, asking in batch:
        if asking:
            _reply(connection)
        result.append(_reply(connection))
    if wait is None:
        return result, None
    confirmed = _reply(connection)
    if all(isinstance(r, Exception) for r in result):
        return result, None  # nothing was written there: its WAIT proves nothing
    return result, confirmed


def _bounded_pools(cluster: Any, pool_class: Callable[..., Any]) -> None:
    """Give every node a blocking pool of *pool_class* (the one the backend promises).

    redis-py uses ``connection_pool_class`` only for a cluster built from a URL, and then
    hands its startup nodes pools nobody closes; so the cluster is built plainly, and its
    nodes' clients are rebuilt here, in the mode a URL would have set.
    """
    manager = cluster.nodes_manager
    manager.from_url = True
    manager.connection_pool_class = pool_class
    nodes = list(manager.nodes_cache.values())
    for node in nodes:
        old, node.redis_connection = node.redis_connection, None
        if old is not None:
            old.close()  # a plain client owns its pool: this disconnects it
    manager.create_redis_connections(nodes)


def _disconnect_all(cluster: Any) -> None:
    """Close every node's pool: a blocking pool given to a client is not closed with it."""
    manager = cluster.nodes_manager
    for node in [*manager.nodes_cache.values(), *manager.startup_nodes.values()]:
        if node.redis_connection is not None:
            node.redis_connection.connection_pool.disconnect()


def _reply(connection: Any) -> Any:
    """The next reply, or the error the server sent in its place (the connection stays in step)."""
    try:
        return connection.read_response()
    except rx.ResponseError as exc:
        return exc


def slots_of(keys: Iterable[str]) -> dict[int, list[str]]:
    """*keys* grouped by their cluster slot, in order."""
    grouped: dict[int, list[str]] = {}
    for key in keys:
        grouped.setdefault(_slot(key), []).append(key)
    return grouped
