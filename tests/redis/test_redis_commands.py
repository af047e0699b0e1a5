"""What the backend sends and leaves on a real server: commands, TTLs, plain JSON, databases.

Each test has a private server, so ``INFO commandstats`` counts only the backend's commands
(plus the raw client that reads them).
"""

from __future__ import annotations

import orjson
import pytest
from conftest import OpenRedis, ServerFactory, Sleeps
from redis_servers import RedisServer
from storage_redis.scripts import CAS
from storage_redis.topology import Standalone

from storage_core import ConnectionFailed, Consistency, StorageError, open_storage
from storage_redis import RedisConfig


def test_values_are_plain_json_that_any_client_reads(server: RedisServer, open_redis: OpenRedis) -> None:
    store = open_redis(server.url, namespace="fleet-a")
    value = {"tasks": [{"id": 1, "done": False}], "note": "naïve ✓", "n": 1.5}
    store.write("task_queue", value)
    store.update("counter", lambda v: v + 1, default=41)
    store.write_many({"a": [1], "b": None})
    with server.client() as raw:
        assert raw.get("fleet-a:task_queue") == orjson.dumps(value)
        assert raw.get("fleet-a:counter") == b"42"
        assert raw.mget(["fleet-a:a", "fleet-a:b"]) == [b"[1]", b"null"]
        assert raw.type("fleet-a:task_queue") == b"string"
        assert sorted(raw.keys("*")) == [b"fleet-a:a", b"fleet-a:b", b"fleet-a:counter", b"fleet-a:task_queue"]


def test_keys_pages_with_scan_and_never_uses_keys(server: RedisServer, open_redis: OpenRedis) -> None:
    store = open_redis(server.url, scan_count=10)
    store.write_many({f"task_{i:03}": i for i in range(95)} | {"other": 0})
    server.reset_stats()
    keys = store.keys("task_")
    first = next(keys)
    scans_for_the_first_key = server.commandstats()["scan"]
    rest = list(keys)
    assert sorted([first, *rest]) == [f"task_{i:03}" for i in range(95)]
    stats = server.commandstats()
    assert "keys" not in stats
    assert stats["scan"] > 5, "COUNT 10 over 96 keys takes several pages"
    assert scans_for_the_first_key < stats["scan"], "a generator: the first key came before the last page"


def test_a_listing_ends_when_the_store_closes(server: RedisServer, open_redis: OpenRedis) -> None:
    store = open_redis(server.url, scan_count=5)
    store.write_many({f"k{i}": i for i in range(50)})
    keys = store.keys()
    next(keys)
    store.close()
    with pytest.raises(StorageError, match="closed"):
        list(keys)


def test_a_listing_kept_across_close_and_initialize_stops_and_leaves_no_connection(
    server: RedisServer, open_redis: OpenRedis
) -> None:
    store = open_redis(server.url, scan_count=2, client_name="lister")
    store.write_many({f"k{i}": i for i in range(20)})
    keys = store.keys()
    next(keys)
    store.close()
    store.initialize()
    with pytest.raises(StorageError, match="was closed while listing keys"):
        list(keys)  # its pool is gone: reconnecting it would leave a socket nobody closes
    assert len(list(store.keys())) == 20, "a listing begun after initialize() works"
    store.close()
    with server.client() as raw:
        assert [c for c in raw.client_list() if c["name"] == "lister"] == []


def test_keys_yields_every_matching_key_once(server: RedisServer, open_redis: OpenRedis) -> None:
    store = open_redis(server.url, scan_count=7)
    store.write_many({f"task_{i:03}": i for i in range(95)} | {"other": 0, "task": 1})
    assert sorted(store.keys("task_")) == [f"task_{i:03}" for i in range(95)]
    assert sorted(store.keys()) == sorted([*(f"task_{i:03}" for i in range(95)), "other", "task"])


