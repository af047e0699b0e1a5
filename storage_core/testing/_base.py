"""What every group of contract tests shares: the knobs, the fixtures and the hooks.

Every ``test_*`` method of a contract class states one clause of the contract; when it
fails, the error carries a note naming that clause (the test's name read as a sentence,
or the text given with :func:`clause`) and the primitive at fault, so a backend author
sees what they broke, not only where.
"""

from __future__ import annotations

import contextlib
import functools
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar, TypeVar

import pytest

from storage_core.capabilities import Capability
from storage_core.storage import Storage
from storage_core.testing.factories import ConfigFactory, StorageFactory

NAMESPACE_PREFIX = "contract-"

MakeStore = Callable[..., Storage]
"""``make_store(namespace=None)``: a store from the factory, closed after the test."""


F = TypeVar("F", bound=Callable[..., Any])
_CLAUSE = "__contract_clause__"
# pytest's own outcomes: a skip (or xfail) is not a broken clause.
_OUTCOMES: tuple[type[BaseException], ...] = (pytest.skip.Exception, pytest.xfail.Exception)


def clause(text: str, *, primitive: str | None = None) -> Callable[[F], F]:
    """State the contract clause a test checks, and the primitive that must keep it.

    Without it a test's clause is its name read as a sentence.
    """

    def mark(test: F) -> F:
        setattr(test, _CLAUSE, (text, primitive))
        return test

    return mark


def clause_of(test: Callable[..., Any], group: str) -> str:
    """The note a failure of *test* (a test of the contract *group*) carries."""
    text, primitive = getattr(test, _CLAUSE, (None, None))
    text = text or test.__name__.removeprefix("test_").replace("_", " ")
    at = f" (primitive: {primitive})" if primitive else ""
    return f"contract clause broken: [{group}] {text}{at}"


def _naming_clause(test: F, group: str) -> F:
    note = clause_of(test, group)

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return test(*args, **kwargs)
        except _OUTCOMES:
            raise
        except BaseException as exc:
            exc.add_note(note)
            raise

    run.__contract_note__ = note  # type: ignore[attr-defined]
    return run  # type: ignore[return-value]


def fresh_namespace() -> str:
    """A namespace no other test uses, so tests can share one server without seeing each other."""
    return f"{NAMESPACE_PREFIX}{uuid.uuid4().hex[:12]}"


class ContractBase:
    """Fixtures, class attributes and hooks; see :class:`~storage_core.testing.StorageContract`."""

    contract_group: ClassVar[str] = "contract"
    """The part of the contract a class's tests check, named in failure notes."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "contract_group" not in cls.__dict__:
            cls.contract_group = cls.__name__.removesuffix("Contract").lower() or "contract"
        for name, value in list(cls.__dict__.items()):
            if name.startswith("test_") and callable(value) and not hasattr(value, "__contract_note__"):
                setattr(cls, name, _naming_clause(value, cls.contract_group))

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
    # write_many batches raced by a reader, where the backend declares ATOMIC_WRITE_MANY.
    atomic_batches: ClassVar[int] = 300
    # Listing: keys written to prove _iter_keys streams (enough that one page is a small share).
    streaming_keys: ClassVar[int] = 6_000
    # The backend's own section of the config, for the unknown-option test; None: taken from a
    # config_factory's mapping when there is one, else that test is skipped saying so.
    valid_options: ClassVar[Mapping[str, Any] | None] = None
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

    def require_capability(self, store: Storage, capability: Capability) -> None:
        """Skip the test, naming *capability*, unless the backend declares it in ``capabilities``."""
        if capability not in store.capabilities:
            pytest.skip(f"the backend does not declare Capability.{capability.name} (its `capabilities`)")

    def options_of(self, storage_factory: StorageFactory, backend: str) -> Mapping[str, Any] | None:
        """``valid_options``, or the backend's section of a ``config_factory`` mapping; else None."""
        if self.valid_options is not None:
            return self.valid_options
        config = storage_factory.config if isinstance(storage_factory, ConfigFactory) else None
        if not isinstance(config, Mapping):
            return None
        section = config.get("storage", config)
        if not isinstance(section, Mapping) or section.get("backend") != backend:
            return None
        options = section.get(backend, {})
        return options if isinstance(options, Mapping) else None

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
