"""The change feed: every put and delete, in commit order, resumable from a cursor."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from storage_core.capabilities import Capability
from storage_core.coordination import Change
from storage_core.errors import CursorExpired, StorageError
from storage_core.storage import Storage
from storage_core.testing._base import ContractBase, MakeStore
from storage_core.testing._leases import require

FeedStore = Callable[..., Storage]
"""``feed_store(namespace=None, retention=None)``: a store of the test with the change feed on."""


def with_feed(store: Storage, retention: int | None = None) -> Storage:
    """Reopen *store* with the change feed on (configure() is allowed between close and initialize)."""
    store.close()
    store.configure(change_feed=True, change_retention=retention)
    store.initialize()
    return store


def kinds(changes: list[Change]) -> list[tuple[str, str]]:
    return [(c.key, c.kind) for c in changes]


class ChangesContract(ContractBase):
    """``watch(prefix, since=...)`` over a store opened with ``change_feed: true``."""

    @pytest.fixture
    def feed_store(self, make_store: MakeStore) -> FeedStore:
        def make(namespace: str | None = None, retention: int | None = None) -> Storage:
            store = make_store(namespace)
            require(store, Capability.CHANGE_FEED)
            return with_feed(store, retention)

        return make

    @pytest.fixture
    def feed(self, feed_store: FeedStore) -> Storage:
        return feed_store()

    def test_watch_sees_puts_and_deletes_in_order_with_versions(self, feed: Storage) -> None:
        watcher = feed.watch(timeout=0.5)
        feed.write("a", 1)
        feed.write_many({"b": 2, "c": 3})
        feed.delete("a")
        feed.delete("never-there")
        feed.update("b", lambda v: v + 1)
        feed.transaction(write={"d": 4}, delete=["c"])
        changes = list(watcher)
        assert kinds(changes) == [
            ("a", "put"),
            ("b", "put"),
            ("c", "put"),
            ("a", "delete"),
            ("b", "put"),
            ("d", "put"),
            ("c", "delete"),
        ]
        assert changes[-2].version == feed.read_entry("d").version
        assert changes[3].version is None
        assert len({c.cursor for c in changes}) == len(changes)
        assert all(isinstance(c.cursor, str) for c in changes)

    def test_watch_starts_from_now(self, feed: Storage) -> None:
        feed.write("before", 1)
        watcher = feed.watch(timeout=0.3)
        feed.write("after", 2)
        assert kinds(list(watcher)) == [("after", "put")]

    def test_watch_filters_by_prefix(self, feed: Storage) -> None:
        watcher = feed.watch("task_", timeout=0.3)
        feed.write_many({"task_1": 1, "other": 2, "task_2": 3})
        assert kinds(list(watcher)) == [("task_1", "put"), ("task_2", "put")]

    def test_watch_resumes_from_a_cursor_without_gap_or_duplicate(self, feed: Storage, feed_store: FeedStore) -> None:
        watcher = feed.watch(timeout=0.3)
        for i in range(5):
            feed.write(f"k{i}", i)
        seen = []
        for change in watcher:
            seen.append(change)
            if len(seen) == 2:
                break
        for i in range(5, 8):
            feed.write(f"k{i}", i)
        rest = list(feed_store().watch(since=seen[-1].cursor, timeout=0.3))
        assert [c.key for c in seen + rest] == [f"k{i}" for i in range(8)]

    def test_watch_wakes_for_a_write_from_another_handle(self, feed: Storage, feed_store: FeedStore) -> None:
        other = feed_store()
        watcher = feed.watch(timeout=5.0)

        def later() -> None:
            time.sleep(0.2)
            other.write("late", 1)

        thread = threading.Thread(target=later)
        started = time.monotonic()
        thread.start()
        change = next(watcher)
        waited = time.monotonic() - started
        thread.join()
        assert (change.key, change.kind) == ("late", "put")
        assert waited < 2.0, f"the watcher took {waited:.2f}s to see a write"

    def test_watch_timeout_ends_an_idle_watch(self, feed: Storage) -> None:
        started = time.monotonic()
        assert list(feed.watch(timeout=0.2)) == []
        assert 0.15 <= time.monotonic() - started < 2.0

    def test_watch_namespaces_stay_apart(self, feed: Storage, feed_store: FeedStore) -> None:
        from storage_core.testing._base import fresh_namespace  # noqa: PLC0415

        other = feed_store(fresh_namespace())
        watcher = feed.watch(timeout=0.3)
        other.write("a", 1)
        feed.write("b", 2)
        assert kinds(list(watcher)) == [("b", "put")]

    def test_watch_refuses_what_is_not_a_cursor(self, feed: Storage) -> None:
        for bad in ("not a cursor", "", "-1", "99999999999999999-0 x"):
            with pytest.raises(ValueError, match="cursor"):
                feed.watch(since=bad)
        with pytest.raises(ValueError, match="cursor str"):
            feed.watch(since=5)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="timeout"):
            feed.watch(timeout=-1)

    def test_watch_too_old_a_cursor_raises_cursor_expired(self, feed_store: FeedStore) -> None:
        store = feed_store(retention=10)
        watcher = store.watch(timeout=0.3)
        store.write("first", 0)
        cursor = next(watcher).cursor
        for batch in range(6):
            store.write_many({f"k{batch}-{i}": i for i in range(500)})
        with pytest.raises(CursorExpired, match="no longer kept"):
            store.watch(since=cursor)
        recent = list(store.watch(timeout=0.1))
        assert recent == []

    def test_watch_needs_the_feed_on(self, store: Storage) -> None:
        require(store, Capability.CHANGE_FEED)
        with pytest.raises(StorageError, match="change_feed: true"):
            store.watch()