@pytest.mark.parametrize("special", ["*", "?", "[ab]", "\\", "[", "]", "a*b?c[d]e\\f"])
def test_glob_characters_in_prefixes_and_namespaces_match_literally(
    special: str, server: RedisServer, open_redis: OpenRedis
) -> None:
    store = open_redis(server.url, namespace=f"ns{special}")
    neighbour = open_redis(server.url, namespace="nsX")
    neighbour.write("secret", 1)
    neighbour.write(f"p{special}x", 1)
    store.write(f"p{special}1", 1)
    store.write("pX1", 1)
    assert list(store.keys(f"p{special}")) == [f"p{special}1"]
    assert sorted(store.keys()) == sorted([f"p{special}1", "pX1"])
    assert sorted(neighbour.keys()) == sorted(["secret", f"p{special}x"])


def test_keys_skip_names_that_are_not_utf8(server: RedisServer, open_redis: OpenRedis) -> None:
    store = open_redis(server.url, namespace="ns")
    store.write("good", 1)
    with server.client() as raw:
        raw.set(b"ns:\xff\xfe", b"1")
    assert list(store.keys()) == ["good"]


def test_read_many_is_one_mget(server: RedisServer, open_redis: OpenRedis) -> None:
    store = open_redis(server.url)
    store.write_many({f"k{i}": i for i in range(100)})
    server.reset_stats()
    found = store.read_many([f"k{i}" for i in range(0, 200, 2)])
    assert found == {f"k{i}": i for i in range(0, 100, 2)}
    stats = server.commandstats()
    assert stats["mget"] == 1
    assert "get" not in stats


def test_read_many_of_very_many_keys_goes_in_chunks_in_one_pipeline(server: RedisServer, open_redis: OpenRedis) -> None:
    store = open_redis(server.url)
    store.write_many({f"k{i}": i for i in range(0, 25_000, 1000)})
    server.reset_stats()
    found = store.read_many([f"k{i}" for i in range(25_000)])
    assert found == {f"k{i}": i for i in range(0, 25_000, 1000)}
    assert server.commandstats()["mget"] == 3


def test_write_many_is_one_command_and_all_or_none(server: RedisServer, open_redis: OpenRedis) -> None:
    store = open_redis(server.url)
    server.reset_stats()
    store.write_many({f"k{i}": i for i in range(100)})
    assert server.commandstats()["mset"] == 1
    assert set(server.commandstats()) == {"mset"}
    server.reset_stats()
    store.write_many({f"t{i}": i for i in range(100)}, ttl=60)
    stats = server.commandstats()
    assert stats["evalsha"] >= 1
    assert stats["set"] == 100, "inside the one script"
    assert store.read_many(["k0", "k99", "t0", "t99"]) == {"k0": 0, "k99": 99, "t0": 0, "t99": 99}


def test_ttl_is_set_with_px_in_the_same_command(server: RedisServer, open_redis: OpenRedis) -> None:
    store = open_redis(server.url)
    server.reset_stats()
    store.write("a", 1, ttl=30)
    store.write("b", 1, ttl=0.0004)  # rounds up to 1 ms, never to "no expiry"
    stats = server.commandstats()
    assert stats["set"] == 2
    assert not {"expire", "pexpire", "pexpireat"} & set(stats)
    with server.client() as raw:
        assert 29_000 < raw.pttl("a") <= 30_000
        assert raw.pttl("b") in (-2, 0, 1)


def test_writes_without_ttl_clear_an_old_expiry(server: RedisServer, open_redis: OpenRedis) -> None:
    store = open_redis(server.url)
    for key in ("write", "write_many", "update", "cas"):
        store.write(key, 0, ttl=60)
    store.write("write", 1)
    store.write_many({"write_many": 1})
    store.update("update", lambda v: v + 1)
    store.write("cas", 1, if_version=store.read_entry("cas").version)
    with server.client() as raw:
        assert [raw.pttl(k) for k in ("write", "write_many", "update", "cas")] == [-1, -1, -1, -1]
    store.write("cas", 2, if_version=store.read_entry("cas").version, ttl=10)
    store.update("update", lambda v: v + 1, ttl=10)
    store.write_many({"write_many": 2}, ttl=10)
    with server.client() as raw:
        assert all(9_000 < raw.pttl(k) <= 10_000 for k in ("write_many", "update", "cas"))


