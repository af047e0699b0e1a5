"""storage-redis: the Redis backend of storage-core, for agents on many hosts sharing one store."""

from storage_redis.config import RedisConfig
from storage_redis.errors import OutcomeUnknown, PoolExhausted
from storage_redis.storage import RedisStorage

__all__ = ["OutcomeUnknown", "PoolExhausted", "RedisConfig", "RedisStorage"]
