"""Values: every JSON value reads back exactly; nothing else is ever written."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from storage_core.errors import SerializationError, StorageError
from storage_core.storage import Storage
from storage_core.testing._base import ContractBase
from storage_core.testing._samples import INVALID_VALUES, LARGE_VALUE, VALUES, same_json

_values = pytest.mark.parametrize("value", list(VALUES.values()), ids=list(VALUES))
_invalid = pytest.mark.parametrize("value", list(INVALID_VALUES.values()), ids=list(INVALID_VALUES))

# Every way to read a value back; a corrupt stored value must fail each the same way.
_READERS: dict[str, Callable[[Storage, str], Any]] = {
    "read": lambda s, k: s.read(k),
    "get": lambda s, k: s.get(k),
    "read_entry": lambda s, k: s.read_entry(k).value,
    "read_many": lambda s, k: s.read_many([k])[k],
    "update": lambda s, k: s.update(k, lambda v: v),
}
_readers = pytest.mark.parametrize("reader", list(_READERS.values()), ids=list(_READERS))


class ValuesContract(ContractBase):
    """Round trips of exact JSON, refusal of everything else before any I/O."""

    @_values
    @_readers
    def test_value_round_trips_exactly(self, store: Storage, value: Any, reader: Callable[[Storage, str], Any]) -> None:
        store.write("value", value)
        got = reader(store, "value")
        assert same_json(got, value), f"wrote {value!r:.200}, read back {got!r:.200}"

    @_values
    def test_write_many_round_trips_exactly(self, store: Storage, value: Any) -> None:
        store.write_many({"value": value})
        got = store.read_many(["value"])
        assert same_json(got.get("value"), value), f"wrote {value!r:.200}, read back {got!r:.200}"

    def test_large_value_round_trips(self, store: Storage) -> None:
        store.write("large", LARGE_VALUE)
        assert same_json(store.read("large"), LARGE_VALUE)

    def test_overwrite_replaces_value(self, store: Storage) -> None:
        store.write("key", {"a": 1, "b": 2})
        store.write("key", [3])
        assert same_json(store.read("key"), [3])

    def test_bool_is_not_int(self, store: Storage) -> None:
        store.write_many({"true": True, "one": 1, "float-one": 1.0, "zero": 0, "false": False})
        got = store.read_many(["true", "one", "float-one", "zero", "false"])
        assert [type(got[k]) for k in ("true", "one", "float-one", "zero", "false")] == [bool, int, float, int, bool]

    @_invalid
    def test_invalid_value_is_refused(self, store: Storage, value: Any) -> None:
        with pytest.raises(SerializationError) as info:
            store.write("bad", value)
        assert isinstance(info.value, ValueError)
        assert not store.exists("bad"), "a refused value must not be written"

    @_invalid
    def test_invalid_value_leaves_old_value(self, store: Storage, value: Any) -> None:
        store.write("key", {"old": True})
        with pytest.raises(SerializationError):
            store.write("key", value)
        assert same_json(store.read("key"), {"old": True})

    @_invalid
    def test_invalid_value_in_write_many_writes_none(self, store: Storage, value: Any) -> None:
        store.write("existing", "old")
        with pytest.raises(SerializationError):
            store.write_many({"a": 1, "existing": "new", "bad": value, "z": 2})
        assert store.read_many(["a", "existing", "bad", "z"]) == {"existing": "old"}

    @_invalid
    def test_invalid_value_from_update_leaves_old_value(self, store: Storage, value: Any) -> None:
        store.write("key", 1)
        with pytest.raises(SerializationError):
            store.update("key", lambda _: value)
        assert same_json(store.read("key"), 1)

    @_invalid
    def test_invalid_value_from_update_of_absent_key_writes_nothing(self, store: Storage, value: Any) -> None:
        with pytest.raises(SerializationError):
            store.update("key", lambda _: value, default=0)
        assert not store.exists("key")

    @_invalid
    def test_invalid_update_default_is_refused(self, store: Storage, value: Any) -> None:
        with pytest.raises(SerializationError):
            store.update("key", lambda v: 1, default=value)
        assert not store.exists("key")

    @pytest.mark.parametrize("data", [b"{not json", b"\xff\xfe\x00", b""], ids=["garbage", "not-utf8", "empty"])
    @_readers
    def test_corrupt_stored_value_names_key(
        self, store: Storage, data: bytes, reader: Callable[[Storage, str], Any]
    ) -> None:
        self.write_raw(store, "corrupt-key", data)
        with pytest.raises(SerializationError) as info:
            reader(store, "corrupt-key")
        assert "corrupt-key" in str(info.value), f"the error must name the key: {info.value}"

    def test_corrupt_stored_value_can_be_overwritten_and_deleted(self, store: Storage) -> None:
        self.write_raw(store, "corrupt", b"{not json")
        assert store.exists("corrupt")
        assert store.delete("corrupt") is True
        self.write_raw(store, "corrupt", b"{not json")
        store.write("corrupt", "fixed")
        assert store.read("corrupt") == "fixed"

    def test_serialization_error_is_storage_error(self, store: Storage) -> None:
        with pytest.raises(StorageError):
            store.write("bad", float("nan"))
