"""Bulk: ``read_many`` and ``write_many`` behave like loops of single calls, in fewer trips."""

from __future__ import annotations

import threading

import pytest

from storage_core.capabilities import Capability
from storage_core.consistency import Consistency
from storage_core.storage import Storage
from storage_core.testing._base import ContractBase, clause


class BulkContract(ContractBase):
    """``read_many`` returns what exists; ``write_many`` writes all or, when refused, none."""

    def test_read_many_returns_only_existing_keys(self, store: Storage) -> None:
        store.write_many({"a": 1, "b": None})
        assert store.read_many(["a", "b", "missing"]) == {"a": 1, "b": None}

    def test_read_many_of_nothing_is_empty(self, store: Storage) -> None:
        assert store.read_many([]) == {}

    def test_read_many_of_only_missing_keys_is_empty(self, store: Storage) -> None:
        assert store.read_many(["x", "y"]) == {}

    def test_read_many_handles_duplicates(self, store: Storage) -> None:
        store.write("a", 1)
        assert store.read_many(["a", "a", "missing", "missing", "a"]) == {"a": 1}

    @pytest.mark.parametrize("kind", ["generator", "tuple", "set", "dict-keys"])
    def test_read_many_accepts_any_iterable(self, store: Storage, kind: str) -> None:
        store.write_many({"a": 1, "b": 2})
        keys = ["a", "b", "c"]
        iterables = {
            "generator": (k for k in keys),
            "tuple": tuple(keys),
            "set": set(keys),
            "dict-keys": dict.fromkeys(keys).keys(),
        }
        assert store.read_many(iterables[kind]) == {"a": 1, "b": 2}

    def test_write_many_writes_all(self, store: Storage) -> None:
        items = {"a": 1, "b": [2], "c": {"three": 3}, "d": None}
        store.write_many(items)
        assert store.read_many(items) == items
        assert sorted(store.keys()) == ["a", "b", "c", "d"]

    def test_write_many_overwrites(self, store: Storage) -> None:
        store.write_many({"a": 1, "b": 2})
        store.write_many({"b": 20, "c": 30})
        assert store.read_many(["a", "b", "c"]) == {"a": 1, "b": 20, "c": 30}

    def test_write_many_of_nothing_is_a_no_op(self, store: Storage) -> None:
        store.write("a", 1)
        store.write_many({})
        assert list(store.keys()) == ["a"]
        assert store.read("a") == 1

    def test_write_many_then_read_many_round_trips_100_keys(self, store: Storage) -> None:
        items = {f"item-{i}": {"i": i, "tags": [str(i)] * (i % 5)} for i in range(100)}
        store.write_many(items)
        assert store.read_many(list(items)) == items
        assert store.read_many(reversed(list(items))) == items

    def test_read_many_after_delete(self, store: Storage) -> None:
        store.write_many({"a": 1, "b": 2})
        store.delete("a")
        assert store.read_many(["a", "b"]) == {"b": 2}

    def test_bulk_calls_handle_thousands_of_keys(self, store: Storage) -> None:
        # More keys than one SQL statement may bind or one command should carry.
        items = {f"bulk-{i}": i for i in range(0, 5000, 2)}
        store.write_many(items)
        got = store.read_many(f"bulk-{i}" for i in range(5000))
        assert got == items

    def test_write_many_value_has_a_usable_version(self, store: Storage) -> None:
        store.write_many({"a": 1, "b": 2})
        store.write("a", 10, if_version=store.read_entry("a").version)
        assert store.read_many(["a", "b"]) == {"a": 10, "b": 2}

    @clause(
        "write_many is atomic where the backend declares Capability.ATOMIC_WRITE_MANY: no reader sees a part of it",
        primitive="_write_many",
    )
    def test_write_many_is_atomic_where_declared(self, store: Storage) -> None:
        self.require_capability(store, Capability.ATOMIC_WRITE_MANY)
        # Each batch sets a then b to i. A reader reading a, then b, must find b >= a: seeing
        # the new a with the old b means it saw half a batch (the default loop of _write).
        store.write_many({"a": 0, "b": 0})
        stop, torn = threading.Event(), []

        def read() -> None:
            while not stop.is_set():
                a = store.read("a")
                b = store.read("b")
                if b < a:
                    torn.append((a, b))
                    return

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            for i in range(1, self.atomic_batches + 1):
                store.write_many({"a": i, "b": i}, consistency=Consistency.EVENTUAL)
                if torn:
                    break
        finally:
            stop.set()
            reader.join()
        assert not torn, (
            f"a reader saw a={torn[0][0]} with b={torn[0][1]}: half of one write_many; make _write_many one "
            "transaction, or do not declare ATOMIC_WRITE_MANY"
        )
