"""``Storage.ttl`` and ``read_many_with_ttl`` through the template's own defaults.

The backend double implements only ``_read_with_ttl``, so the bulk default (one call per
key) runs the same contract the real backends pass with their batched versions.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar
from uuid import uuid4

import pytest
from test_testing_kit import MemoryStorage

from storage_core import Capability, NotSupported, Storage
from storage_core.testing._ttl_read import TtlReadContract


class TimedMemoryStorage(MemoryStorage):
    """The memory double, reporting expiries through the one required TTL primitive."""

    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.READ_TTL})

    def _read_with_ttl(self, key: str) -> tuple[bytes, float | None] | None:
        with self._lock:
            data = self._live(key)
            if data is None:
                return None
            expires = self._data[key][1]
            return data, None if expires is None else expires - time.monotonic()


@dataclass(frozen=True)
class TimedFactory:
    space: str

    def __call__(self, namespace: str) -> Storage:
        store = TimedMemoryStorage(self.space).configure(namespace=namespace)
        store.initialize()
        return store


class TestTemplateDefaults(TtlReadContract):
    @pytest.fixture
    def storage_factory(self) -> TimedFactory:
        return TimedFactory(uuid4().hex)


@pytest.fixture
def plain() -> Iterator[MemoryStorage]:
    with MemoryStorage(uuid4().hex) as opened:
        yield opened


def test_a_backend_without_read_ttl_refuses_naming_the_capability(plain: MemoryStorage) -> None:
    plain.write("k", 1, ttl=60)
    with pytest.raises(NotSupported, match="does not support read_ttl"):
        plain.ttl("k")
    with pytest.raises(NotSupported, match="does not support read_ttl"):
        plain.read_many_with_ttl(["k"])


def test_declaring_read_ttl_without_the_primitive_is_a_clear_bug() -> None:
    class Forgetful(MemoryStorage):
        capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.READ_TTL})

    with Forgetful(uuid4().hex) as store:
        store.write("k", 1)
        with pytest.raises(NotImplementedError, match="Forgetful declares read_ttl without _read_with_ttl"):
            store.ttl("k")
