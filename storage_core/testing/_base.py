"""What every group of contract tests shares: the knobs, the fixtures and the hooks."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from typing import ClassVar

import pytest

from storage_core.storage import Storage
from storage_core.testing.factories import StorageFactory

NAMESPACE_PREFIX = "contract-"

MakeStore = Callable[..., Storage]
"""``make_store(namespace=None)``: a store from the factory, closed after the test."""


def fresh_namespace() -> str:
    """A namespace no other test uses, so tests can share one server without seeing each other."""
    return f"{NAMESPACE_PREFIX}{uuid.uuid4().hex[:12]}"


class ContractBase:
    """Fixtures, class attributes and hooks; see :class:`~storage_core.testing.StorageContract`."""

    # Expiry: keys are written with ``short_ttl`` and checked ``short_ttl + ttl_resolution`` later.
    short_ttl: ClassVar[float] = 0.25
    ttl_resolution: ClassVar[float] = 0.25
    # Contention: threads share one store; processes each open their own.
    thread_workers: ClassVar[int] = 8
    thread_increments: ClassVar[int] = 50
    supports_processes: ClassVar[bool] = True
    process_workers: ClassVar[int] = 4
    process_increments: ClassVar[int] = 25
    process_timeout: ClassVar[float] = 120.0
    # False for a backend whose data does not outlive close() (in memory, say).
    persistent: ClassVar[bool] = True
    # Strings (passwords, tokens) in the factory's config that must never show in repr or errors.
    # Not a ClassVar: a subclass may learn them from a fixture and set them on the instance.
    secrets: tuple[str, ...] = ()

    @pytest.fixture
    def storage_factory(self) -> StorageFactory:
        """Override: return a picklable ``factory(namespace) -> initialized Storage``."""
        pytest.fail(
            f"{type(self).__name__} must define a `storage_factory` fixture returning a picklable "
            "factory(namespace) -> initialized Storage, e.g. storage_core.testing.config_factory({...})"
        )

    @pytest.fixture
    def namespace(self) -> str:
        """A fresh namespace for this test."""
        return fresh_namespace()

    @pytest.fixture
    def make_store(self, storage_factory: StorageFactory, namespace: str) -> Iterator[MakeStore]:
        """Opens stores through the factory; closes them, and deletes the test's keys, afterwards."""
        opened: list[Storage] = []

        def make(ns: str | None = None) -> Storage:
            store = storage_factory(namespace if ns is None else ns)
            opened.append(store)
            return store

        yield make
        for store in reversed(opened):
            store.close()
        self._clean(storage_factory, {s.namespace for s in opened})

    @pytest.fixture
    def store(self, make_store: MakeStore) -> Storage:
        """An initialized store in the test's namespace."""
        return make_store()

    def write_raw(self, store: Storage, key: str, data: bytes) -> None:
        """Hook: store *data* at *key* (without namespace) in *store*, bypassing encoding.

        Lets the suite plant a value that is not JSON, as a foreign writer could. The
        default goes through the backend's ``_write`` primitive; override it to write
        through the backend's own client when that is a better stand-in for a foreign
        writer, or call ``pytest.skip`` when the backend cannot hold such bytes at all.
        """
        # The store's own prefix, so the suite and the template share one namespacing rule.
        store._write(store._prefix + key, data, None, store.default_consistency)

    def expire(self) -> None:
        """Wait until a key written with ``short_ttl`` has expired."""
        time.sleep(self.short_ttl + self.ttl_resolution)

    @staticmethod
    def _clean(factory: StorageFactory, namespaces: set[str]) -> None:
        # Best effort, and only for our own namespaces: never wipe a shared store's keys,
        # and never hide the test's own result behind a cleanup error.
        for ns in namespaces:
            if not ns.startswith(NAMESPACE_PREFIX):
                continue
            with contextlib.suppress(Exception):
                store = factory(ns)
                try:
                    for key in list(store.keys()):
                        store.delete(key)
                finally:
                    store.close()
