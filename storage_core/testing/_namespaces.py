"""Namespaces: a transparent key prefix, and a wall between namespaces of one store."""

from __future__ import annotations

import pytest

from storage_core.errors import KeyNotFound
from storage_core.storage import Storage
from storage_core.testing._base import ContractBase, MakeStore


class NamespacesContract(ContractBase):
    """Two namespaces in one store never see each other's keys."""

    def test_factory_applies_namespace(self, store: Storage, namespace: str) -> None:
        assert store.namespace == namespace

    def test_same_namespace_shares_data(self, store: Storage, make_store: MakeStore) -> None:
        other = make_store()
        store.write("shared", {"from": "first"})
        assert other.read("shared") == {"from": "first"}
        other.delete("shared")
        assert not store.exists("shared")

    def test_other_namespace_cannot_read(self, store: Storage, make_store: MakeStore) -> None:
        other = make_store(f"{store.namespace}-other")
        store.write("key", "mine")
        with pytest.raises(KeyNotFound):
            other.read("key")
        assert other.get("key") is None
        assert other.exists("key") is False
        assert other.read_many(["key"]) == {}

    def test_other_namespace_cannot_list(self, store: Storage, make_store: MakeStore) -> None:
        other = make_store(f"{store.namespace}-other")
        store.write_many({"a": 1, "b": 2})
        other.write("c", 3)
        assert sorted(store.keys()) == ["a", "b"]
        assert list(other.keys()) == ["c"]

    def test_other_namespace_cannot_delete(self, store: Storage, make_store: MakeStore) -> None:
        other = make_store(f"{store.namespace}-other")
        store.write("key", "mine")
        assert other.delete("key") is False
        assert store.read("key") == "mine"

    def test_same_key_in_two_namespaces_holds_two_values(self, store: Storage, make_store: MakeStore) -> None:
        other = make_store(f"{store.namespace}-other")
        store.write("key", "mine")
        other.write_many({"key": "theirs"})
        other.update("counter", lambda v: v + 1, default=10)
        store.update("counter", lambda v: v + 1, default=0)
        assert store.read_many(["key", "counter"]) == {"key": "mine", "counter": 1}
        assert other.read_many(["key", "counter"]) == {"key": "theirs", "counter": 11}

    def test_prefix_of_namespace_does_not_leak(self, store: Storage, make_store: MakeStore) -> None:
        longer = make_store(f"{store.namespace}x")
        longer.write("key", "longer")
        assert list(store.keys()) == []
        assert not store.exists("key")

    @pytest.mark.parametrize("suffix", ["%", "_", "*", "[x]", "?", "\\", "'"])
    def test_namespace_with_pattern_characters_is_isolated(
        self, make_store: MakeStore, namespace: str, suffix: str
    ) -> None:
        special = make_store(f"{namespace}{suffix}")
        plain = make_store(f"{namespace}a")
        plain.write("key", "plain")
        special.write("key", "special")
        assert list(special.keys()) == ["key"]
        assert special.read("key") == "special"
        assert plain.read("key") == "plain"

    def test_keys_are_yielded_without_namespace(self, store: Storage) -> None:
        store.write_many({"task_1": 1, "task_2": 2})
        assert sorted(store.keys()) == ["task_1", "task_2"]
        assert sorted(store.keys("task_")) == ["task_1", "task_2"]

    def test_no_namespace_sees_prefixed_key(self, store: Storage, make_store: MakeStore, namespace: str) -> None:
        bare = make_store("")
        assert bare.namespace == ""
        store.write("key", {"v": 1})
        assert bare.read(f"{namespace}:key") == {"v": 1}
        assert sorted(bare.keys(f"{namespace}:")) == [f"{namespace}:key"]

    def test_no_namespace_writes_into_namespace(self, store: Storage, make_store: MakeStore, namespace: str) -> None:
        bare = make_store("")
        bare.write(f"{namespace}:from-bare", "hello")
        assert store.read("from-bare") == "hello"
        assert list(store.keys()) == ["from-bare"]