def test_exists_and_delete_are_single_commands(server: RedisServer, open_redis: OpenRedis) -> None:
    store = open_redis(server.url)
    store.write("k", 1)
    server.reset_stats()
    assert store.exists("k") is True
    assert store.delete("k") is True
    assert store.exists("k") is False
    assert store.delete("k") is False
    stats = server.commandstats()
    assert (stats["exists"], stats["del"]) == (2, 2)


def test_versions_are_sha1_of_the_stored_bytes_on_both_sides(server: RedisServer, open_redis: OpenRedis) -> None:
    store = open_redis(server.url)
    with server.client() as raw:
        raw.set("k", b'{"written":"elsewhere"}')
        entry = store.read_entry("k")
        assert entry.version == raw.eval("return redis.sha1hex(redis.call('GET', KEYS[1]))", 1, "k").decode()
    store.write("k", {"mine": 1}, if_version=entry.version)
    assert store.read("k") == {"mine": 1}


def test_scripts_are_reloaded_after_the_server_forgot_them(server: RedisServer, open_redis: OpenRedis) -> None:
    store = open_redis(server.url)
    store.update("n", lambda v: v + 1, default=0)
    store.write_many({"a": 1}, ttl=10)
    with server.client() as raw:
        assert raw.script_exists(CAS.sha) == [True]
        raw.script_flush()
    assert store.update("n", lambda v: v + 1) == 2
    store.write_many({"a": 2}, ttl=10)
    assert store.read("a") == 2


def test_db_selection(server: RedisServer, open_redis: OpenRedis) -> None:
    in_url = open_redis(server.url.removesuffix("/0") + "/3")
    by_field = open_redis(server.url, db=5)
    in_url.write("k", "three")
    by_field.write("k", "five")
    with server.client(db=3) as three, server.client(db=5) as five, server.client(db=0) as zero:
        assert three.get("k") == b'"three"'
        assert five.get("k") == b'"five"'
        assert zero.get("k") is None
    assert repr(by_field).endswith(f":{server.port}/5>")


def test_unix_socket(server_factory: ServerFactory, tmp_path_factory: pytest.TempPathFactory) -> None:
    sock = tmp_path_factory.mktemp("sock") / "redis.sock"
    server_factory("--unixsocket", str(sock), "--unixsocketperm", "700")
    with open_storage(f"unix://{sock}?db=2", namespace="u") as store:
        assert repr(store) == f"<RedisStorage unix://{sock}?db=2 namespace='u'>"
        store.write("k", 1)
        assert store.read("k") == 1


def test_consistency_levels_send_the_same_set_without_replicas(server: RedisServer, open_redis: OpenRedis) -> None:
    store = open_redis(server.url)
    server.reset_stats()
    store.write("a", 1, consistency=Consistency.STRONG)
    store.write("b", 1, consistency=Consistency.EVENTUAL)
    stats = server.commandstats()
    assert stats["set"] == 2
    assert "wait" not in stats


def test_a_full_server_says_so(server_factory: ServerFactory, open_redis: OpenRedis) -> None:
    server = server_factory("--maxmemory", "2mb", "--maxmemory-policy", "noeviction")
    store = open_redis(server.url, sleep=Sleeps())
    store.write("big0", "x" * 100_000)
    with pytest.raises(StorageError, match="out of memory") as caught:
        store.write_many({f"big{i}": "x" * 100_000 for i in range(1, 100)})
    assert not isinstance(caught.value, ConnectionFailed)
    assert store.read("big0") == "x" * 100_000, "reads still work"


def test_the_connection_source_is_opened_before_use_and_closes_once() -> None:
    source = Standalone(RedisConfig("redis://127.0.0.1:1/0"))
    with pytest.raises(RuntimeError, match="not open"):
        source.primary()
    source.open()
    assert source.primary() is source.primary()
    source.close()
    source.close()
    with pytest.raises(RuntimeError, match="not open"):
        source.primary()
