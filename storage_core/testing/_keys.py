"""Keys: absent keys, deletion, what is a key, and listing keys by prefix."""

from __future__ import annotations

import gc
import sys
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from storage_core.consistency import Consistency
from storage_core.errors import InvalidKey, KeyNotFound, StorageError
from storage_core.storage import Storage
from storage_core.testing._base import ContractBase, MakeStore, clause
from storage_core.testing._samples import INVALID_KEYS, LIMIT_KEYS, LISTING_KEYS, LISTING_PREFIXES, PLAIN_KEYS
from storage_core.testing._workers import plus_one

# Every public method that takes a key, called with one bad key (next to good ones for bulk).
_KEY_METHODS: dict[str, Callable[[Storage, Any], object]] = {
    "read": lambda s, k: s.read(k),
    "get": lambda s, k: s.get(k),
    "exists": lambda s, k: s.exists(k),
    "delete": lambda s, k: s.delete(k),
    "write": lambda s, k: s.write(k, 1),
    "write-if-version": lambda s, k: s.write(k, 1, if_version="0" * 40),
    "read_entry": lambda s, k: s.read_entry(k),
    "update": lambda s, k: s.update(k, plus_one, default=0),
    "read_many": lambda s, k: s.read_many(["good", k]),
    "read_many-generator": lambda s, k: s.read_many(x for x in ["good", k]),
    "write_many": lambda s, k: s.write_many({"good": 1, k: 2}),
}


