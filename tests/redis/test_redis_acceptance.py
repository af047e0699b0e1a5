"""The issue's acceptance criteria AC1, AC2, AC3 and AC5, each against real redis-servers.

AC4 (failure and retry) has its own module, ``test_redis_faults.py``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import cast

import orjson
import pytest
import redis
from conftest import OpenRedis
from redis_servers import Monitor, RedisServer, SlammingServer

from storage_core import (
    Consistency,
    ConsistencyError,
    KeyNotFound,
    SerializationError,
    VersionConflict,
    open_storage,
)
from storage_redis import RedisConfig, RedisStorage

DATA = {"tasks": [{"id": 1, "todo": "index the corpus"}], "owner": "agent-7"}


# -- AC1 initialization ----------------------------------------------------------------


def test_ac1_constructing_does_no_io() -> None:
    with SlammingServer() as nobody:
        store = RedisStorage(RedisConfig(url=nobody.url))
        RedisStorage.from_url(nobody.url)
        RedisStorage.from_options({"url": nobody.url, "max_retries": "2"})
        assert nobody.accepted == 0
        assert repr(store) == f"<RedisStorage redis://127.0.0.1:{nobody.port}/0>"


def test_ac1_initialize_pings_and_returns_none(server: RedisServer, open_redis: OpenRedis) -> None:
    # No health check here: it would PING a fresh connection once more before the first command.
    store = open_redis(server.url, initialize=False, health_check_interval=0)
    server.reset_stats()
    # The annotation already says None; the acceptance criterion checks it at run time too.
    assert cast(object, store.initialize()) is None
    assert server.commandstats().get("ping") == 1
    store.initialize()  # idempotent: no second pool, no second PING
    assert server.commandstats().get("ping") == 1
    store.ping()
    assert server.commandstats().get("ping") == 2


def test_ac1_the_pool_is_blocking_and_bounded(server: RedisServer, open_redis: OpenRedis) -> None:
    store = open_redis(server.url, max_connections=2, pool_timeout=10)
    pool = store._source._pool  # type: ignore[attr-defined]
    assert isinstance(pool, redis.BlockingConnectionPool)
    assert (pool.max_connections, pool.timeout) == (2, 10)
    with server.client() as raw:
        before = raw.info("stats")["total_connections_received"]
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(40):
                store.write(f"k{n}-{i}", i)
                assert store.read(f"k{n}-{i}") == i
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with server.client() as raw:
        opened = raw.info("stats")["total_connections_received"] - before - 1  # less this raw client
    assert 1 <= opened <= 2, "8 threads shared at most max_connections=2 connections, waiting their turn"


def test_ac1_open_storage_with_a_redis_config(redis_url: str) -> None:
    with open_storage({"backend": "redis", "redis": {"url": redis_url}}, namespace="ac1") as store:
        assert isinstance(store, RedisStorage)
        store.ping()


# -- AC2 strong writes -----------------------------------------------------------------


def test_ac2_strong_write_is_a_set_acknowledged_before_it_returns(server: RedisServer, open_redis: OpenRedis) -> None:
    store = open_redis(server.url)
    server.reset_stats()
    store.write("task_queue", DATA, consistency=Consistency.STRONG)
    stats = server.commandstats()
    assert stats["set"] == 1
    assert "wait" not in stats, "no replicas asked for: no WAIT"
    with server.client() as raw:
        assert orjson.loads(cast(bytes, raw.get("task_queue"))) == DATA


def test_ac2_wait_replicas_sends_set_and_wait_on_one_connection(
    replicated: tuple[RedisServer, RedisServer], open_redis: OpenRedis
) -> None:
    primary, replica = replicated
    store = open_redis(primary.url, wait_replicas=1, wait_timeout_ms=2000, max_connections=4)
    with Monitor(primary.port) as monitor:
        store.write("task_queue", DATA, consistency="strong")
        lines = monitor.until('"WAIT"')
    set_line = next(line for line in lines if '"SET" "task_queue"' in line)
    wait_line = lines[-1]
    client_of: Callable[[str], str] = lambda line: line.split("[", 1)[1].split("]", 1)[0]  # noqa: E731
    assert client_of(set_line) == client_of(wait_line), "WAIT must follow the SET on the same connection"
    assert '"WAIT" "1" "2000"' in wait_line
    with replica.client() as raw:  # WAIT returned 1: the replica has it now
        assert orjson.loads(cast(bytes, raw.get("task_queue"))) == DATA


def test_ac2_too_few_acknowledgements_raise_consistency_error(
    replicated: tuple[RedisServer, RedisServer], open_redis: OpenRedis
) -> None:
    primary, replica = replicated
    store = open_redis(primary.url, wait_replicas=1, wait_timeout_ms=150)
    with replica.frozen():
        started = time.monotonic()
        with pytest.raises(ConsistencyError) as caught:
            store.write("task_queue", DATA, consistency=Consistency.STRONG)
        elapsed = time.monotonic() - started
    message = str(caught.value)
    assert "applied on the primary" in message
    assert "only 0 of 1 replicas acknowledged it within 150 ms" in message
    assert "'task_queue'" in message
    assert 0.14 <= elapsed < 2
    with primary.client() as raw:
        assert orjson.loads(cast(bytes, raw.get("task_queue"))) == DATA, "the write is on the primary"


def test_ac2_asking_more_replicas_than_exist_raises(
    replicated: tuple[RedisServer, RedisServer], open_redis: OpenRedis
) -> None:
    primary, _ = replicated
    store = open_redis(primary.url, wait_replicas=2, wait_timeout_ms=100)
    with pytest.raises(ConsistencyError, match="only 1 of 2 replicas"):
        store.write("task_queue", DATA)  # the default consistency is strong


# -- AC3 reads ---------------------------------------------------------------------------


def test_ac3_read_is_a_get_of_json(server: RedisServer, open_redis: OpenRedis) -> None:
    store = open_redis(server.url)
    with server.client() as raw:
        raw.set("task_queue", orjson.dumps(DATA))
    server.reset_stats()
    assert store.read("task_queue") == DATA
    assert server.commandstats()["get"] == 1


def test_ac3_absent_key_raises_key_not_found(redis_url: str, open_redis: OpenRedis) -> None:
    store = open_redis(redis_url, namespace="ac3-absent")
    with pytest.raises(KeyNotFound) as caught:
        store.read("task_queue")
    assert isinstance(caught.value, KeyError)
    assert caught.value.key == "task_queue"


def test_ac3_value_that_is_not_json_raises_serialization_error_naming_the_key(
    server: RedisServer, open_redis: OpenRedis
) -> None:
    store = open_redis(server.url)
    with server.client() as raw:
        raw.set("task_queue", b"\x00 certainly { not json")
    with pytest.raises(SerializationError, match="'task_queue'"):
        store.read("task_queue")


def test_ac3_value_of_another_redis_type_raises_serialization_error_naming_the_key(
    server: RedisServer, open_redis: OpenRedis
) -> None:
    store = open_redis(server.url)
    with server.client() as raw:
        raw.rpush("task_queue", "a list, not a string")
    with pytest.raises(SerializationError, match="'task_queue' is not a Redis string"):
        store.read("task_queue")
    assert store.read_many(["task_queue"]) == {}, "MGET answers nil for a non-string"


# -- AC5 eventual writes -----------------------------------------------------------------


def test_ac5_eventual_write_returns_on_the_primary_ack_without_wait(
    replicated: tuple[RedisServer, RedisServer], open_redis: OpenRedis
) -> None:
    primary, replica = replicated
    store = open_redis(primary.url, wait_replicas=1, wait_timeout_ms=1500)
    primary.reset_stats()
    with replica.frozen():
        started = time.monotonic()
        store.write("task_queue", DATA, consistency=Consistency.EVENTUAL)
        store.write_many({"a": 1, "b": 2}, consistency="eventual")
        store.write_many({"a": 1, "b": 2}, consistency="eventual", ttl=60)
        store.delete("a", consistency="eventual")
        elapsed = time.monotonic() - started
    assert elapsed < 1.0, "no write waited for the frozen replica"
    stats = primary.commandstats()
    assert "wait" not in stats
    assert (stats["set"], stats["mset"], stats["del"]) == (1 + 2, 1, 1)  # + the 2 SETs of the TTL script
    with primary.client() as raw:
        assert orjson.loads(cast(bytes, raw.get("task_queue"))) == DATA


def test_ac5_eventual_is_the_configured_default(
    replicated: tuple[RedisServer, RedisServer], open_redis: OpenRedis
) -> None:
    primary, replica = replicated
    store = open_redis(primary.url, wait_replicas=1, wait_timeout_ms=1500, consistency="eventual")
    with replica.frozen():
        started = time.monotonic()
        store.write("task_queue", DATA)
        assert time.monotonic() - started < 1.0


def test_strong_waits_for_every_kind_of_write(
    replicated: tuple[RedisServer, RedisServer], open_redis: OpenRedis
) -> None:
    primary, replica = replicated
    store = open_redis(primary.url, wait_replicas=1, wait_timeout_ms=2000)
    store.write("n", 0, ttl=60)
    store.update("n", lambda v: v + 1)
    store.write_many({"a": 1, "b": 2})
    store.write_many({"c": 3}, ttl=60)
    assert store.delete("c") is True
    assert store.delete("c") is False
    with replica.client() as raw:
        assert raw.mget(["n", "a", "b", "c"]) == [b"1", b"1", b"2", None]


UNCONFIRMED: dict[str, tuple[Callable[[RedisStorage], object], str]] = {
    "write": (lambda s: s.write("n", 5), "the write to key 'n'"),
    "update": (lambda s: s.update("n", lambda v: v + 1, default=0), "the write to key 'n'"),
    "write_many": (lambda s: s.write_many({"a": 10}), "the batch write"),
    "write_many with ttl": (lambda s: s.write_many({"a": 10}, ttl=60), "the batch write"),
    "delete": (lambda s: s.delete("b"), "the write to key 'b'"),
}


@pytest.mark.parametrize(("operation", "what"), UNCONFIRMED.values(), ids=UNCONFIRMED.keys())
def test_every_kind_of_write_reports_too_few_acknowledgements(
    operation: Callable[[RedisStorage], object],
    what: str,
    replicated: tuple[RedisServer, RedisServer],
    open_redis: OpenRedis,
) -> None:
    primary, replica = replicated
    store = open_redis(primary.url, wait_replicas=1, wait_timeout_ms=100)
    store.write_many({"a": 1, "b": 2}, consistency="eventual")
    with replica.frozen(), pytest.raises(ConsistencyError, match="applied on the primary") as caught:
        operation(store)
    assert what in str(caught.value)


def test_conditional_write_that_loses_is_a_conflict_not_a_consistency_error(
    replicated: tuple[RedisServer, RedisServer], open_redis: OpenRedis
) -> None:
    # Nothing was written, so there is nothing to confirm (and no WAIT is sent: test_redis_wait).
    primary, replica = replicated
    store = open_redis(primary.url, wait_replicas=1, wait_timeout_ms=200)
    store.write("k", 1)
    stale = store.read_entry("k").version
    store.write("k", 2)
    with replica.frozen(), pytest.raises(VersionConflict):
        store.write("k", 3, if_version=stale)
    assert store.read("k") == 2
