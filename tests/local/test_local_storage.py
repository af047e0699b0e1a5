"""The primitives on a real SQLite file: expiry, key ranges, batches, compare-and-set, durability levels."""

from __future__ import annotations

import sqlite3
import time
import uuid
from pathlib import Path

import pytest

from storage_core import Capability, ConnectionFailed, Consistency, InvalidKey, StorageError, VersionConflict
from storage_core.versions import content_version
from storage_local import LocalStorage
from storage_local.config import LocalConfig

from .conftest import MakeStore

TTL, PAST_TTL = 0.2, 0.4


def rows(raw: sqlite3.Connection) -> dict[str, float | None]:
    """Every stored row, expired or not: key -> expires_at."""
    return dict(raw.execute("SELECT key, expires_at FROM storage_kv"))


# -- expiry ---------------------------------------------------------------------------


def test_an_expired_key_is_absent_to_every_primitive(store: LocalStorage) -> None:
    store.write("gone", "soon", ttl=TTL)
    store.write("kept", "long", ttl=60)
    assert store.read("gone") == "soon"
    time.sleep(PAST_TTL)
    assert store.get("gone", "absent") == "absent"
    assert not store.exists("gone")
    assert store.read_many(["gone", "kept"]) == {"kept": "long"}
    assert list(store.keys()) == ["kept"]
    assert list(store.keys("go")) == []
    assert store.delete("gone") is False
    assert store.exists("kept")


def test_compare_and_set_treats_an_expired_key_as_absent(store: LocalStorage) -> None:
    store.write("k", "old", ttl=TTL)
    version = store.read_entry("k").version
    time.sleep(PAST_TTL)
    with pytest.raises(VersionConflict):
        store.write("k", "new", if_version=version)
    assert store.update("k", lambda v: v + 1, default=0) == 1
    assert store.read("k") == 1


def test_a_write_without_ttl_clears_the_expiry(store: LocalStorage, raw: sqlite3.Connection) -> None:
    store.write("k", 1, ttl=TTL)
    store.write("k", 2)
    store.write_many({"m": 1}, ttl=TTL)
    store.write_many({"m": 2})
    store.write("u", 1, ttl=TTL)
    store.update("u", lambda v: v + 1)
    assert rows(raw) == {"k": None, "m": None, "u": None}
    time.sleep(PAST_TTL)
    assert store.read_many(["k", "m", "u"]) == {"k": 2, "m": 2, "u": 2}


def test_a_write_with_ttl_replaces_the_expiry(store: LocalStorage, raw: sqlite3.Connection) -> None:
    store.write("k", 1, ttl=1000)
    before = time.time()
    store.write("k", 2, ttl=10)
    assert before + 10 <= rows(raw)["k"] <= time.time() + 10  # type: ignore[operator]


def test_delete_of_an_expired_key_removes_the_row(store: LocalStorage, raw: sqlite3.Connection) -> None:
    store.write("k", 1, ttl=TTL)
    time.sleep(PAST_TTL)
    assert store.delete("k") is False
    assert rows(raw) == {}


def test_expired_rows_are_purged_when_a_store_opens(make_store: MakeStore, db_path: Path) -> None:
    store = make_store()
    store.write_many({f"short{i}": i for i in range(50)}, ttl=TTL)
    store.write("long", 1)
    store.close()
    time.sleep(PAST_TTL)
    make_store()
    raw = sqlite3.connect(db_path)
    try:
        assert rows(raw) == {"long": None}
    finally:
        raw.close()


def test_expired_rows_are_purged_as_writes_go_on(store: LocalStorage, raw: sqlite3.Connection) -> None:
    store.write_many({f"short{i}": i for i in range(100)}, ttl=TTL)
    time.sleep(PAST_TTL)
    for i in range(1100):  # crosses a purge interval (every 1024 writes)
        store.write(f"k{i % 10}", i)
    assert [k for k in rows(raw) if k.startswith("short")] == []


def test_purge_uses_the_partial_expiry_index(store: LocalStorage, raw: sqlite3.Connection) -> None:
    plan = raw.execute(
        "EXPLAIN QUERY PLAN DELETE FROM storage_kv WHERE key IN "
        "(SELECT key FROM storage_kv WHERE expires_at <= ? LIMIT ?)",
        (time.time(), 10),
    ).fetchall()
    assert any("storage_kv_expires_at" in row[-1] for row in plan), plan


def test_a_purge_that_meets_a_lock_is_skipped_at_once(make_store: MakeStore, raw: sqlite3.Connection) -> None:
    store = make_store(timeout=2.0)
    store.write("k", 0)
    raw.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        store._purge(10)  # expired rows are invisible anyway: a busy purge waits for the next one
        assert time.monotonic() - started < 0.5  # not the 2 s busy timeout
    finally:
        raw.execute("ROLLBACK")
    assert store.read("k") == 0
    store.write("k", 1)  # the busy timeout is back for real writes
    assert store._pool.reader().execute("PRAGMA busy_timeout").fetchone() == (2000,)