class KeysContract(ContractBase):
    """Absent keys, deletion, key validity and ``keys(prefix)``."""

    # -- absent keys ---------------------------------------------------------------------

    def test_read_absent_raises_key_not_found(self, store: Storage) -> None:
        with pytest.raises(KeyNotFound) as info:
            store.read("absent-key")
        assert isinstance(info.value, KeyError)
        assert isinstance(info.value, StorageError)
        assert "absent-key" in str(info.value), f"the error must name the key: {info.value}"

    def test_read_absent_can_be_caught_as_key_error(self, store: Storage) -> None:
        with pytest.raises(KeyError):
            store.read("absent-key")

    def test_get_absent_returns_default(self, store: Storage) -> None:
        sentinel = {"default": True}
        assert store.get("absent-key", sentinel) is sentinel
        assert store.get("absent-key", default=0) == 0

    def test_get_absent_defaults_to_none(self, store: Storage) -> None:
        assert store.get("absent-key") is None

    def test_get_present_ignores_default(self, store: Storage) -> None:
        store.write("key", False)
        assert store.get("key", "default") is False

    def test_exists_absent_is_false(self, store: Storage) -> None:
        assert store.exists("absent-key") is False

    def test_exists_present_is_true(self, store: Storage) -> None:
        store.write("key", None)
        assert store.exists("key") is True

    def test_delete_absent_returns_false(self, store: Storage) -> None:
        assert store.delete("absent-key") is False

    def test_read_entry_absent_raises_key_not_found(self, store: Storage) -> None:
        with pytest.raises(KeyNotFound) as info:
            store.read_entry("absent-key")
        assert "absent-key" in str(info.value)

    def test_null_value_is_present(self, store: Storage) -> None:
        store.write("null", None)
        assert store.read("null") is None
        assert store.get("null", "default") is None
        assert store.read_many(["null"]) == {"null": None}
        assert list(store.keys()) == ["null"]

    # -- deletion ------------------------------------------------------------------------

    def test_delete_present_returns_true_then_absent(self, store: Storage) -> None:
        store.write("key", 1)
        assert store.delete("key") is True
        assert store.exists("key") is False
        assert store.get("key", "gone") == "gone"
        with pytest.raises(KeyNotFound):
            store.read("key")
        assert store.delete("key") is False

    def test_delete_leaves_other_keys(self, store: Storage) -> None:
        store.write_many({"a": 1, "ab": 2, "b": 3})
        store.delete("a")
        assert store.read_many(["a", "ab", "b"]) == {"ab": 2, "b": 3}

    def test_deleted_key_can_be_written_again(self, store: Storage) -> None:
        store.write("key", 1)
        store.delete("key")
        store.write("key", 2)
        assert store.read("key") == 2

    # -- what is a key -------------------------------------------------------------------

    @pytest.mark.parametrize("key", list(INVALID_KEYS.values()), ids=list(INVALID_KEYS))
    @pytest.mark.parametrize("method", list(_KEY_METHODS.values()), ids=list(_KEY_METHODS))
    def test_invalid_key_is_refused(self, store: Storage, key: Any, method: Callable[[Storage, Any], object]) -> None:
        with pytest.raises(InvalidKey) as info:
            method(store, key)
        assert isinstance(info.value, ValueError)
        assert list(store.keys()) == [], "nothing may be written when a key is refused"

    def test_invalid_keys_prefix_is_refused(self, store: Storage) -> None:
        with pytest.raises(InvalidKey):
            store.keys(1)  # type: ignore[arg-type]

    @pytest.mark.parametrize("key", list(LIMIT_KEYS.values()), ids=list(LIMIT_KEYS))
    def test_key_of_exactly_1024_bytes_is_accepted(self, store: Storage, key: str) -> None:
        assert len(key.encode("utf-8")) == 1024
        store.write(key, "at the limit")
        assert store.read(key) == "at the limit"
        assert list(store.keys()) == [key]
        assert store.delete(key) is True

    @pytest.mark.parametrize("key", list(PLAIN_KEYS.values()), ids=list(PLAIN_KEYS))
    def test_odd_key_is_plain_data(self, store: Storage, key: str) -> None:
        store.write(key, {"key": key})
        assert store.read(key) == {"key": key}
        assert store.exists(key)
        assert list(store.keys()) == [key]
        assert list(store.keys(key)) == [key]
        assert store.read_many([key]) == {key: {"key": key}}
        assert store.delete(key) is True
        assert list(store.keys()) == []

    def test_odd_keys_are_distinct(self, store: Storage) -> None:
        items = {key: i for i, key in enumerate(PLAIN_KEYS.values())}
        store.write_many(items)
        assert store.read_many(items) == items
        assert sorted(store.keys()) == sorted(items)

    def test_keys_differing_only_in_case_are_distinct(self, store: Storage) -> None:
        store.write_many({"key": 1, "KEY": 2, "Key": 3})
        assert store.read_many(["key", "KEY", "Key"]) == {"key": 1, "KEY": 2, "Key": 3}

    def test_keys_differing_only_in_normalization_are_distinct(self, store: Storage) -> None:
        composed, decomposed = "\u00e9", "e\u0301"
        store.write_many({composed: "composed", decomposed: "decomposed"})
        assert store.read(composed) == "composed"
        assert store.read(decomposed) == "decomposed"

    def test_keys_with_trailing_space_are_distinct(self, store: Storage) -> None:
        store.write_many({"key": 1, "key ": 2, " key": 3})
        assert store.read_many(["key", "key ", " key"]) == {"key": 1, "key ": 2, " key": 3}

    # -- listing -------------------------------------------------------------------------

    def test_keys_returns_an_iterator(self, store: Storage) -> None:
        store.write("key", 1)
        listing = store.keys()
        assert isinstance(listing, Iterator), f"keys() must stream, got {type(listing).__name__}"
        assert not isinstance(listing, list | tuple | set)
        assert list(listing) == ["key"]

    @clause("_iter_keys streams: it yields its first key before it has read the whole keyspace", primitive="_iter_keys")
    def test_iter_keys_yields_before_reading_every_key(self, store: Storage) -> None:
        # The template wraps _iter_keys in a generator of its own, so keys() would look lazy
        # whatever the backend does: the primitive is asked directly, and what it allocated
        # before its first key is held against the size of a list of every key.
        count, pad = self.streaming_keys, "p" * 100
        keys = [f"stream/{i:06d}/{pad}" for i in range(count)]
        for start in range(0, count, 1000):
            store.write_many(dict.fromkeys(keys[start : start + 1000], 0), consistency=Consistency.EVENTUAL)
        whole = sys.getsizeof(keys) + sum(map(sys.getsizeof, keys))
        try:
            gc.collect()
            tracemalloc.start()
            try:
                listing = store._iter_keys(store._prefix + "stream/")
                first = next(iter(listing))
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
            assert not isinstance(listing, list | tuple | set | dict), (
                f"_iter_keys returned a whole {type(listing).__name__}: make it a generator that pages"
            )
            assert first.removeprefix(store._prefix) in keys, f"_iter_keys yielded {first!r}, not a key written"
            assert peak < whole / 4, (
                f"_iter_keys allocated {peak} bytes before yielding its first key, while a list of the {count} "
                f"keys takes {whole}: it must page through the keys, never build them all first"
            )
            close = getattr(listing, "close", None)
            if close is not None:
                close()
        finally:
            for key in keys:
                store.delete(key, consistency=Consistency.EVENTUAL)

    def test_keys_of_empty_namespace_is_empty(self, store: Storage) -> None:
        assert list(store.keys()) == []

    @pytest.mark.parametrize("prefix", LISTING_PREFIXES, ids=[repr(p) for p in LISTING_PREFIXES])
    def test_keys_prefix_matches_literally(self, store: Storage, make_store: MakeStore, prefix: str) -> None:
        store.write_many(dict.fromkeys(LISTING_KEYS, 0))
        make_store(f"{store.namespace}-other").write_many(dict.fromkeys(LISTING_KEYS, 1))
        expected = sorted(k for k in LISTING_KEYS if k.startswith(prefix))
        got = list(store.keys(prefix))
        assert sorted(got) == expected, f"keys({prefix!r})"
        assert len(got) == len(set(got)), f"keys({prefix!r}) yielded duplicates: {got}"

    def test_keys_prefix_keyword(self, store: Storage) -> None:
        store.write_many({"task_1": 1, "task_2": 2, "other": 3})
        assert sorted(store.keys(prefix="task_")) == ["task_1", "task_2"]

    def test_keys_lists_many_keys(self, store: Storage) -> None:
        items = {f"many/{i:04d}": i for i in range(1000)}
        store.write_many(items)
        store.write("other", 1)
        got = list(store.keys("many/"))
        assert len(got) == 1000
        assert sorted(got) == sorted(items)
        assert len(list(store.keys())) == 1001

    def test_keys_can_be_abandoned_early(self, store: Storage) -> None:
        store.write_many({f"k{i}": i for i in range(100)})
        listing = store.keys()
        first = next(listing)
        assert first.startswith("k")
        del listing
        store.write("after", 1)
        assert store.read("after") == 1

    def test_keys_with_unencodable_prefix_is_refused(self, store: Storage) -> None:
        store.write("key", 1)
        with pytest.raises(InvalidKey, match="lone surrogate"):
            store.keys("key\ud800")

    def test_keys_with_prefix_longer_than_any_key_finds_nothing(self, store: Storage) -> None:
        store.write("k" * 1024, 1)
        assert list(store.keys("k" * 1025)) == []

    def test_deleting_while_listing(self, store: Storage) -> None:
        items = {f"doomed/{i:03d}": i for i in range(300)}
        store.write_many({**items, "kept": 1})
        seen = []
        for key in store.keys("doomed/"):
            seen.append(key)
            assert store.delete(key) is True
        assert sorted(seen) == sorted(items), "a key present throughout the listing must be yielded"
        assert list(store.keys()) == ["kept"]

    def test_writing_while_listing(self, store: Storage) -> None:
        store.write_many({f"src/{i:03d}": i for i in range(300)})
        for key in store.keys("src/"):
            store.write(f"dst/{key}", store.read(key))
        assert len(list(store.keys("dst/"))) == 300
        assert store.read("dst/src/299") == 299

    def test_deleted_key_leaves_keys(self, store: Storage) -> None:
        store.write_many({"a": 1, "b": 2, "c": 3})
        store.delete("b")
        assert sorted(store.keys()) == ["a", "c"]
