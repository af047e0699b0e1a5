"""The ``storage`` fixture on a private redis-server: the same suite, run on Redis."""

from __future__ import annotations

import pytest
from redis_servers import RedisServer

pytest_plugins = ["pytester"]


def test_each_test_gets_a_fresh_namespace_on_redis_and_its_keys_are_removed(
    pytester: pytest.Pytester, server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STORAGE_TEST_URL", raising=False)
    with server.client() as raw:
        raw.set("someone-else", b'"theirs"')
    pytester.makepyfile(
        """
        def test_first(storage):
            assert storage.name == "redis"
            assert storage.namespace.startswith("pytest-")
            storage.write_many({"a": 1, "b": 2})

        def test_second(storage):
            assert list(storage.keys()) == [], "a namespace of its own"
            storage.write("c", 3, ttl=60)
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider", f"--storage-url={server.url}")
    result.assert_outcomes(passed=2)
    with server.client() as raw:
        assert raw.keys("*") == [b"someone-else"], "the tests' keys are gone, nobody else's"
