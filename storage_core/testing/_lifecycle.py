"""Lifecycle: initialize, close, ``with``, reopen; a closed store says what to do."""

from __future__ import annotations

import pickle
from collections.abc import Callable

import pytest

from storage_core.errors import ConfigError, StorageError
from storage_core.storage import Storage
from storage_core.testing._base import ContractBase, MakeStore, clause
from storage_core.testing._workers import plus_one
from storage_core.testing.factories import StorageFactory

# Every public operation; each must refuse to run on a closed store.
_OPERATIONS: dict[str, Callable[[Storage], object]] = {
    "read": lambda s: s.read("key"),
    "get": lambda s: s.get("key"),
    "exists": lambda s: s.exists("key"),
    "read_entry": lambda s: s.read_entry("key"),
    "write": lambda s: s.write("key", 2),
    "delete": lambda s: s.delete("key"),
    "update": lambda s: s.update("key", plus_one, default=0),
    "read_many": lambda s: s.read_many(["key"]),
    "write_many": lambda s: s.write_many({"key": 2}),
    "keys": lambda s: s.keys(),
    "ping": lambda s: s.ping(),
}


class LifecycleContract(ContractBase):
    """The factory returns an open store; ``close`` ends it; ``initialize`` reopens it."""

    def test_factory_returns_initialized_store(self, store: Storage) -> None:
        store.ping()
        assert store.exists("key") is False

    def test_initialize_is_idempotent(self, store: Storage) -> None:
        store.write("key", 1)
        store.initialize()
        store.initialize()
        assert store.read("key") == 1

    def test_close_is_idempotent(self, store: Storage) -> None:
        store.close()
        store.close()

    def test_with_returns_the_store_and_closes_it(self, store: Storage) -> None:
        with store as entered:
            assert entered is store
            store.write("key", 1)
        with pytest.raises(StorageError):
            store.read("key")

    def test_with_closes_on_error(self, store: Storage) -> None:
        with pytest.raises(RuntimeError), store:
            raise RuntimeError("boom")
        with pytest.raises(StorageError):
            store.exists("key")

    @pytest.mark.parametrize("operation", list(_OPERATIONS.values()), ids=list(_OPERATIONS))
    def test_closed_store_refuses(self, store: Storage, operation: Callable[[Storage], object]) -> None:
        store.write("key", 1)
        store.close()
        with pytest.raises(StorageError) as info:
            operation(store)
        assert "initialize" in str(info.value), f"the error must say to initialize(): {info.value}"

    def test_reopen_after_close(self, store: Storage) -> None:
        store.write("key", {"kept": True})
        store.close()
        store.initialize()
        store.write("other", 2)
        assert store.read("other") == 2
        if self.persistent:
            assert store.read("key") == {"kept": True}

    def test_data_outlives_the_store(self, store: Storage, make_store: MakeStore) -> None:
        if not self.persistent:
            pytest.skip("the backend is not persistent (persistent = False)")
        store.write("key", "durable")
        store.close()
        assert make_store().read("key") == "durable"

    def test_repr_names_the_class(self, store: Storage) -> None:
        text = repr(store)
        assert isinstance(text, str)
        assert type(store).__name__ in text
        store.close()
        assert type(store).__name__ in repr(store)

    def test_repr_and_errors_hide_secrets(self, store: Storage) -> None:
        if not self.secrets:
            pytest.skip("no secrets to look for (set `secrets` to the config's passwords)")
        texts = [repr(store), str(store)]
        with pytest.raises(StorageError) as missing:
            store.read("absent")
        texts.append(str(missing.value))
        store.close()
        texts.append(repr(store))
        with pytest.raises(StorageError) as closed:
            store.read("key")
        texts.append(str(closed.value))
        for secret in self.secrets:
            leaks = [text for text in texts if secret in text]
            assert not leaks, f"a secret shows in: {leaks}"

    def test_factory_is_picklable(self, storage_factory: StorageFactory) -> None:
        if not self.supports_processes:
            pytest.skip("the backend is not shared between processes (supports_processes = False)")
        try:
            pickle.dumps(storage_factory)
        except Exception as exc:
            pytest.fail(
                f"storage_factory must pickle, so spawned processes can use it ({exc!r}): "
                "use a module-level function or storage_core.testing.config_factory(...)"
            )

    @clause("from_options refuses an unknown option with a ConfigError naming it", primitive="from_options")
    def test_unknown_option_is_refused(self, store: Storage, storage_factory: StorageFactory) -> None:
        options = self.options_of(storage_factory, store.name)
        if options is None:
            pytest.skip("no options to start from: set valid_options, or use config_factory({...}) with a mapping")
        backend = type(store)
        backend.from_options(dict(options))  # the options themselves are fine (and no I/O happens)
        with pytest.raises(ConfigError) as refused:
            backend.from_options({**options, "no_such_option": 1})
        assert "no_such_option" in str(refused.value), f"the error must name the unknown option: {refused.value}"
