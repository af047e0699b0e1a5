"""Coordination on a real Redis server: where its keys live, WAIT for fenced writes, scripts reloaded."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from conftest import OpenRedis, Sleeps
from redis_servers import Proxy, RedisServer
from storage_redis.coordination_scripts import RENEW, TRANSACT
from storage_redis.errors import OutcomeUnknown

from storage_core import ConsistencyError, CursorExpired, InvalidArgument, LeaseLost, StorageError, VersionConflict

STRONG = {"wait_replicas": 1, "wait_timeout_ms": 300}


@pytest.fixture
def primary(replicated: tuple[RedisServer, RedisServer]) -> Iterator[RedisServer]:
    primary, _ = replicated
    yield primary
    with primary.client() as raw:
        raw.flushall()


def test_coordination_keys_cannot_collide_with_keys_and_are_not_listed(
    server: RedisServer, open_redis: OpenRedis
) -> None:
    store = open_redis(server.url, namespace="fleet")
    store.close()  # configure() the feed between close and initialize
    store.configure(change_feed=True)
    store.initialize()
    lease = store.acquire_lease("job", ttl=30.0)
    assert lease is not None
    store.write("job", 1, fence=lease)
    with server.client() as raw:
        found = {key for key in raw.keys("*") if isinstance(key, bytes)}
    assert found == {b"fleet:job", b"\xffL:fleet:job", b"\xffF:fleet:", b"\xffstore-id"}
    for key in found - {b"fleet:job"}:
        with pytest.raises(UnicodeDecodeError):
            key.decode()
    assert list(store.keys()) == ["job"]
    assert list(open_redis(server.url).keys()) == ["fleet:job"], "keys() of the whole server skips them too"


def test_a_lease_survives_a_client_restart_and_the_token_keeps_growing(
    server: RedisServer, open_redis: OpenRedis
) -> None:
    first = open_redis(server.url).acquire_lease("job", ttl=0.2)
    assert first is not None
    time.sleep(0.3)
    second = open_redis(server.url).acquire_lease("job", ttl=30.0)
    assert second is not None
    assert second.token == first.token + 1
    assert abs(second.expires_at - (time.time() + 30.0)) < 5.0, "expires_at is the server's Unix time"


def test_fenced_and_transactional_writes_at_strong_wait_for_replicas(
    replicated: tuple[RedisServer, RedisServer], primary: RedisServer, open_redis: OpenRedis
) -> None:
    _, replica = replicated
    store = open_redis(primary.url, **STRONG)
    lease = store.acquire_lease("job", ttl=30.0)
    assert lease is not None
    store.write("a", 0, fence=lease, consistency="eventual")
    primary.reset_stats()
    with replica.frozen():
        for write in (
            lambda: store.write("a", 1, fence=lease),
            lambda: store.write_many({"a": 2, "b": 2}, fence=lease),
            lambda: store.delete("b", fence=lease),
            lambda: store.transaction(write={"a": 3}),
        ):
            with pytest.raises(ConsistencyError, match=r"applied on the primary .* only 0 of 1 replicas"):
                write()
        store.write("a", 4, fence=lease, consistency="eventual")
    assert primary.commandstats()["wait"] == 4, "one WAIT per STRONG write, none at EVENTUAL"
    assert store.read("a") == 4


def test_a_stale_fenced_write_waits_for_nothing(
    replicated: tuple[RedisServer, RedisServer], primary: RedisServer, open_redis: OpenRedis
) -> None:
    _, replica = replicated
    store = open_redis(primary.url, **STRONG)
    lease = store.acquire_lease("job", ttl=30.0)
    assert lease is not None
    store.release_lease(lease)
    with replica.frozen(), pytest.raises(LeaseLost):
        store.write("a", 1, fence=lease)
    assert not store.exists("a")


def test_flushed_scripts_are_loaded_again(server: RedisServer, open_redis: OpenRedis) -> None:
    store = open_redis(server.url)
    lease = store.acquire_lease("job", ttl=30.0)
    assert lease is not None
    with server.client() as raw:
        raw.script_flush()
    store.write("a", 1, fence=lease)
    store.transaction(expect={"a": store.read_entry("a").version}, write={"b": 2})
    assert store.renew_lease(lease, ttl=30.0).token == lease.token
    with server.client() as raw:
        assert raw.script_exists(RENEW.sha, TRANSACT.sha) == [True, True]


def test_the_feed_is_a_trimmed_stream(server: RedisServer, open_redis: OpenRedis) -> None:
    store = open_redis(server.url)
    store.close()
    store.configure(change_feed=True, change_retention=100)
    store.initialize()
    watcher = store.watch(timeout=0.2)
    store.write("first", 0)
    cursor = next(watcher).cursor
    for i in range(10):
        store.write_many({f"k{j}": i for j in range(100)})
    with server.client() as raw:
        length = raw.xlen(b"\xffF:")
    assert 100 <= length < 400, "MAXLEN ~ keeps about the retention"
    with pytest.raises(CursorExpired, match="about the last 100"):
        store.watch(since=cursor)
    with pytest.raises(InvalidArgument, match="ahead of the change feed"):
        store.watch(since="99999999999999-0")
    with pytest.raises(InvalidArgument, match="not a change-feed cursor of the redis backend"):
        store.watch(since="12")


def test_a_transaction_whose_reply_was_lost_is_found_applied(server: RedisServer, open_redis: OpenRedis) -> None:
    with Proxy(server.port) as proxy:
        store = open_redis(proxy.url, sleep=Sleeps())
        lease = store.acquire_lease("job", ttl=30.0)
        assert lease is not None
        store.write_many({"a": 0, "gone": 0})
        version = store.read_entry("a").version
        proxy.lose_reply_to(b"EVALSHA")
        # Applied, its reply lost: the retry finds "a" no longer at `version`, but holding
        # our bytes and "gone" gone, so it is done, not a conflict (nor a lost lease).
        store.transaction(expect={"a": version}, write={"a": 1}, delete=["gone"], fence=lease)
        assert proxy.lost_replies == 1
        assert store.read_many(["a", "gone"]) == {"a": 1}


def test_a_lost_reply_then_a_changed_key_is_outcome_unknown(server: RedisServer, open_redis: OpenRedis) -> None:
    with Proxy(server.port) as proxy:
        other = open_redis(server.url)
        store = open_redis(proxy.url, sleep=Sleeps(before=lambda _: other.write("a", "theirs")))
        store.write("a", 0)
        version = store.read_entry("a").version
        proxy.lose_reply_to(b"EVALSHA")
        with pytest.raises(OutcomeUnknown, match="may or may not have been applied"):
            store.transaction(expect={"a": version}, write={"a": 1})
        assert store.read("a") == "theirs"


def test_a_refused_fenced_write_or_transaction_waits_for_nothing(
    replicated: tuple[RedisServer, RedisServer], primary: RedisServer, open_redis: OpenRedis
) -> None:
    _, replica = replicated
    store = open_redis(primary.url, wait_replicas=1, wait_timeout_ms=2000)
    lease = store.acquire_lease("job", ttl=30.0)
    assert lease is not None
    store.write("a", 1, consistency="eventual")
    store.release_lease(lease)
    primary.reset_stats()
    with replica.frozen():
        started = time.monotonic()
        refusals: list[Callable[[], object]] = [
            lambda: store.write("a", 2, fence=lease),
            lambda: store.write_many({"a": 2, "b": 2}, fence=lease),
            lambda: store.transaction(expect={"a": None}, write={"a": 2}),
        ]
        for refused in refusals:
            with pytest.raises((LeaseLost, VersionConflict)):
                refused()
        elapsed = time.monotonic() - started
    assert elapsed < 1.0, "a WAIT for a write that changed nothing would take 2 s here"
    assert "wait" not in primary.commandstats()
    assert store.read("a") == 1


def test_keys_over_several_cluster_slots_get_the_hash_tag_advice() -> None:
    from redis import exceptions as rx
    from storage_redis.coordination import _check_slots

    with pytest.raises(StorageError, match=r"namespace: '\{fleet-a\}'"):
        _check_slots(rx.ResponseError("CROSSSLOT Keys in request don't hash to the same slot"))
    _check_slots(rx.ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"))
