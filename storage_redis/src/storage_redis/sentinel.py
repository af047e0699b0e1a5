"""Redis Sentinel: a bounded pool on whichever node the sentinels name, following failovers.

redis-py has a Sentinel pool and a blocking pool, but no pool that is both; the class
below combines them (REDIS-NOTES). Its connections ask the sentinels for the primary's
address each time they connect, so once a connection to the old primary breaks (or gets
READONLY, which redis-py turns into a connection error), the next attempt of the
backend's retry policy reaches the new primary.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import redis
from redis import exceptions as rx
from redis.sentinel import MasterNotFoundError, Sentinel, SentinelConnectionPool

from storage_redis.config import RedisConfig

__all__ = ["BlockingSentinelConnectionPool", "HealthySentinel", "SentinelSource"]

T = TypeVar("T")


class BlockingSentinelConnectionPool(SentinelConnectionPool, redis.BlockingConnectionPool):
    """A ``SentinelConnectionPool`` with a bound: callers wait ``timeout`` for a free connection."""


class HealthySentinel(Sentinel):
    """Counts a replica as usable only when its link to the primary is up.

    redis-py drops only replicas the sentinels call down; a replica that lost its primary
    still answers, with data that grows older by the second.
    """

    def discover_master(self, service_name: str) -> tuple[str, int]:
        """The primary's address; a sentinel's refusal of our credentials raised as such.

        redis-py folds every sentinel's error into one ``MasterNotFoundError``, which the
        retry policy would retry like a failover in progress, wrong password or not.
        """
        try:
            address: tuple[str, int] = super().discover_master(service_name)  # type: ignore[no-untyped-call, unused-ignore]
        except MasterNotFoundError as exc:
            if "AuthenticationError" in str(exc) or "AuthorizationError" in str(exc):
                raise rx.AuthenticationError(
                    f"a sentinel refused the credentials (sentinel_username/sentinel_password): {exc}"
                ) from None
            raise
        return address

    def filter_slaves(self, slaves: list[dict[str, Any]]) -> list[tuple[str, int]]:
        return [
            (replica["ip"], replica["port"])
            for replica in slaves
            if not (replica["is_odown"] or replica["is_sdown"] or replica.get("is_disconnected"))
            and replica.get("master-link-status", "ok") == "ok"
        ]


class SentinelSource:
    """The primary (and, with ``read_from_replicas``, a replica) of a Sentinel-monitored service."""

    def __init__(self, config: RedisConfig) -> None:
        self._config = config
        self._sentinel: HealthySentinel | None = None
        self._pools: list[BlockingSentinelConnectionPool] = []
        self._primary: Any = None
        self._replica: Any = None
        hosts = ",".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in config.addresses)
        db = config.node_kwargs().get("db", 0)
        self._where = f"redis+sentinel://{hosts}/{config.service}" + (f"?db={db}" if db else "")

    def open(self) -> None:
        config = self._config
        # No I/O here: the pools ask the sentinels when they first connect.
        self._sentinel = HealthySentinel(config.addresses, sentinel_kwargs=config.sentinel_kwargs())  # type: ignore[no-untyped-call, unused-ignore]
        kwargs = config.node_kwargs()
        primary = BlockingSentinelConnectionPool(config.service, self._sentinel, is_master=True, **kwargs)  # type: ignore[no-untyped-call]
        self._pools = [primary]
        self._primary = redis.Redis(connection_pool=primary)
        self._replica = self._primary
        if config.read_from_replicas:
            replica = BlockingSentinelConnectionPool(config.service, self._sentinel, is_master=False, **kwargs)  # type: ignore[no-untyped-call]
            self._pools.append(replica)
            self._replica = redis.Redis(connection_pool=replica)

    def primary(self) -> Any:
        if self._primary is None:
            raise RuntimeError("the connection source is not open")
        return self._primary

    def replica(self) -> Any:
        if self._replica is None:
            raise RuntimeError("the connection source is not open")
        return self._replica

    def route(self, client: Any, key: str, operation: Callable[[Any], T]) -> T:
        return operation(client)  # one primary holds every key

    def primaries(self, client: Any, prefix: str = "") -> list[Any]:
        return [client]

    def close(self) -> None:
        pools, sentinel = self._pools, self._sentinel
        self._pools, self._sentinel, self._primary, self._replica = [], None, None, None
        for pool in pools:
            pool.disconnect()
        if sentinel is not None:
            sentinel.close()

    def describe(self) -> str:
        return self._where
