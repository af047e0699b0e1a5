"""A read-only Redis store sends no write to the server, whoever asks, and needs no write permission."""

from __future__ import annotations

import pytest
from conftest import OpenRedis
from redis_servers import RedisServer

from storage_core import ReadOnly, open_storage

# What the server must never see from a read-only store.
WRITE_COMMANDS = ("set", "mset", "del", "evalsha", "eval", "script|load", "unlink", "expire")


def _writes_seen(server: RedisServer) -> dict[str, int]:
    return {name: n for name, n in server.commandstats().items() if name in WRITE_COMMANDS}


def test_every_write_is_refused_before_it_is_sent(server: RedisServer, open_redis: OpenRedis) -> None:
    writable = open_redis(server.url)
    writable.write_many({"a": 1, "b": 2})
    server.reset_stats()
    with open_storage(f"{server.url}?read_only=true") as store:
        assert store.read_only
        assert store.read_many(["a", "b"]) == {"a": 1, "b": 2}
        assert sorted(store.keys()) == ["a", "b"]
        for write in (
            lambda: store.write("a", 3),
            lambda: store.write("a", 3, if_version=store.read_entry("a").version),
            lambda: store.write_many({"c": 1}),
            lambda: store.write("c", 1, ttl=5),
            lambda: store.delete("a"),
            lambda: store.update("a", lambda n: n + 1),
        ):
            with pytest.raises(ReadOnly, match="opened read-only"):
                write()
        # The backend refuses too, for a primitive no public method sent.
        consistency = store.default_consistency
        for primitive in (
            lambda: store._write("a", b"3", None, consistency),
            lambda: store._write_if("a", b"3", None, None, consistency),
            lambda: store._delete("a", consistency),
            lambda: store._write_many([("a", b"3")], 5.0, consistency),
        ):
            with pytest.raises(ReadOnly, match="refused before it was sent"):
                primitive()
    assert _writes_seen(server) == {}
    assert writable.read_many(["a", "b", "c"]) == {"a": 1, "b": 2}


def test_a_user_who_may_only_read_can_open_it(server: RedisServer, open_redis: OpenRedis) -> None:
    open_redis(server.url).write("a", 1)
    with server.client() as raw:
        raw.acl_setuser("reader", enabled=True, passwords=["+reader-pw"], keys=["*"], commands=["+@read", "+ping"])
    url = f"redis://reader:reader-pw@127.0.0.1:{server.port}/0"
    with open_storage(url, read_only=True) as store:
        assert store.read("a") == 1
        with pytest.raises(ReadOnly):
            store.write("a", 2)
