"""storage-redis: the Redis backend of storage-core, for agents on many hosts sharing one store."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from storage_redis.config import RedisConfig
    from storage_redis.errors import OutcomeUnknown, PoolExhausted
    from storage_redis.storage import RedisStorage

__all__ = ["OutcomeUnknown", "PoolExhausted", "RedisConfig", "RedisStorage"]

# Imported on first access: the entry point imports storage_redis.plugin, and that must not
# pull in redis-py for a process that opens another backend.
_HOMES = {
    "OutcomeUnknown": "storage_redis.errors",
    "PoolExhausted": "storage_redis.errors",
    "RedisConfig": "storage_redis.config",
    "RedisStorage": "storage_redis.storage",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'storage_redis' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
