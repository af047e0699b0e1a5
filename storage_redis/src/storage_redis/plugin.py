"""The ``storage_core`` entry point of storage-redis: registers the ``redis`` backend."""

from __future__ import annotations

from collections.abc import Callable

from storage_core import Storage, hookimpl
from storage_redis.storage import RedisStorage


@hookimpl
def storage_register_backends(register: Callable[[type[Storage]], None]) -> None:
    """Register :class:`RedisStorage` under the name ``redis``."""
    register(RedisStorage)
