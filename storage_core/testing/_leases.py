"""Leases: one holder at a time, tokens that only grow, and fenced writes judged by the store."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import ClassVar

import pytest

from storage_core.capabilities import Capability
from storage_core.coordination import Lease
from storage_core.errors import InvalidArgument, LeaseLost, VersionConflict
from storage_core.storage import Storage
from storage_core.testing._base import ContractBase, MakeStore


def require(store: Storage, capability: Capability) -> None:
    """Skip the calling test, saying why, when the backend does not declare *capability*."""
    if not store.supports(capability):
        pytest.skip(f"the {store.name!r} backend does not declare Capability.{capability.name} ({capability.value})")


def _stale(value: object) -> str:
    return "stale"


class LeasesContract(ContractBase):
    """``acquire_lease``/``renew_lease``/``release_lease`` and ``fence=`` on every write."""

    lease_ttl: ClassVar[float] = 0.3
    """Seconds of the short leases the expiry tests wait out."""

    @pytest.fixture
    def leases(self, store: Storage) -> Storage:
        require(store, Capability.LEASES)
        return store

    def _held(self, store: Storage, name: str = "job", ttl: float = 30.0) -> Lease:
        lease = store.acquire_lease(name, ttl=ttl)
        assert lease is not None, f"nobody holds {name!r}, so acquire_lease must grant it"
        return lease

    def _outlive(self, lease_ttl: float) -> None:
        time.sleep(lease_ttl + self.ttl_resolution)

    # -- holding -------------------------------------------------------------------------

    def test_lease_acquire_grants_a_lease_with_a_token(self, leases: Storage) -> None:
        lease = self._held(leases)
        assert isinstance(lease, Lease)
        assert lease.name == "job"
        assert type(lease.token) is int
        assert lease.token >= 1
        assert isinstance(lease.expires_at, float)

    def test_lease_held_is_refused_to_others(self, leases: Storage, make_store: MakeStore) -> None:
        self._held(leases)
        assert leases.acquire_lease("job", ttl=30.0) is None
        assert make_store().acquire_lease("job", ttl=30.0) is None
        assert leases.acquire_lease("other", ttl=30.0) is not None

    def test_lease_tokens_grow_across_release_and_expiry(self, leases: Storage, make_store: MakeStore) -> None:
        first = self._held(leases)
        assert leases.release_lease(first) is True
        second = self._held(make_store())
        assert second.token > first.token
        assert second.store == first.store
        leases.release_lease(second)
        third = self._held(leases, ttl=self.lease_ttl)
        assert third.token > second.token
        self._outlive(self.lease_ttl)
        fourth = self._held(leases)
        assert fourth.token > third.token

    def test_lease_tokens_survive_closing_every_handle(self, leases: Storage, make_store: MakeStore) -> None:
        first = self._held(leases)
        leases.release_lease(first)
        leases.close()
        if not self.persistent:
            pytest.skip("the backend's data does not outlive close() (persistent = False)")
        assert self._held(make_store()).token > first.token

    def test_lease_renew_keeps_the_token_and_extends(self, leases: Storage) -> None:
        lease = self._held(leases, ttl=self.lease_ttl)
        renewed = leases.renew_lease(lease, ttl=30.0)
        assert renewed.token == lease.token
        assert renewed.name == lease.name
        assert renewed.expires_at > lease.expires_at
        self._outlive(self.lease_ttl)
        assert leases.acquire_lease("job", ttl=30.0) is None, "the renewed lease must still be held"
        leases.write("out", 1, fence=renewed)

    def test_lease_renew_after_expiry_raises_lease_lost(self, leases: Storage) -> None:
        lease = self._held(leases, ttl=self.lease_ttl)
        self._outlive(self.lease_ttl)
        with pytest.raises(LeaseLost, match="'job'"):
            leases.renew_lease(lease, ttl=30.0)

    def test_lease_renew_after_takeover_raises_lease_lost(self, leases: Storage, make_store: MakeStore) -> None:
        lease = self._held(leases, ttl=self.lease_ttl)
        self._outlive(self.lease_ttl)
        self._held(make_store())
        with pytest.raises(LeaseLost):
            leases.renew_lease(lease, ttl=30.0)

    def test_lease_release_of_a_gone_lease_is_false(self, leases: Storage) -> None:
        lease = self._held(leases, ttl=self.lease_ttl)
        self._outlive(self.lease_ttl)
        assert leases.release_lease(lease) is False
        again = self._held(leases)
        assert leases.release_lease(again) is True
        assert leases.release_lease(again) is False

    def test_lease_another_handle_may_use_the_lease(self, leases: Storage, make_store: MakeStore) -> None:
        lease = self._held(leases)
        other = make_store()
        other.write("out", "by other", fence=lease)
        renewed = other.renew_lease(lease, ttl=30.0)
        assert other.release_lease(renewed) is True
        assert leases.read("out") == "by other"

    def test_lease_names_do_not_collide_with_keys(self, leases: Storage) -> None:
        leases.write("job", "value")
        self._held(leases)
        assert list(leases.keys()) == ["job"]
        assert leases.read("job") == "value"
        leases.delete("job")
        assert leases.acquire_lease("job", ttl=30.0) is None

    def test_lease_namespaces_have_their_own_leases(self, leases: Storage, make_store: MakeStore) -> None:
        from storage_core.testing._base import fresh_namespace  # noqa: PLC0415

        self._held(leases)
        assert self._held(make_store(fresh_namespace())).name == "job"

    # -- fenced writes -------------------------------------------------------------------

    def test_fence_every_write_kind_passes_while_current(self, leases: Storage) -> None:
        lease = self._held(leases)
        leases.write("a", 1, fence=lease)
        leases.write_many({"b": 2, "c": 3}, fence=lease)
        assert leases.update("a", lambda v: v + 10, fence=lease) == 11
        version = leases.read_entry("b").version
        leases.write("b", 20, if_version=version, fence=lease)
        assert leases.delete("c", fence=lease) is True
        assert leases.delete("c", fence=lease) is False
        leases.write("t", 1, fence=lease, ttl=self.short_ttl)
        assert leases.read_many(["a", "b", "c"]) == {"a": 11, "b": 20}
        self.expire()
        assert not leases.exists("t")

    def test_fence_every_write_kind_refused_after_takeover(self, leases: Storage, make_store: MakeStore) -> None:
        lease = self._held(leases, ttl=self.lease_ttl)
        leases.write_many({"a": "old", "c": "old"})
        self._outlive(self.lease_ttl)
        successor = self._held(make_store())
        assert successor.token > lease.token
        attempts: dict[str, Callable[[], object]] = {
            "write": lambda: leases.write("a", "stale", fence=lease),
            "write_many": lambda: leases.write_many({"a": "stale", "b": "stale"}, fence=lease),
            "update": lambda: leases.update("a", _stale, fence=lease),
            "delete": lambda: leases.delete("c", fence=lease),
            "transaction": lambda: leases.transaction(write={"a": "stale"}, delete=["c"], fence=lease),
        }
        for kind, attempt in attempts.items():
            with pytest.raises(LeaseLost, match="nothing was written"):
                attempt()
            assert leases.read_many(["a", "b", "c"]) == {"a": "old", "c": "old"}, f"a stale fenced {kind} wrote"
        leases.write("a", "new", fence=successor)
        assert leases.read("a") == "new"

    def test_fence_with_a_released_lease_writes_nothing(self, leases: Storage) -> None:
        lease = self._held(leases)
        leases.release_lease(lease)
        with pytest.raises(LeaseLost):
            leases.write("a", 1, fence=lease)
        assert not leases.exists("a")

    def test_fence_with_a_forged_token_writes_nothing(self, leases: Storage) -> None:
        lease = self._held(leases)
        for token in (lease.token + 1, lease.token + 1000):
            with pytest.raises(LeaseLost):
                leases.write("a", 1, fence=dataclasses.replace(lease, token=token))
        with pytest.raises(LeaseLost):
            leases.renew_lease(dataclasses.replace(lease, token=lease.token + 1), ttl=30.0)
        assert leases.release_lease(dataclasses.replace(lease, token=lease.token + 1)) is False
        assert not leases.exists("a")
        leases.write("a", 1, fence=lease)

    def test_fence_with_an_unexpected_version_is_a_conflict(self, leases: Storage) -> None:
        lease = self._held(leases)
        leases.write("a", 1)
        version = leases.read_entry("a").version
        leases.write("a", 2)
        with pytest.raises(VersionConflict, match="'a'"):
            leases.write("a", 3, if_version=version, fence=lease)
        assert leases.read("a") == 2

    # -- bad input -----------------------------------------------------------------------

    @pytest.mark.parametrize("ttl", [-1.0, 0, 0.0, float("nan"), float("inf"), True, "30", None, 1e12])
    def test_lease_bad_ttl_is_refused(self, leases: Storage, ttl: object) -> None:
        with pytest.raises(ValueError, match="lease ttl must be"):
            leases.acquire_lease("job", ttl=ttl)  # type: ignore[arg-type]
        lease = self._held(leases)
        with pytest.raises(ValueError, match="lease ttl must be"):
            leases.renew_lease(lease, ttl=ttl)  # type: ignore[arg-type]

    def test_lease_bad_name_is_refused(self, leases: Storage) -> None:
        from storage_core.errors import InvalidKey  # noqa: PLC0415

        with pytest.raises(InvalidKey):
            leases.acquire_lease("", ttl=30.0)
        with pytest.raises(InvalidKey):
            leases.acquire_lease(42, ttl=30.0)  # type: ignore[arg-type]

    def test_lease_from_another_namespace_is_refused(self, leases: Storage, make_store: MakeStore) -> None:
        from storage_core.testing._base import fresh_namespace  # noqa: PLC0415

        other = make_store(fresh_namespace())
        foreign = self._held(other)
        with pytest.raises(ValueError, match="issued by another store or namespace"):
            leases.write("a", 1, fence=foreign)
        with pytest.raises(ValueError, match="issued by another store or namespace"):
            leases.release_lease(foreign)
        assert not leases.exists("a")
        assert other.release_lease(foreign) is True

    def test_fence_that_is_not_a_lease_is_refused(self, leases: Storage) -> None:
        with pytest.raises(InvalidArgument, match="expected a Lease"):
            leases.write("a", 1, fence=("job", 1))  # type: ignore[arg-type]
        lease = self._held(leases)
        with pytest.raises(ValueError, match="tokens are ints"):
            leases.write("a", 1, fence=dataclasses.replace(lease, token=0))
        assert not leases.exists("a")
