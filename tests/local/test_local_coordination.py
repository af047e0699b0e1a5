"""Coordination on the local backend: its clock, its tables, a lease from another file, cross-process wake-ups."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from storage_core import InvalidArgument, LeaseLost
from storage_local import clock

from .conftest import MakeStore


def test_a_lease_from_another_file_is_refused(tmp_path: Path, make_store: MakeStore) -> None:
    mine, other = make_store(tmp_path / "mine.db"), make_store(tmp_path / "other.db")
    foreign = other.acquire_lease("job", ttl=30.0)
    assert foreign is not None
    assert mine.acquire_lease("job", ttl=30.0) is not None, "each file has its own leases"
    for attempt in (
        lambda: mine.write("a", 1, fence=foreign),
        lambda: mine.renew_lease(foreign, ttl=30.0),
        lambda: mine.release_lease(foreign),
    ):
        with pytest.raises(InvalidArgument, match="issued by another store or namespace"):
            attempt()
    assert not mine.exists("a")


def test_the_store_id_is_kept_in_the_file(db_path: Path, make_store: MakeStore) -> None:
    lease = make_store().acquire_lease("job", ttl=30.0)
    assert lease is not None
    again = make_store()  # another handle, as another process would open
    again.write("a", 1, fence=lease)
    assert again.release_lease(lease) is True


def test_a_wall_clock_jump_moves_no_lease(make_store: MakeStore, monkeypatch: pytest.MonkeyPatch) -> None:
    store = make_store()
    lease = store.acquire_lease("job", ttl=30.0)
    assert lease is not None
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 86400)  # an NTP step of a day
    assert store.acquire_lease("job", ttl=30.0) is None, "a day on the wall clock must not expire it"
    store.write("a", 1, fence=lease)
    monkeypatch.setattr(time, "time", lambda: real() - 86400)
    store.write("a", 2, fence=lease)


def test_a_lease_from_an_earlier_boot_is_expired(make_store: MakeStore, monkeypatch: pytest.MonkeyPatch) -> None:
    store = make_store()
    before = store.acquire_lease("job", ttl=3600.0)
    assert before is not None
    monkeypatch.setattr(clock, "BOOT_ID", "another-boot")
    monkeypatch.setattr(clock, "now", lambda: 1.0)  # the monotonic clock starts again after a reboot
    after = store.acquire_lease("job", ttl=3600.0)
    assert after is not None, "its holder died with the earlier boot"
    assert after.token > before.token
    with pytest.raises(LeaseLost):
        store.write("a", 1, fence=before)
    store.write("a", 1, fence=after)


def test_expires_at_is_in_the_monotonic_clock(make_store: MakeStore) -> None:
    lease = make_store().acquire_lease("job", ttl=30.0)
    assert lease is not None
    assert abs(lease.expires_at - (time.monotonic() + 30.0)) < 5.0


def test_lease_and_feed_tables_appear_only_when_used(db_path: Path, make_store: MakeStore) -> None:
    store = make_store()
    store.write("a", 1)

    def tables() -> set[str]:
        with sqlite3.connect(db_path) as raw:
            found = {row[0] for row in raw.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        raw.close()
        return found

    assert tables() == {"storage_kv"}
    store.transaction(write={"b": 2})
    assert {"storage_leases", "storage_changes", "storage_meta"} <= tables()


def test_a_released_name_keeps_its_counter_row(db_path: Path, make_store: MakeStore) -> None:
    store = make_store()
    for _ in range(3):
        lease = store.acquire_lease("job", ttl=30.0)
        assert lease is not None
        store.release_lease(lease)
    with sqlite3.connect(db_path) as raw:
        rows = raw.execute("SELECT name, token, expires_at FROM storage_leases").fetchall()
    raw.close()
    assert rows == [("job", 3, None)]


def test_a_watcher_wakes_for_a_write_from_another_process(db_path: Path, make_store: MakeStore) -> None:
    store = make_store()
    store.close()
    store.configure(change_feed=True)
    store.initialize()
    watcher = store.watch(timeout=10.0)
    child = textwrap.dedent(
        f"""
        import time
        from storage_core import open_storage
        store = open_storage({{"backend": "local", "change_feed": True, "local": {{"path": {str(db_path)!r}}}}})
        time.sleep(0.3)
        print(time.monotonic(), flush=True)
        store.write("from-child", 1)
        store.close()
        """
    )
    with subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, text=True) as process:
        change = next(watcher)
        seen = time.monotonic()
        assert process.stdout is not None
        written = float(process.stdout.readline())
    assert (change.key, change.kind) == ("from-child", "put")
    assert seen - written < 0.5, f"the watcher took {seen - written:.3f}s to see another process's write"


def test_a_cursor_of_another_shape_or_from_the_future_is_refused(make_store: MakeStore) -> None:
    store = make_store()
    store.close()
    store.configure(change_feed=True)
    store.initialize()
    with pytest.raises(InvalidArgument, match="not a change-feed cursor of the local backend"):
        store.watch(since="1700000000000-0")
    with pytest.raises(InvalidArgument, match="ahead of the change feed"):
        store.watch(since="12345")


def test_the_clock_falls_back_to_the_boot_time_without_proc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clock, "_BOOT_ID_FILE", "/nonexistent/boot_id")
    assert clock._boot_id() == clock._boot_id()
    assert clock._boot_id() != clock.BOOT_ID
