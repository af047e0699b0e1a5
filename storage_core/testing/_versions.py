"""Versions: ``read_entry`` and ``write(if_version=...)`` make compare-and-set exact."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from storage_core.errors import VersionConflict
from storage_core.storage import Entry, Storage
from storage_core.testing._base import ContractBase, MakeStore


class VersionsContract(ContractBase):
    """A conditional write succeeds only on the version it names, and exactly one racer wins."""

    def test_read_entry_returns_value_and_str_version(self, store: Storage) -> None:
        store.write("key", {"a": [1, 2]})
        entry = store.read_entry("key")
        assert isinstance(entry, Entry)
        assert entry.value == {"a": [1, 2]}
        assert isinstance(entry.version, str)
        assert entry.version

    def test_write_with_current_version_succeeds(self, store: Storage) -> None:
        store.write("key", 1)
        entry = store.read_entry("key")
        store.write("key", 2, if_version=entry.version)
        after = store.read_entry("key")
        assert after.value == 2
        assert after.version != entry.version

    def test_version_from_another_store_is_accepted(self, store: Storage, make_store: MakeStore) -> None:
        store.write("key", 1)
        version = make_store().read_entry("key").version
        store.write("key", 2, if_version=version)
        assert store.read("key") == 2

    def test_write_with_stale_version_conflicts(self, store: Storage) -> None:
        store.write("key", "first")
        stale = store.read_entry("key").version
        store.write("key", "second")
        with pytest.raises(VersionConflict):
            store.write("key", "third", if_version=stale)
        assert store.read("key") == "second"

    def test_version_is_single_use(self, store: Storage) -> None:
        store.write("key", 0)
        version = store.read_entry("key").version
        store.write("key", 1, if_version=version)
        with pytest.raises(VersionConflict):
            store.write("key", 2, if_version=version)
        assert store.read("key") == 1

    def test_if_version_on_absent_key_conflicts(self, store: Storage) -> None:
        store.write("other", 1)
        version = store.read_entry("other").version
        with pytest.raises(VersionConflict):
            store.write("key", 1, if_version=version)
        assert not store.exists("key")

    def test_if_version_on_deleted_key_conflicts(self, store: Storage) -> None:
        store.write("key", 1)
        version = store.read_entry("key").version
        store.delete("key")
        with pytest.raises(VersionConflict):
            store.write("key", 1, if_version=version)
        assert not store.exists("key")

    def test_made_up_version_conflicts(self, store: Storage) -> None:
        store.write("key", 1)
        with pytest.raises(VersionConflict):
            store.write("key", 2, if_version="not-a-version")
        assert store.read("key") == 1

    @pytest.mark.parametrize("version", [1, b"abc", 1.5, ["v"]], ids=["int", "bytes", "float", "list"])
    def test_non_str_version_is_refused(self, store: Storage, version: Any) -> None:
        store.write("key", 1)
        with pytest.raises(ValueError, match="if_version"):
            store.write("key", 2, if_version=version)
        assert store.read("key") == 1

    def test_conditional_write_keeps_ttl_argument(self, store: Storage) -> None:
        store.write("key", 1)
        store.write("key", 2, if_version=store.read_entry("key").version, ttl=self.short_ttl)
        self.expire()
        assert not store.exists("key")

    def test_one_of_racing_conditional_writes_wins(self, store: Storage) -> None:
        store.write("key", "start")
        version = store.read_entry("key").version
        workers = self.thread_workers
        start = threading.Barrier(workers)

        def attempt(me: int) -> bool:
            start.wait(self.process_timeout)
            try:
                store.write("key", me, if_version=version)
            except VersionConflict:
                return False
            return True

        with ThreadPoolExecutor(workers) as pool:
            won = list(pool.map(attempt, range(workers), timeout=self.process_timeout))
        assert won.count(True) == 1, f"exactly one conditional write may win, {won.count(True)} did"
        assert store.read("key") == won.index(True)
