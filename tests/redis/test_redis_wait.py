"""STRONG writes with ``wait_replicas``: WAIT follows a write on its own connection, and only a write.

Against a real primary and replica. Errors met on this path are classified as on any
other (a WAIT in the way must not turn a WRONGTYPE into a plain StorageError), none of
them shows the value being written, and a write that changed nothing waits for nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from conftest import OpenRedis, ServerFactory, Sleeps, wait_for_link
from redis_servers import Proxy, RedisServer
from storage_redis.scripts import CAS, SET_MANY_PX

from storage_core import (
    AuthenticationFailed,
    ConnectionFailed,
    ConsistencyError,
    SerializationError,
    StorageError,
    VersionConflict,
)

# Written as part of every value here: it must never show in an error or a log line.
MARKER = "customer-data-7f3e"
VALUE = {"payload": MARKER * 10}
STRONG = {"wait_replicas": 1, "wait_timeout_ms": 2000}


@pytest.fixture
def primary(replicated: tuple[RedisServer, RedisServer]) -> Iterator[RedisServer]:
    primary, _ = replicated
    yield primary
    with primary.client() as raw:
        raw.flushall()


def _shown(exc: BaseException, caplog: pytest.LogCaptureFixture) -> str:
    texts = [str(exc), repr(exc)]
    seen: BaseException | None = exc
    while seen is not None:
        texts.append(str(seen))
        seen = seen.__cause__ or seen.__context__
    texts += [record.getMessage() for record in caplog.records]
    return "\n".join(texts)


# -- errors on the WAIT path are what they are ------------------------------------------


def test_a_conditional_write_on_a_key_of_another_type_is_a_serialization_error(
    primary: RedisServer, open_redis: OpenRedis, caplog: pytest.LogCaptureFixture
) -> None:
    store = open_redis(primary.url, sleep=Sleeps(), **STRONG)
    with primary.client() as raw:
        raw.rpush("task_queue", "a list, not a string")
    primary.reset_stats()
    with pytest.raises(SerializationError, match="'task_queue' is not a Redis string") as caught:
        store.write("task_queue", VALUE, if_version="0" * 40)
    assert MARKER not in _shown(caught.value, caplog)
    assert primary.commandstats().get("wait") is None, "nothing written, nothing waited for"


def test_a_script_refused_by_acl_is_authentication_failed(
    primary: RedisServer, open_redis: OpenRedis, caplog: pytest.LogCaptureFixture
) -> None:
    with primary.client() as raw:
        raw.execute_command(  # type: ignore[no-untyped-call]
            "ACL", "SETUSER", "scripter", "on", ">scripter-pw", "~*", "+@read", "+@connection", "+evalsha", "+script",
            "+wait",
        )  # fmt: skip
        raw.set("k", b"1")
    sleeps = Sleeps()
    store = open_redis(primary.url, sleep=sleeps, username="scripter", password="scripter-pw", **STRONG)
    version = store.read_entry("k").version
    with pytest.raises(AuthenticationFailed, match="not retried") as caught:
        store.write("k", VALUE, if_version=version)  # the script may run, its SET may not
    assert sleeps == []
    assert MARKER not in _shown(caught.value, caplog)
    with pytest.raises(AuthenticationFailed):
        store.update("k", lambda v: VALUE)


def test_a_busy_server_is_retried_and_the_write_then_confirmed(
    primary: RedisServer, open_redis: OpenRedis, caplog: pytest.LogCaptureFixture
) -> None:
    sleeps = Sleeps(before=lambda n: primary.kill_script())
    store = open_redis(primary.url, sleep=sleeps, **STRONG)
    store.write("k", 1)
    version = store.read_entry("k").version
    with primary.busy():
        store.write("k", VALUE, if_version=version)  # BUSY, SCRIPT KILL in the backoff, then written
    assert len(sleeps) == 1
    assert store.read("k") == VALUE
    retries = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(retries) == 1
    assert "BUSY" in retries[0]
    assert MARKER not in "\n".join(retries)


def test_a_server_that_stays_busy_says_so_after_the_retries(
    primary: RedisServer, open_redis: OpenRedis, caplog: pytest.LogCaptureFixture
) -> None:
    sleeps = Sleeps()
    store = open_redis(primary.url, sleep=sleeps, max_retries=2, **STRONG)
    with primary.busy(), pytest.raises(ConnectionFailed) as caught:
        store.write_many({"a": VALUE, "b": VALUE}, ttl=60)
    assert len(sleeps) == 2
    message = str(caught.value)
    assert "answered, but it is busy running a script or function (BUSY) through 2 retries" in message
    assert "SCRIPT KILL" in message
    assert "could not be reached" not in message
    assert MARKER not in _shown(caught.value, caplog)


def test_a_write_refused_with_its_wait_in_the_same_round_trip_is_what_it_is(
    server_factory: ServerFactory, open_redis: OpenRedis, caplog: pytest.LogCaptureFixture
) -> None:
    # SET and MSET always write when they succeed, so their WAIT goes with them; a refusal
    # is still reported as itself, and the connection stays in step for the next command.
    full = server_factory("--maxmemory-policy", "noeviction")
    store = open_redis(full.url, sleep=Sleeps(), max_connections=1, wait_replicas=1, wait_timeout_ms=50)
    with full.client() as raw:
        raw.set("ballast", b"x" * 3_000_000)
        raw.config_set("maxmemory", "2mb")  # now past maxmemory: every further write is refused
    writes: list[Callable[[], None]] = [lambda: store.write("k", VALUE), lambda: store.write_many({"a": VALUE})]
    for write in writes:
        with pytest.raises(StorageError, match="out of memory") as caught:
            write()
        assert not isinstance(caught.value, ConsistencyError)
        assert "Command #" not in str(caught.value)
        assert MARKER not in _shown(caught.value, caplog)
    assert store.get("k") is None, "nothing written, and the one connection still answers in order"
    assert store.exists("ballast")


# -- WAIT only after a write that changed something -------------------------------------------


def test_a_write_that_changes_nothing_waits_for_nothing(
    replicated: tuple[RedisServer, RedisServer], primary: RedisServer, open_redis: OpenRedis
) -> None:
    _, replica = replicated
    store = open_redis(primary.url, **STRONG)  # a full WAIT would take 2 s with the replica frozen
    store.write("k", 1)
    stale = store.read_entry("k").version
    store.write("k", 2)
    primary.reset_stats()
    with replica.frozen():
        started = time.monotonic()
        with pytest.raises(VersionConflict):
            store.write("k", 3, if_version=stale)
        with pytest.raises(VersionConflict):
            store.write("k", 3, if_version="0" * 40)
        assert store.delete("absent") is False
        elapsed = time.monotonic() - started
    assert elapsed < 0.5
    stats = primary.commandstats()
    assert "wait" not in stats
    assert (stats["evalsha"], stats["del"]) == (2, 1)
    assert store.read("k") == 2


def test_update_that_loses_races_pays_no_wait_for_them(primary: RedisServer, open_redis: OpenRedis) -> None:
    store = open_redis(primary.url, **STRONG)
    store.write("n", 0)
    competitor = open_redis(primary.url)
    calls: list[int] = []

    def bump(value: int) -> int:
        calls.append(value)
        if len(calls) < 4:
            competitor.write("n", value + 100, consistency="eventual")  # wins the race
        return value + 1

    primary.reset_stats()
    assert store.update("n", bump) == 301
    assert len(calls) == 4
    stats = primary.commandstats()
    assert (stats["evalsha"], stats["wait"]) == (4, 1), "three lost races, one write, one WAIT"


def test_scripts_are_loaded_at_initialize_and_a_flushed_script_costs_one_wait(
    primary: RedisServer, open_redis: OpenRedis
) -> None:
    with primary.client() as raw:
        raw.script_flush()
        store = open_redis(primary.url, **STRONG)
        assert raw.script_exists(CAS.sha, SET_MANY_PX.sha) == [True, True]
        raw.script_flush()  # as a restarted server would have
    primary.reset_stats()
    assert store.update("n", lambda v: v + 1, default=0) == 1
    store.write_many({"a": 1}, ttl=60)
    stats = primary.commandstats()
    assert stats["script|load"] == 2
    assert stats["wait"] == 2, "one WAIT per write, none for the attempt that met NOSCRIPT"


@pytest.mark.parametrize("kind", ["redis", "valkey"])
def test_a_reply_lost_then_found_applied_is_still_confirmed_by_wait(
    kind: str, server_factory: ServerFactory, open_redis: OpenRedis, request: pytest.FixtureRequest
) -> None:
    # The retry finds the bytes the lost attempt stored, on another connection. Since Redis
    # 7.2 (valkey too) WAIT covers only the writes of its own connection, so the script
    # stores the bytes again for WAIT to cover them; 7.0 also counted any command's offset.
    binary = request.getfixturevalue("waitaof_binary") if kind == "valkey" else None
    primary = server_factory("--repl-diskless-sync-delay", "0", "--shutdown-timeout", "0", binary=binary)
    replica = server_factory("--replicaof", "127.0.0.1", str(primary.port), binary=binary)
    wait_for_link(replica)
    held: list[Any] = []

    def meanwhile(failures: int) -> None:
        held.append(pool.get_connection())  # another thread takes the connection just released

    with Proxy(primary.port) as proxy:
        store = open_redis(proxy.url, sleep=Sleeps(before=meanwhile), wait_replicas=1, wait_timeout_ms=300)
        pool = store._source._pool  # type: ignore[attr-defined]
        older, newer = pool.get_connection(), pool.get_connection()
        for command in (("SET", "warm", "1"), ("WAIT", 1, 2000)):  # `older` covers up to its own write
            older.send_command(*command)
            assert older.read_response() in (b"OK", 1)
        pool.release(older)
        pool.release(newer)  # on top: the writes below go through it, the retry through `older`
        store.update("task", lambda v: ["a"], default=None)  # acknowledged by the replica; CAS now loaded
        version = store.read_entry("task").version
        with replica.frozen():
            proxy.lose_reply_to(b"EVALSHA")
            try:
                with pytest.raises(ConsistencyError, match="only 0 of 1 replicas"):
                    store.write("task", ["a", "b"], if_version=version)
            finally:
                for connection in held:
                    pool.release(connection)
        assert proxy.lost_replies == 1
        assert store.read("task") == ["a", "b"]
