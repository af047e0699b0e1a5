"""Expiry: a key written with a ttl is absent to every call once it has expired."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from storage_core.errors import KeyNotFound, VersionConflict
from storage_core.storage import Storage
from storage_core.testing._base import ContractBase
from storage_core.testing._samples import INVALID_TTLS


def _read_absent(s: Storage) -> None:
    with pytest.raises(KeyNotFound):
        s.read("ttl")


def _read_entry_absent(s: Storage) -> None:
    with pytest.raises(KeyNotFound):
        s.read_entry("ttl")


def _update_uses_default(s: Storage) -> None:
    assert s.update("ttl", lambda v: [v], default="fresh") == ["fresh"]
    assert s.read("ttl") == ["fresh"]


def _update_without_default_raises(s: Storage) -> None:
    with pytest.raises(KeyNotFound):
        s.update("ttl", lambda v: v)


def _get_default(s: Storage) -> None:
    assert s.get("ttl", "expired") == "expired"


def _exists_false(s: Storage) -> None:
    assert s.exists("ttl") is False


def _read_many_empty(s: Storage) -> None:
    assert s.read_many(["ttl", "kept"]) == {"kept": "kept"}


def _keys_excludes(s: Storage) -> None:
    assert list(s.keys()) == ["kept"]
    assert list(s.keys("tt")) == []


def _delete_false(s: Storage) -> None:
    assert s.delete("ttl") is False


def _write_fresh(s: Storage) -> None:
    s.write("ttl", "again")
    assert s.read("ttl") == "again"


# Each way an expired key could leak back.
_ABSENT_TO: dict[str, Callable[[Storage], None]] = {
    "read": _read_absent,
    "get": _get_default,
    "exists": _exists_false,
    "read_entry": _read_entry_absent,
    "read_many": _read_many_empty,
    "keys": _keys_excludes,
    "delete": _delete_false,
    "update-default": _update_uses_default,
    "update-no-default": _update_without_default_raises,
    "write-again": _write_fresh,
}

_TTL_WRITES: dict[str, Callable[[Storage, str, Any, Any], None]] = {
    "write": lambda s, k, v, t: s.write(k, v, ttl=t),
    "write_many": lambda s, k, v, t: s.write_many({k: v, f"{k}-2": v}, ttl=t),
    "update": lambda s, k, v, t: s.update(k, lambda _: v, default=None, ttl=t),
}


class ExpiryContract(ContractBase):
    """``ttl`` in seconds; expired keys are absent everywhere; a write without ttl clears it."""

    @pytest.mark.parametrize("operation", list(_ABSENT_TO.values()), ids=list(_ABSENT_TO))
    def test_expired_key_is_absent(self, store: Storage, operation: Callable[[Storage], None]) -> None:
        store.write("ttl", "soon gone", ttl=self.short_ttl)
        store.write("kept", "kept")
        self.expire()
        operation(store)

    @pytest.mark.parametrize("writer", list(_TTL_WRITES.values()), ids=list(_TTL_WRITES))
    def test_ttl_key_is_present_before_expiry(
        self, store: Storage, writer: Callable[[Storage, str, Any, Any], None]
    ) -> None:
        writer(store, "ttl", {"v": 1}, 60)
        assert store.read("ttl") == {"v": 1}
        assert store.exists("ttl")
        assert list(store.keys("ttl")) != []

    @pytest.mark.parametrize("writer", list(_TTL_WRITES.values()), ids=list(_TTL_WRITES))
    def test_ttl_key_expires(self, store: Storage, writer: Callable[[Storage, str, Any, Any], None]) -> None:
        writer(store, "ttl", "soon gone", self.short_ttl)
        self.expire()
        assert not store.exists("ttl")
        assert list(store.keys()) == []

    def test_float_ttl_is_accepted(self, store: Storage) -> None:
        store.write("ttl", 1, ttl=0.5 + 60)
        store.write("ttl-int", 1, ttl=60)
        assert store.read_many(["ttl", "ttl-int"]) == {"ttl": 1, "ttl-int": 1}

    def test_write_without_ttl_clears_expiry(self, store: Storage) -> None:
        store.write("key", "expiring", ttl=self.short_ttl)
        store.write("key", "forever")
        self.expire()
        assert store.read("key") == "forever"

    def test_write_many_without_ttl_clears_expiry(self, store: Storage) -> None:
        store.write("key", "expiring", ttl=self.short_ttl)
        store.write_many({"key": "forever"})
        self.expire()
        assert store.read("key") == "forever"

    def test_update_without_ttl_clears_expiry(self, store: Storage) -> None:
        store.write("key", 1, ttl=self.short_ttl)
        store.update("key", lambda v: v + 1)
        self.expire()
        assert store.read("key") == 2

    def test_new_ttl_replaces_old(self, store: Storage) -> None:
        store.write("key", "long", ttl=60)
        store.write("key", "short", ttl=self.short_ttl)
        self.expire()
        assert not store.exists("key")

    def test_ttl_applies_to_its_key_only(self, store: Storage) -> None:
        store.write("ttl", 1, ttl=self.short_ttl)
        store.write("forever", 2)
        self.expire()
        assert store.read_many(["ttl", "forever"]) == {"forever": 2}

    def test_conditional_write_on_expired_key_conflicts(self, store: Storage) -> None:
        store.write("ttl", 1, ttl=self.short_ttl)
        version = store.read_entry("ttl").version
        self.expire()
        with pytest.raises(VersionConflict):
            store.write("ttl", 2, if_version=version)
        assert not store.exists("ttl")

    @pytest.mark.parametrize("ttl", list(INVALID_TTLS.values()), ids=list(INVALID_TTLS))
    @pytest.mark.parametrize("writer", list(_TTL_WRITES.values()), ids=list(_TTL_WRITES))
    def test_invalid_ttl_is_refused(
        self, store: Storage, ttl: Any, writer: Callable[[Storage, str, Any, Any], None]
    ) -> None:
        with pytest.raises(ValueError, match="ttl"):
            writer(store, "key", "value", ttl)
        assert list(store.keys()) == [], "nothing may be written when the ttl is refused"

    def test_invalid_ttl_leaves_old_value(self, store: Storage) -> None:
        store.write("key", "old")
        with pytest.raises(ValueError, match="ttl"):
            store.write("key", "new", ttl=-1)
        assert store.read("key") == "old"
