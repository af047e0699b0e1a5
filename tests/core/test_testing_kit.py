"""The conformance kit, run against a tiny in-memory backend before the real ones exist.

``MemoryStorage`` is a test double: defined at module level so its factory pickles, and
never registered as an entry point.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self
from uuid import uuid4

import pytest

from storage_core import Consistency, Storage
from storage_core.testing import StorageContract
from storage_core.versions import content_version

# Backing stores by name: every MemoryStorage of one space shares the data, like a server.
_SPACES: dict[str, tuple[dict[str, tuple[bytes, float | None]], threading.Lock]] = {}
_SPACES_LOCK = threading.Lock()


class MemoryStorage(Storage):
    """A dict behind a lock, implementing only the required primitives."""

    name: ClassVar[str] = "memory_test"

    def __init__(self, space: str) -> None:
        super().__init__()
        self._space = space

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Self:
        return cls(str(options.get("space", "default")))

    def _connect(self) -> None:
        with _SPACES_LOCK:
            self._data, self._lock = _SPACES.setdefault(self._space, ({}, threading.Lock()))

    def _live(self, key: str) -> bytes | None:
        item = self._data.get(key)
        if item is None:
            return None
        data, expires = item
        if expires is not None and expires <= time.monotonic():
            del self._data[key]
            return None
        return data

    def _read(self, key: str) -> bytes | None:
        with self._lock:
            return self._live(key)

    def _put(self, key: str, data: bytes, ttl: float | None) -> None:
        self._data[key] = (data, None if ttl is None else time.monotonic() + ttl)

    def _write(self, key: str, data: bytes, ttl: float | None, consistency: Consistency) -> None:
        with self._lock:
            self._put(key, data, ttl)

    def _write_if(
        self, key: str, data: bytes, expected: str | None, ttl: float | None, consistency: Consistency
    ) -> bool:
        with self._lock:
            current = self._live(key)
            found = None if current is None else content_version(current)
            if found != expected:
                return False
            self._put(key, data, ttl)
            return True

    def _delete(self, key: str, consistency: Consistency) -> bool:
        with self._lock:
            found = self._live(key) is not None
            self._data.pop(key, None)
            return found

    def _iter_keys(self, prefix: str) -> Iterator[str]:
        with self._lock:
            snapshot = [k for k in self._data if k.startswith(prefix)]
        for key in snapshot:
            if self._read(key) is not None:
                yield key


@dataclass(frozen=True)
class MemoryFactory:
    """Opens ``MemoryStorage`` stores sharing one space."""

    space: str

    def __call__(self, namespace: str) -> Storage:
        store = MemoryStorage(self.space).configure(namespace=namespace)
        store.initialize()
        return store


class TestMemoryContract(StorageContract):
    """The whole suite passes against a correct backend."""

    supports_processes = False
    persistent = True  # the space outlives any one store, as a server's data would

    @pytest.fixture
    def storage_factory(self) -> Iterator[MemoryFactory]:
        space = uuid4().hex
        yield MemoryFactory(space)
        with _SPACES_LOCK:
            _SPACES.pop(space, None)
