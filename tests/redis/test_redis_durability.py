"""``wait_aof``: STRONG writes also wait for the primary's AOF fsync, where the server has WAITAOF."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from conftest import OpenRedis, ServerFactory, Sleeps
from redis_servers import Monitor, RedisServer

from storage_core import ConfigError, ConsistencyError, StorageError


def test_wait_aof_on_a_server_without_waitaof_is_refused_at_initialize(
    server: RedisServer, open_redis: OpenRedis
) -> None:
    store = open_redis(server.url, wait_aof=True, initialize=False)
    with pytest.raises(ConfigError, match=r"needs Redis 7\.2 or newer") as caught:
        store.initialize()
    assert caught.value.field == "storage.redis.wait_aof"
    assert "appendfsync always" in str(caught.value)
    with pytest.raises(StorageError, match="not initialized"):
        store.read("k")


@pytest.fixture
def aof_server(server_factory: ServerFactory, waitaof_binary: str) -> RedisServer:
    return server_factory("--appendonly", "yes", "--appendfsync", "always", binary=waitaof_binary)


def test_wait_aof_needs_appendonly(server_factory: ServerFactory, waitaof_binary: str, open_redis: OpenRedis) -> None:
    server = server_factory(binary=waitaof_binary)
    store = open_redis(server.url, wait_aof=True, initialize=False)
    with pytest.raises(ConfigError, match="appendonly yes"):
        store.initialize()


def test_strong_writes_wait_for_the_aof_fsync_on_the_same_connection(
    aof_server: RedisServer, open_redis: OpenRedis
) -> None:
    store = open_redis(aof_server.url, wait_aof=True, wait_timeout_ms=1000)
    with Monitor(aof_server.port) as monitor:
        store.write("k", 1)
        lines = monitor.until('"WAITAOF"')
    set_line = next(line for line in lines if '"SET" "k"' in line)
    client_of: Callable[[str], str] = lambda line: line.split("[", 1)[1].split("]", 1)[0]  # noqa: E731
    assert client_of(set_line) == client_of(lines[-1])
    assert '"WAITAOF" "1" "0" "1000"' in lines[-1]
    aof_server.reset_stats()
    store.ping()
    assert "info" not in aof_server.commandstats_all(), "the server was checked once, at initialize()"
    store.update("k", lambda v: v + 1)
    store.write_many({"a": 1}, ttl=30)
    assert store.read_many(["k", "a"]) == {"k": 2, "a": 1}
    aof_server.reset_stats()
    store.write("k", 3, consistency="eventual")
    assert "waitaof" not in aof_server.commandstats()


def test_wait_aof_with_missing_replicas_says_what_was_confirmed(aof_server: RedisServer, open_redis: OpenRedis) -> None:
    store = open_redis(aof_server.url, wait_aof=True, wait_replicas=1, wait_timeout_ms=100)
    with pytest.raises(ConsistencyError) as caught:
        store.write("k", 1)
    message = str(caught.value)
    assert "but only 0 of 1 replicas acknowledged it within 100 ms" in message
    assert "applied on the primary" in message


def test_an_unconfirmed_fsync_is_reported(aof_server: RedisServer, open_redis: OpenRedis) -> None:
    # With appendfsync no the server never fsyncs on its own account: WAITAOF counts 0 local.
    store = open_redis(aof_server.url, wait_aof=True, wait_timeout_ms=50)
    with aof_server.client() as raw:
        raw.config_set("appendfsync", "no")
    with pytest.raises(ConsistencyError, match="but the primary did not confirm its AOF fsync within 50 ms"):
        store.write("k", 1)
    assert store.read("k") == 1, "applied all the same"


def test_aof_switched_off_after_initialize_is_applied_but_not_confirmed(
    aof_server: RedisServer, open_redis: OpenRedis, caplog: pytest.LogCaptureFixture
) -> None:
    store = open_redis(aof_server.url, wait_aof=True, sleep=Sleeps())
    store.write("k", 1)
    with aof_server.client() as raw:
        raw.config_set("appendonly", "no")  # an operator restarts it without AOF, say
    value = {"payload": "customer-data-7f3e" * 10}
    with pytest.raises(ConsistencyError) as caught:
        store.write("k", value)
    message = str(caught.value)
    assert "the write to key 'k' is applied on the primary" in message
    assert "not confirmed: WAITAOF failed" in message
    assert "appendonly yes" in message
    assert "customer-data" not in message
    assert not caplog.records, "not retried: the write is applied"
    assert store.read("k") == value
