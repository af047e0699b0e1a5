"""Consistency: every write takes a level, by enum or by its config string."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from storage_core.consistency import Consistency
from storage_core.storage import Storage
from storage_core.testing._base import ContractBase, MakeStore
from storage_core.testing._samples import CONSISTENCY_LEVELS, INVALID_CONSISTENCY

_levels = pytest.mark.parametrize("level", list(CONSISTENCY_LEVELS.values()), ids=list(CONSISTENCY_LEVELS))

_WRITES: dict[str, Callable[[Storage, Any], None]] = {
    "write": lambda s, c: s.write("key", "new", consistency=c),
    "write-ttl": lambda s, c: s.write("key", "new", consistency=c, ttl=60),
    "write-if-version": lambda s, c: s.write("key", "new", consistency=c, if_version=s.read_entry("key").version),
    "write_many": lambda s, c: s.write_many({"key": "new", "other": "new"}, consistency=c),
    "update": lambda s, c: s.update("key", lambda _: "new", consistency=c),
}
_writes = pytest.mark.parametrize("operation", list(_WRITES.values()), ids=list(_WRITES))


class ConsistencyContract(ContractBase):
    """``consistency=`` on write, delete, write_many and update; bad levels are a ValueError."""

    def test_default_consistency_is_a_level(self, store: Storage) -> None:
        assert isinstance(store.default_consistency, Consistency)

    @_levels
    @_writes
    def test_write_at_level_is_readable(
        self, store: Storage, level: Consistency | str, operation: Callable[[Storage, Any], None]
    ) -> None:
        store.write("key", "old")
        operation(store, level)
        assert store.read("key") == "new"

    @_levels
    def test_delete_at_level(self, store: Storage, level: Consistency | str) -> None:
        store.write("key", 1)
        assert store.delete("key", consistency=level) is True
        assert not store.exists("key")
        assert store.delete("key", consistency=level) is False

    @_levels
    def test_level_is_visible_to_another_store(
        self, store: Storage, make_store: MakeStore, level: Consistency | str
    ) -> None:
        store.write("key", {"at": str(level)}, consistency=level)
        assert make_store().read("key") == {"at": str(level)}

    @pytest.mark.parametrize("level", list(INVALID_CONSISTENCY.values()), ids=list(INVALID_CONSISTENCY))
    @_writes
    def test_invalid_level_is_refused(
        self, store: Storage, level: Any, operation: Callable[[Storage, Any], None]
    ) -> None:
        store.write("key", "old")
        with pytest.raises(ValueError, match="consistency"):
            operation(store, level)
        assert store.read_many(["key", "other"]) == {"key": "old"}

    @pytest.mark.parametrize("level", list(INVALID_CONSISTENCY.values()), ids=list(INVALID_CONSISTENCY))
    def test_invalid_level_on_delete_is_refused(self, store: Storage, level: Any) -> None:
        store.write("key", "old")
        with pytest.raises(ValueError, match="consistency"):
            store.delete("key", consistency=level)
        assert store.read("key") == "old"
