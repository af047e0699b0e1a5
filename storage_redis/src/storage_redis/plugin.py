"""The ``storage_core`` entry point of storage-redis: registers the ``redis`` backend."""

from __future__ import annotations

from collections.abc import Callable

from storage_core import hookimpl


@hookimpl
def storage_register_backends(register: Callable[..., None]) -> None:
    """Register :class:`RedisStorage` by reference, so a store of another backend never imports redis-py."""
    register("redis", "storage_redis.storage:RedisStorage", url_schemes=("redis", "rediss", "unix"))