def test_initialize_does_not_wait_for_another_process_s_write_lock(
    make_store: MakeStore, raw: sqlite3.Connection
) -> None:
    make_store().write("k", 0)  # the schema exists
    raw.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        store = make_store(timeout=2.0)  # initialize() purges, and must not stall on the lock
        assert time.monotonic() - started < 0.5
        assert store.read("k") == 0
    finally:
        raw.execute("ROLLBACK")


# -- keys -----------------------------------------------------------------------------

AWKWARD = [
    "a",
    "a%",
    "a%b",
    "a_",
    "a_b",
    "a*",
    "a?",
    "a[",
    "a\\",
    "a\x00",
    "a\x00b",
    "ab",
    "a\x7f",
    "a\u00ff",
    "a\ud7ff",
    "a\ud7ff\U0010ffff",
    "a\ue000",
    "a\uffff",
    "a\U0010ffff",
    "a\U0010ffff\U0010ffff",
    "a\U0010ffffb",
    "b",
    "\U0010ffff",
    "\U0010ffff\U0010ffff",
    "\U0010ffffa",
]


@pytest.mark.parametrize(
    "prefix",
    ["", "a", "a%", "a_", "a*", "a[", "a\\", "a\x00", "a\ud7ff", "a\uffff", "a\U0010ffff", "\U0010ffff", "x"],
)
def test_prefix_matching_is_exact_for_any_character(store: LocalStorage, prefix: str) -> None:
    store.write_many(dict.fromkeys(AWKWARD, 0))
    expected = sorted((k for k in AWKWARD if k.startswith(prefix)), key=lambda k: k.encode())
    assert list(store.keys(prefix)) == expected


def test_keys_come_in_code_point_order_across_pages(store: LocalStorage) -> None:
    keys = [f"k{i:05}" for i in range(5000)]  # pages of 64, 128, ... 2048: several boundaries
    store.write_many(dict.fromkeys(reversed(keys), 1), consistency=Consistency.EVENTUAL)
    store.write_many({"j": 1, "l": 1})
    assert list(store.keys("k")) == keys
    assert list(store.keys("k04")) == keys[4000:]
    assert list(store.keys("k04999")) == ["k04999"]


def test_a_prefix_with_a_lone_surrogate_is_refused(store: LocalStorage) -> None:
    with pytest.raises(InvalidKey, match="lone surrogate"):
        store.keys("a\ud800")


def test_keys_do_not_block_writers_between_pages(store: LocalStorage, make_store: MakeStore) -> None:
    store.write_many({f"k{i:04}": i for i in range(300)})
    other = make_store(timeout=0)  # fails at once if anything holds a lock
    seen = []
    streaming = store.keys()
    for key in streaming:
        seen.append(key)
        if len(seen) % 50 == 0:
            other.write(f"z{len(seen)}", 1)  # a writer between pages (and a checkpoint) never waits
    assert seen[:300] == [f"k{i:04}" for i in range(300)]


def test_keys_written_meanwhile_after_the_cursor_are_seen(store: LocalStorage) -> None:
    store.write_many({f"k{i:04}": i for i in range(200)})
    keys = store.keys()
    assert next(keys) == "k0000"
    store.write("k9999", 1)
    assert list(keys)[-1] == "k9999"


# -- batches --------------------------------------------------------------------------


def test_read_many_beyond_one_statement(store: LocalStorage) -> None:
    store.write_many({f"k{i}": i for i in range(0, 1500, 2)})
    wanted = [f"k{i}" for i in range(1500)]  # three chunks of parameters
    assert store.read_many(wanted) == {f"k{i}": i for i in range(0, 1500, 2)}


def test_read_many_skips_expired_in_every_chunk(store: LocalStorage) -> None:
    store.write_many({f"k{i}": i for i in range(1200)})
    store.write_many({f"k{i}": -1 for i in range(0, 1200, 100)}, ttl=TTL)
    time.sleep(PAST_TTL)
    found = store.read_many([f"k{i}" for i in range(1200)])
    assert len(found) == 1188
    assert "k100" not in found


def test_write_many_is_all_or_nothing(store: LocalStorage, raw: sqlite3.Connection) -> None:
    store.write("k0", "before")
    raw.execute(
        "CREATE TRIGGER refuse BEFORE INSERT ON storage_kv WHEN NEW.key = 'k500' "
        "BEGIN SELECT RAISE(ABORT, 'refused by a test trigger'); END"
    )
    with pytest.raises(StorageError, match="refused by a test trigger"):
        store.write_many({f"k{i}": i for i in range(1000)})
    assert rows(raw) == {"k0": None}
    assert store.read("k0") == "before"
    raw.execute("DROP TRIGGER refuse")
    store.write_many({f"k{i}": i for i in range(1000)})
    assert len(rows(raw)) == 1000


