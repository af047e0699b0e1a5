"""Read-only mode: every write refused with ``ReadOnly`` before it reaches the store, reads unchanged."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from storage_core.capabilities import Capability
from storage_core.errors import ReadOnly
from storage_core.storage import Storage
from storage_core.testing._base import ContractBase, MakeStore

# Each public write, called on a read-only store.
WRITES: dict[str, Callable[[Storage, str], Any]] = {
    "write": lambda s, v: s.write("kept", "changed"),
    "write if_version": lambda s, v: s.write("kept", "changed", if_version=v),
    "write of a new key": lambda s, v: s.write("new", 1),
    "write_many": lambda s, v: s.write_many({"kept": "changed", "new": 1}),
    "delete": lambda s, v: s.delete("kept"),
    "update": lambda s, v: s.update("kept", lambda old: "changed"),
    "update of a new key": lambda s, v: s.update("new", lambda old: 1, default=0),
    "transaction": lambda s, v: s.transaction(expect={"kept": v}, write={"kept": "changed"}),
    "acquire_lease": lambda s, v: s.acquire_lease("new", ttl=5.0),
}
# What a write needs beyond the core contract; without it the backend raises NotSupported instead.
NEEDS = {"transaction": Capability.TRANSACTIONS, "acquire_lease": Capability.LEASES}


class ReadOnlyContract(ContractBase):
    """A second store on the same backing store, reopened with ``configure(read_only=True)``.

    The writer stays open meanwhile, so a backend whose data lives only while a store is
    open (``persistent = False``) is checked too.
    """

    def _reopen_read_only(self, make_store: MakeStore) -> tuple[Storage, str]:
        writer = make_store()
        writer.write("kept", "original")
        version = writer.read_entry("kept").version
        store = make_store(writer.namespace)
        store.close()
        store.configure(read_only=True)
        store.initialize()
        return store, version

    @pytest.mark.parametrize("operation", sorted(WRITES))
    def test_every_write_is_refused_and_changes_nothing(self, make_store: MakeStore, operation: str) -> None:
        store, version = self._reopen_read_only(make_store)
        if operation in NEEDS and not store.supports(NEEDS[operation]):
            pytest.skip(f"the {store.name} backend lacks {NEEDS[operation]}")
        with pytest.raises(ReadOnly, match=r"refused: .*read-only"):
            WRITES[operation](store, version)
        assert store.read("kept") == "original"
        assert not store.exists("new")
        writable = make_store(store.namespace)
        assert writable.read_entry("kept").version == version

    def test_reads_work_as_before(self, make_store: MakeStore) -> None:
        store, version = self._reopen_read_only(make_store)
        assert store.read_only
        assert "read-only" in repr(store)
        assert store.read_entry("kept").version == version
        assert store.get("absent", default=3) == 3
        assert store.read_many(["kept", "absent"]) == {"kept": "original"}
        assert list(store.keys()) == ["kept"]
        assert store.exists("kept")
