"""Where the backend's connections come from: the one seam between it and the deployment.

``RedisStorage`` asks a :class:`ConnectionSource` for its clients and never builds a pool
itself. A standalone server (``redis://``, ``rediss://``, ``unix://``) is
:class:`Standalone`; ``redis+sentinel://`` is :class:`~storage_redis.sentinel.SentinelSource`,
``redis+cluster://`` :class:`~storage_redis.cluster.ClusterSource`, chosen by
:func:`connection_source`. A cluster has a primary per slot, so the source also routes: a
write that ``WAIT`` must follow runs on the connection of the key's primary (``route``),
and a listing visits every primary (``primaries``). One server is its own route.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar, cast

import redis
from redis.connection import UnixDomainSocketConnection

from storage_redis.cluster import ClusterSource
from storage_redis.config import CLUSTER, SENTINEL, RedisConfig
from storage_redis.sentinel import SentinelSource

__all__ = ["Client", "Connection", "ConnectionSource", "Pipeline", "Pool", "Standalone", "connection_source"]

T = TypeVar("T")


class Pipeline(Protocol):
    """The part of a redis-py pipeline the backend uses."""

    def execute_command(self, *args: Any) -> Any: ...
    def execute(self, raise_on_error: bool = ...) -> list[Any]: ...
    def __enter__(self) -> Self: ...
    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


class Connection(Protocol):
    """One connection taken from the pool: commands, then their replies, on the same socket."""

    def send_command(self, *args: Any) -> None: ...
    def pack_commands(self, commands: Iterable[Sequence[Any]]) -> list[bytes]: ...
    def send_packed_command(self, command: list[bytes]) -> None: ...
    def read_response(self) -> Any: ...
    def disconnect(self) -> None: ...


class Pool(Protocol):
    """The part of a redis-py connection pool the backend uses to hold one connection."""

    def get_connection(self) -> Connection: ...
    def release(self, connection: Connection) -> None: ...


class Client(Protocol):
    """The part of a redis-py client the backend uses: commands, non-transactional pipelines,
    and its pool, for a write that ``WAIT`` must follow on the same connection.

    ``redis.Redis`` has it; a Sentinel client has it too.
    """

    connection_pool: Pool

    def execute_command(self, *args: Any, **options: Any) -> Any: ...
    def pipeline(self, transaction: bool = ..., shard_hint: Any = ...) -> Pipeline: ...


class ConnectionSource(Protocol):
    """Gives the backend its clients; opened by ``initialize()``, closed by ``close()``."""

    def open(self) -> None:
        """Build the pools (connections themselves are made on first use)."""

    def primary(self) -> Client:
        """A client whose commands go to the primary: every write and every STRONG read."""

    def replica(self) -> Client:
        """For EVENTUAL reads: a healthy replica with ``read_from_replicas``, else the primary."""

    def route(self, client: Client, key: str, operation: Callable[[Client], T]) -> T:
        """``operation(c)`` with ``c`` on the primary that owns *key*, following redirections.

        *client* is ``primary()`` (or what the backend holds of it).
        """

    def primaries(self, client: Client, prefix: str = "") -> list[Client]:
        """A client on each primary that may hold keys starting with *prefix*."""

    def close(self) -> None:
        """Disconnect every pooled connection. Idempotent."""

    def describe(self) -> str:
        """Where the data lives, for ``repr`` and messages: never a secret."""


class Standalone:
    """One server, through one ``BlockingConnectionPool``."""

    def __init__(self, config: RedisConfig) -> None:
        self._config = config
        self._pool: redis.BlockingConnectionPool | None = None
        self._client: Client | None = None
        self._where = _where(config)

    def open(self) -> None:
        kwargs = self._config.connection_kwargs()
        self._pool = redis.BlockingConnectionPool(**kwargs)  # type: ignore[no-untyped-call]
        self._client = cast(Client, redis.Redis(connection_pool=self._pool))

    def primary(self) -> Client:
        if self._client is None:
            raise RuntimeError("the connection source is not open")
        return self._client

    def replica(self) -> Client:
        return self.primary()

    def route(self, client: Client, key: str, operation: Callable[[Client], T]) -> T:
        return operation(client)

    def primaries(self, client: Client, prefix: str = "") -> list[Client]:
        return [client]

    def close(self) -> None:
        # Only the pool holds connections: Redis.close() on a client given a pool of its own
        # releases a single-connection client's connection and nothing else.
        pool = self._pool
        self._client = self._pool = None
        if pool is not None:
            pool.disconnect()

    def describe(self) -> str:
        return self._where


def _where(config: RedisConfig) -> str:
    options: dict[str, Any] = config.connection_kwargs()
    db = options.get("db", 0)
    if options.get("connection_class") is UnixDomainSocketConnection:
        return f"unix://{options.get('path', '')}?db={db}"
    host = options.get("host", "localhost")
    if ":" in host:  # an IPv6 address
        host = f"[{host}]"
    return f"{config.scheme}://{host}:{options.get('port', 6379)}/{db}"


def connection_source(config: RedisConfig) -> ConnectionSource:
    """The source for *config*'s deployment: a single server, Sentinel or Cluster."""
    if config.scheme == SENTINEL:
        return cast(ConnectionSource, SentinelSource(config))
    if config.scheme == CLUSTER:
        return cast(ConnectionSource, ClusterSource(config))
    return Standalone(config)
