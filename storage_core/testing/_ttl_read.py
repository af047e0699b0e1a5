"""Reading expiries back (``Capability.READ_TTL``): what export and migrate copy with each value."""

from __future__ import annotations

import pytest

from storage_core.capabilities import Capability
from storage_core.errors import InvalidKey, KeyNotFound
from storage_core.storage import Storage
from storage_core.testing._base import ContractBase, MakeStore

# Slack between writing a ttl and reading it back: a slow CI box, a server round trip.
_READ_SLACK = 5.0


class TtlReadContract(ContractBase):
    """``ttl(key)`` and ``read_many_with_ttl(keys)``: seconds left, None for no expiry, absent when expired."""

    # Not autouse: StorageContract inherits this class, and an autouse fixture here would
    # skip every contract test of a backend lacking the capability, not just these.
    @pytest.fixture
    def timed_store(self, store: Storage) -> Storage:
        """The test's store, or a skip when the backend cannot report expiries."""
        if not store.supports(Capability.READ_TTL):
            pytest.skip(f"the {store.name} backend lacks {Capability.READ_TTL}")
        return store

    def test_ttl_is_the_seconds_left(self, timed_store: Storage) -> None:
        timed_store.write("k", "v", ttl=60)
        left = timed_store.ttl("k")
        assert left is not None
        assert 60 - _READ_SLACK < left <= 60

    def test_ttl_is_none_without_expiry(self, timed_store: Storage) -> None:
        timed_store.write("k", "v")
        assert timed_store.ttl("k") is None

    def test_ttl_follows_the_latest_write(self, timed_store: Storage) -> None:
        timed_store.write("k", "v", ttl=60)
        timed_store.write("k", "v")
        assert timed_store.ttl("k") is None
        timed_store.write_many({"k": "v"}, ttl=120)
        left = timed_store.ttl("k")
        assert left is not None
        assert left > 60

    def test_ttl_of_an_absent_key_raises(self, timed_store: Storage) -> None:
        with pytest.raises(KeyNotFound):
            timed_store.ttl("absent")

    def test_ttl_of_an_expired_key_raises(self, timed_store: Storage) -> None:
        timed_store.write("k", "v", ttl=self.short_ttl)
        self.expire()
        with pytest.raises(KeyNotFound):
            timed_store.ttl("k")

    def test_ttl_checks_the_key(self, timed_store: Storage) -> None:
        with pytest.raises(InvalidKey):
            timed_store.ttl("")

    def test_read_many_with_ttl_pairs_values_with_expiries(self, timed_store: Storage) -> None:
        timed_store.write("forever", {"a": 1})
        timed_store.write("expiring", [1, 2], ttl=60)
        timed_store.write("gone", "x", ttl=self.short_ttl)
        self.expire()
        found = timed_store.read_many_with_ttl(["forever", "expiring", "gone", "absent", "forever"])
        assert set(found) == {"forever", "expiring"}
        assert found["forever"] == ({"a": 1}, None)
        value, left = found["expiring"]
        assert value == [1, 2]
        assert left is not None
        assert 60 - _READ_SLACK - self.short_ttl - self.ttl_resolution < left <= 60

    def test_read_many_with_ttl_of_nothing_is_empty(self, timed_store: Storage) -> None:
        assert timed_store.read_many_with_ttl([]) == {}
        assert timed_store.read_many_with_ttl(["absent"]) == {}

    def test_read_many_with_ttl_refuses_a_lone_str(self, timed_store: Storage) -> None:
        with pytest.raises(InvalidKey, match="list of keys"):
            timed_store.read_many_with_ttl("key")

    def test_read_many_with_ttl_stays_in_its_namespace(self, timed_store: Storage, make_store: MakeStore) -> None:
        other = make_store(f"{timed_store.namespace}-other")
        other.write("k", "theirs", ttl=60)
        timed_store.write("k", "ours")
        assert timed_store.read_many_with_ttl(["k"]) == {"k": ("ours", None)}
        assert other.read_many_with_ttl(["k"])["k"][0] == "theirs"

    def test_read_many_with_ttl_reads_a_large_batch(self, timed_store: Storage) -> None:
        keys = [f"k{i:04}" for i in range(1200)]
        timed_store.write_many(dict.fromkeys(keys[::2], 1), ttl=60)
        timed_store.write_many(dict.fromkeys(keys[1::2], 2))
        found = timed_store.read_many_with_ttl(keys)
        assert len(found) == len(keys)
        assert all(found[k][0] == 1 and found[k][1] is not None for k in keys[::2])
        assert all(found[k] == (2, None) for k in keys[1::2])
