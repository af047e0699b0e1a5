"""The shared conformance suite, run against a real Redis server."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import redis

from storage_core.storage import Storage
from storage_core.testing import StorageContract, StorageFactory, config_factory


class TestRedisContract(StorageContract):
    @pytest.fixture
    def storage_factory(self, redis_url: str) -> StorageFactory:
        return config_factory({"backend": "redis", "redis": {"url": redis_url}})

    @pytest.fixture(autouse=True)
    def _raw_url(self, redis_url: str) -> None:
        self.redis_url = redis_url
        # The session server has a password, known once the fixture has run: the suite checks
        # it never shows.
        self.secrets = tuple(filter(None, [urlsplit(redis_url).password]))

    def write_raw(self, store: Storage, key: str, data: bytes) -> None:
        """Plant the bytes with a plain redis-py client, as a foreign writer would."""
        full = store._prefix + key  # the template's own namespacing rule
        with redis.Redis.from_url(self.redis_url) as raw:
            raw.set(full, data)
