"""The operator's tools against a real redis-server: expiries read back, export/import, migrate.

Each test that kills a process or counts commands uses a private server; the storage
command runs as a user runs it, in a subprocess.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import OpenRedis, ServerFactory
from redis_servers import RedisServer

from storage_core import AuthenticationFailed, open_storage

sys.path.insert(0, str(Path(__file__).parent.parent / "core"))
from cli_helpers import storage, storage_script


@pytest.fixture
def server(server_factory: ServerFactory) -> RedisServer:
    return server_factory()


def test_read_many_with_ttl_is_one_pipeline_of_read_commands(server: RedisServer, open_redis: OpenRedis) -> None:
    store = open_redis(server.url)
    store.write_many({f"k{i}": i for i in range(5)})
    store.write("expiring", "x", ttl=60)
    server.reset_stats()
    found = store.read_many_with_ttl(["k0", "k1", "expiring", "absent"])
    stats = server.commandstats()
    assert found["k0"] == (0, None)
    assert 59 < (found["expiring"][1] or 0) <= 60
    assert "absent" not in found
    assert stats == {"mget": 1, "pttl": 4}


def test_a_read_only_user_can_read_expiries(server: RedisServer, open_redis: OpenRedis) -> None:
    with server.client() as raw:
        raw.execute_command("ACL", "SETUSER", "reader", "on", ">reader-pw", "~*", "+@read", "+@connection")  # type: ignore[no-untyped-call]
        raw.set("k", b"1", px=60_000)
    reader = open_redis(server.url, username="reader", password="reader-pw")
    assert 59 < (reader.ttl("k") or 0) <= 60


def test_a_user_who_may_not_read_expiries_gets_one_clear_error(server: RedisServer, open_redis: OpenRedis) -> None:
    with server.client() as raw:
        raw.execute_command("ACL", "SETUSER", "getter", "on", ">getter-pw", "~*", "+get", "+mget", "+@connection")  # type: ignore[no-untyped-call]
        raw.set("k", b"1")
    getter = open_redis(server.url, username="getter", password="getter-pw")
    with pytest.raises(AuthenticationFailed) as caught:
        getter.ttl("k")
    assert "PTTL k" not in str(caught.value), "not redis-py's 'Command # 2 (PTTL k)' prefix"


def test_export_and_import_round_trip_through_redis(server: RedisServer, tmp_path: Path) -> None:
    with open_storage(server.url) as store:
        store.write_many({"a": {"deep": [1, 2]}, "b": "text"})
        store.write("c", 3, ttl=300)
    backup = tmp_path / "backup.jsonl"
    assert storage("-c", server.url, "export", "-o", str(backup), cwd=tmp_path).code == 0
    copy_url = server.url.replace("/0", "/1")
    imported = storage("-c", copy_url, "import", str(backup), cwd=tmp_path)
    assert (imported.code, imported.notes) == (0, ["storage: imported 3 keys, skipped 0 malformed lines"])
    with open_storage(copy_url) as copy:
        assert copy.read_many(["a", "b", "c"]) == {"a": {"deep": [1, 2]}, "b": "text", "c": 3}
        assert copy.ttl("a") is None
        assert 290 < (copy.ttl("c") or 0) <= 300


def fill_local(url: str, count: int) -> None:
    with open_storage(url) as store:
        for start in range(0, count, 5000):
            store.write_many({f"key:{i:07}": {"n": i} for i in range(start, min(start + 5000, count))})
        store.write_many({f"key:{i:07}": {"n": i, "ttl": True} for i in range(0, count, 50)}, ttl=600)


def redis_contents(url: str) -> dict[str, Any]:
    with open_storage(url) as store:
        listed = list(store.keys())
        return store.read_many([key for key in listed if not key.startswith("storage-migrate:")])


def local_contents(url: str) -> dict[str, Any]:
    with open_storage(url) as store:
        return store.read_many(list(store.keys()))


def checkpoint_of(url: str) -> dict[str, Any] | None:
    with open_storage(url) as store:
        keys = list(store.keys("storage-migrate:"))
        return store.read(keys[0]) if keys else None


@pytest.mark.slow
def test_migrate_from_local_to_redis_killed_and_resumed(server: RedisServer, tmp_path: Path) -> None:
    total = 30_000
    src = f"local://{tmp_path / 'state.db'}"
    fill_local(src, total)
    argv = [storage_script(), "migrate", "--from", src, "--to", server.url, "--batch", "100"]
    process = subprocess.Popen(argv, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while (found := checkpoint_of(server.url)) is None or found["copied"] < 3000:
            assert process.poll() is None, "finished before it could be killed"
            assert time.monotonic() < deadline, "no progress"
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    at_kill = checkpoint_of(server.url)
    assert at_kill is not None
    assert at_kill["copied"] < total

    resumed = storage("migrate", "--from", src, "--to", server.url, "--batch", "100", cwd=tmp_path)
    assert resumed.code == 0, resumed.err
    match = re.search(r"^copied (\d+) keys \((\d+) with a TTL\)", resumed.out, re.MULTILINE)
    assert match, resumed.out
    assert int(match[1]) <= total - at_kill["copied"] + 100  # no more than the batch in flight again
    assert f"verified: {total} keys in the source, {total} in the destination; 0 missing, 0 different" in resumed.out
    assert redis_contents(server.url) == local_contents(src)
    with open_storage(server.url) as copy:
        assert copy.ttl("key:0000001") is None
        assert 500 < (copy.ttl("key:0000050") or 0) <= 600  # the time the test took has passed
    assert checkpoint_of(server.url) is None


def test_migrate_from_redis_resumes_by_comparing(server: RedisServer, tmp_path: Path) -> None:
    """SCAN has no order: a resumed copy from Redis writes only what the destination lacks."""
    with open_storage(server.url) as store:
        store.write_many({f"k{i:03}": i for i in range(200)})
    dst = f"local://{tmp_path / 'copy.db'}"
    with open_storage(dst) as destination, open_storage(server.url) as source:
        destination.write_many({f"k{i:03}": i for i in range(0, 200, 2)})
        from storage_core.cli import migrate

        plan = migrate._Plan(source, destination, "", 50, None)
        destination.write(plan.checkpoint_key, {"source": repr(source), "prefix": "", "after": "k150", "copied": 100})
    resumed = storage("migrate", "--from", server.url, "--to", dst, "--batch", "50", cwd=tmp_path)
    assert resumed.code == 0, resumed.err
    assert resumed.lines[0].startswith("copied 100 keys (0 with a TTL)")
    assert "verified: 200 keys in the source, 200 in the destination; 0 missing, 0 different" in resumed.out
    assert local_contents(dst) == redis_contents(server.url)
