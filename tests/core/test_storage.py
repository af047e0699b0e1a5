"""What the Storage template adds on top of any backend's primitives.

The conformance suite checks the contract through every backend; these tests pin down the
template's own decisions with a backend double whose primitives we can steer.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import pytest
from test_testing_kit import MemoryStorage

from storage_core import (
    Capability,
    Consistency,
    InvalidArgument,
    InvalidKey,
    NotSupported,
    ReadOnly,
    StorageError,
    VersionConflict,
)
from storage_core import storage as template


class AlwaysLoses(MemoryStorage):
    """Every compare-and-set loses, as if another writer always got in first."""

    def __init__(self, space: str) -> None:
        super().__init__(space)
        self.attempts = 0

    def _write_if(
        self, key: str, data: bytes, expected: str | None, ttl: float | None, consistency: Consistency
    ) -> bool:
        self.attempts += 1
        return False


@pytest.fixture
def store() -> Iterator[MemoryStorage]:
    with MemoryStorage(uuid4().hex) as opened:
        yield opened


def test_construction_does_no_io_and_use_before_initialize_says_what_to_do() -> None:
    store = MemoryStorage(uuid4().hex)
    assert not hasattr(store, "_data")  # _connect never ran
    with pytest.raises(StorageError, match=r"is not initialized: call initialize\(\)"):
        store.read("k")
    with pytest.raises(StorageError, match="not initialized"):
        store.ping()


def test_use_after_close_says_closed() -> None:
    store = MemoryStorage(uuid4().hex)
    store.initialize()
    store.close()
    with pytest.raises(StorageError, match="is closed: call initialize"):
        store.write("k", 1)


def test_a_failed_ping_closes_what_connect_opened() -> None:
    closed: list[bool] = []

    class Unreachable(MemoryStorage):
        def _ping(self) -> None:
            raise StorageError("no answer")

        def _close(self) -> None:
            closed.append(True)

    store = Unreachable(uuid4().hex)
    with pytest.raises(StorageError, match="no answer"):
        store.initialize()
    assert closed == [True]
    with pytest.raises(StorageError, match="not initialized"):
        store.read("k")


def test_update_gives_up_after_many_lost_races(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr("storage_core.storage.time.sleep", slept.append)
    with AlwaysLoses(uuid4().hex) as store:
        with pytest.raises(VersionConflict, match="lost the race to other writers 100 times"):
            store.update("hot", lambda v: v + 1, default=0)
        assert store.attempts == 100
    # Backoff grows to its cap and is jittered, so contenders do not retry in lockstep.
    assert len(slept) == 100
    assert max(slept) <= 0.05
    assert len(set(slept)) > 90


def test_update_hands_fn_a_fresh_copy_of_the_default_each_time(store: MemoryStorage) -> None:
    default: dict[str, Any] = {"items": []}

    def add(value: dict[str, Any]) -> dict[str, Any]:
        value["items"].append(1)
        return value

    assert store.update("a", add, default=default) == {"items": [1]}
    assert store.update("b", add, default=default) == {"items": [1]}
    assert default == {"items": []}


def test_the_default_consistency_reaches_the_backend(store: MemoryStorage) -> None:
    seen: list[Consistency] = []

    class Recording(MemoryStorage):
        def _write(self, key: str, data: bytes, ttl: float | None, consistency: Consistency) -> None:
            seen.append(consistency)
            super()._write(key, data, ttl, consistency)

    with Recording(uuid4().hex).configure(consistency="eventual") as recording:
        recording.write("k", 1)
        recording.write("k", 1, consistency=Consistency.STRONG)
        recording.write_many({"a": 1})
    assert seen == [Consistency.EVENTUAL, Consistency.STRONG, Consistency.EVENTUAL]


def test_from_url_defaults_to_a_url_option() -> None:
    received: list[dict[str, Any]] = []

    class UrlBackend(MemoryStorage):
        @classmethod
        def from_options(cls, options: Any) -> UrlBackend:
            received.append(dict(options))
            return cls("space")

    UrlBackend.from_url("memo://x")
    assert received == [{"url": "memo://x"}]


def test_configure_empty_namespace_means_none(store: MemoryStorage) -> None:
    fresh = MemoryStorage(uuid4().hex).configure(namespace="a").configure(namespace="")
    assert fresh.namespace == ""
    assert "namespace" not in repr(fresh)
    assert repr(MemoryStorage("s").configure(namespace="ns")) == "<MemoryStorage memory_test namespace='ns'>"


def test_initialize_is_safe_from_many_threads_at_once() -> None:
    connects: list[int] = []

    class Counting(MemoryStorage):
        def _connect(self) -> None:
            connects.append(1)
            super()._connect()

    store = Counting(uuid4().hex)
    threads = [threading.Thread(target=store.initialize) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert connects == [1]
    store.close()


def test_read_many_refuses_a_single_str(store: MemoryStorage) -> None:
    store.write_many({"t": 1, "a": 2})
    with pytest.raises(InvalidKey, match=r"takes a list of keys, got the str 'task': pass \['task'\]"):
        store.read_many("task")


@pytest.mark.parametrize("ttl", [1e17, template.MAX_TTL * 2, float("inf")])
def test_a_ttl_beyond_a_century_is_refused(store: MemoryStorage, ttl: float) -> None:
    with pytest.raises(ValueError, match=r"at most 3155760000 \(a century\)"):
        store.write("k", 1, ttl=ttl)
    assert not store.exists("k")
    store.write("k", 1, ttl=template.MAX_TTL)
    assert store.read("k") == 1


def test_a_missing_capability_is_refused_naming_backend_and_capability(store: MemoryStorage) -> None:
    assert not store.supports(Capability.ATOMIC_WRITE_MANY)
    with pytest.raises(NotSupported, match=r"'memory_test' backend does not support atomic_write_many"):
        store._require(Capability.ATOMIC_WRITE_MANY)


def test_a_declared_capability_is_supported(store: MemoryStorage, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(type(store), "capabilities", frozenset({Capability.ATOMIC_WRITE_MANY}))
    assert store.supports("atomic_write_many")
    store._require(Capability.ATOMIC_WRITE_MANY)


class RefusesIO(MemoryStorage):
    """Any write primitive reached is a test failure: read-only must refuse before them."""

    def _write(self, key: str, data: bytes, ttl: float | None, consistency: Consistency) -> None:
        raise AssertionError("_write reached")

    def _write_if(
        self, key: str, data: bytes, expected: str | None, ttl: float | None, consistency: Consistency
    ) -> bool:
        raise AssertionError("_write_if reached")

    def _delete(self, key: str, consistency: Consistency) -> bool:
        raise AssertionError("_delete reached")

    def _read(self, key: str) -> bytes | None:
        raise AssertionError("_read reached")  # update() must not even read first


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.write("k", 1),
        lambda s: s.write("k", 1, if_version="v"),
        lambda s: s.write_many({"k": 1}),
        lambda s: s.delete("k"),
        lambda s: s.update("k", lambda v: v, default=0),
    ],
)
def test_read_only_refuses_every_write_before_any_primitive(call: Any) -> None:
    with RefusesIO(uuid4().hex).configure(read_only=True) as store, pytest.raises(ReadOnly, match="opened read-only"):
        call(store)


def test_read_only_is_set_with_a_bool_before_initialize() -> None:
    store = MemoryStorage(uuid4().hex)
    assert not store.read_only
    with pytest.raises(InvalidArgument, match="read_only must be True or False"):
        store.configure(read_only="yes")  # type: ignore[arg-type]
    with store, pytest.raises(StorageError, match="before initialize"):
        store.configure(read_only=True)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: s.write("k", 1, ttl=-1), "ttl must be a number of seconds above 0"),
        (lambda s: s.write("k", 1, ttl="30"), "ttl must be a number"),
        (lambda s: s.write("k", 1, consistency="linearizable"), "consistency must be 'strong' or 'eventual'"),
        (lambda s: s.write("k", 1, if_version=3), "if_version must be a version str"),
        (lambda s: s.update("k", lambda v: v, default=0, ttl=0), "ttl must be a number"),
        (lambda s: s.write_many({"k": 1}, consistency=1), "consistency must be"),
    ],
)
def test_a_bad_argument_is_a_storage_error_and_a_value_error(store: MemoryStorage, call: Any, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message) as caught:
        call(store)
    assert isinstance(caught.value, StorageError)
    assert isinstance(caught.value, ValueError)
    assert not store.exists("k"), "nothing is written"


@pytest.mark.parametrize(
    ("namespace", "message"),
    [
        (3, "namespace must be a str"),
        ("a:b", "must not contain ':'"),
        ("n" * 300, "the limit is 256"),
        ("\ud800", "lone surrogate"),
    ],
)
def test_a_bad_namespace_is_an_invalid_argument(namespace: Any, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        MemoryStorage(uuid4().hex).configure(namespace=namespace)


def test_a_bad_default_consistency_is_an_invalid_argument() -> None:
    with pytest.raises(InvalidArgument, match="consistency must be"):
        MemoryStorage(uuid4().hex).configure(consistency="sometimes")