# -- compare-and-set ------------------------------------------------------------------


def test_write_if_compares_the_stored_bytes(store: LocalStorage) -> None:
    store.write("k", {"a": 1})
    assert store._write_if("k", b'{"a":2}', content_version(b'{"a":1}'), None, Consistency.STRONG)
    assert not store._write_if("k", b'{"a":3}', content_version(b'{"a":1}'), None, Consistency.STRONG)
    assert not store._write_if("k", b'{"a":3}', None, None, Consistency.STRONG)  # None means: must be absent
    assert store._write_if("new", b"1", None, TTL, Consistency.EVENTUAL)
    assert store.read_many(["k", "new"]) == {"k": {"a": 2}, "new": 1}


def test_a_failed_compare_and_set_leaves_no_transaction_open(store: LocalStorage, make_store: MakeStore) -> None:
    store.write("k", 1)
    with pytest.raises(VersionConflict):
        store.write("k", 2, if_version="0" * 40)
    make_store(timeout=0).write("k", 3)  # would fail at once if our write lock were still held
    assert store.read("k") == 3


def test_an_error_inside_compare_and_set_rolls_back(store: LocalStorage, raw: sqlite3.Connection) -> None:
    raw.execute(
        "CREATE TRIGGER refuse BEFORE INSERT ON storage_kv BEGIN SELECT RAISE(ABORT, 'refused by a test trigger'); END"
    )
    with pytest.raises(StorageError, match="refused by a test trigger"):
        store.update("k", lambda v: v + 1, default=0)
    raw.execute("DROP TRIGGER refuse")
    assert store.update("k", lambda v: v + 1, default=0) == 1


# -- locks and levels -----------------------------------------------------------------


def test_a_held_lock_fails_after_the_timeout_and_says_what_to_do(
    make_store: MakeStore, raw: sqlite3.Connection, db_path: Path
) -> None:
    store = make_store(timeout=0.2)
    store.write("k", "before")
    raw.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        with pytest.raises(ConnectionFailed) as caught:
            store.write("k", "after")
        assert time.monotonic() - started >= 0.15
        with pytest.raises(ConnectionFailed):
            store.update("k", lambda v: v)
        with pytest.raises(ConnectionFailed):
            store.write_many({"k": "after", "j": 1})
        with pytest.raises(ConnectionFailed):
            store.delete("k")
        assert store.read("k") == "before"  # WAL: readers never wait for a writer
    finally:
        raw.execute("ROLLBACK")
    assert str(caught.value) == (
        f"the database {db_path} stayed locked by another connection for 0.2s (database is locked): "
        "another process holds a long transaction; retry later, or raise storage.local.timeout"
    )
    assert store.read_many(["k", "j"]) == {"k": "before"}


def sync_level(conn: sqlite3.Connection) -> int:
    # A fresh statement text each time: SQLite evaluates this pragma when it prepares it.
    level: int = conn.execute(f"PRAGMA synchronous -- {uuid.uuid4()}").fetchone()[0]
    return level


def test_each_write_runs_at_its_level_and_switches_only_on_change(store: LocalStorage) -> None:
    conn = store._pool.reader()
    pragmas: list[str] = []
    conn.set_trace_callback(lambda sql: pragmas.append(sql) if "synchronous =" in sql else None)
    try:
        for level, expected in [("strong", 2), ("eventual", 1), ("strong", 2), ("eventual", 1)]:
            for i in range(5):
                store.write(f"k{i}", i, consistency=level)
            store.write_many({"m": 1}, consistency=level)
            store.update("u", lambda v: v + 1, default=0, consistency=level)
            store.delete("m", consistency=level)
            assert sync_level(conn) == expected, level
    finally:
        conn.set_trace_callback(None)
    assert pragmas == [
        "PRAGMA synchronous = FULL",
        "PRAGMA synchronous = NORMAL",
        "PRAGMA synchronous = FULL",
        "PRAGMA synchronous = NORMAL",
    ]


def test_the_database_is_in_wal_mode(store: LocalStorage, raw: sqlite3.Connection) -> None:
    assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_ping_notices_a_missing_table(store: LocalStorage, raw: sqlite3.Connection) -> None:
    store.ping()
    raw.execute("DROP TABLE storage_kv")
    with pytest.raises(ConnectionFailed, match="has no storage_kv table"):
        store.ping()


def test_local_declares_ordered_keys_and_lists_in_code_point_order(tmp_path: Path) -> None:
    # storage migrate resumes after the last key copied only on a backend that declares it.
    with LocalStorage(LocalConfig(path=str(tmp_path / "s.db"))) as store:
        assert store.supports(Capability.ORDERED_KEYS)
        keys = ["b", "a", "\u00e9", "A", "\U0001f600", "ab"]
        store.write_many(dict.fromkeys(keys, 0))
        assert list(store.keys()) == sorted(keys)
