"""Observers see one event per public call, with retries counted, and can never break a call."""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Self, TypeVar

import pytest

from storage_core import ConnectionFailed, Consistency, InvalidKey, KeyNotFound, Storage, StorageError
from storage_core.observers import LifecycleEvent, OperationEvent, attach, is_observed
from storage_core.observers.instrument import (
    _OPERATIONS,
    _held_lease,
    _lease_name,
    _many_items,
    _many_keys,
    _operation_event,
    _transaction,
)
from storage_core.retry import ExponentialBackoff, RetryPolicy
from storage_local import LocalStorage


class Recorder:
    """An observer that keeps what it is given."""

    def __init__(self) -> None:
        self.operations: list[OperationEvent] = []
        self.lifecycle: list[LifecycleEvent] = []

    def on_operation(self, event: OperationEvent) -> None:
        self.operations.append(event)

    def on_lifecycle(self, event: LifecycleEvent) -> None:
        self.lifecycle.append(event)

    def last(self) -> OperationEvent:
        return self.operations[-1]


class OperationsOnly:
    def __init__(self) -> None:
        self.operations: list[OperationEvent] = []

    def on_operation(self, event: OperationEvent) -> None:
        self.operations.append(event)


class Broken:
    """An observer whose every hook raises."""

    calls = 0

    def on_operation(self, event: OperationEvent) -> None:
        self.calls += 1
        raise RuntimeError("observer bug")

    def on_lifecycle(self, event: LifecycleEvent) -> None:
        raise RuntimeError("lifecycle bug")


class Flaky(Storage):
    """A dict store whose primitives fail ``failures`` times per call under a real RetryPolicy."""

    name = "flaky"

    def __init__(self, failures: int, retries: int) -> None:
        super().__init__()
        self.data: dict[str, bytes] = {}
        self.failures = failures
        self.policy = RetryPolicy(
            retries=retries,
            backoff=ExponentialBackoff(base=0.001, random=lambda: 0.0),
            retryable=lambda exc: isinstance(exc, OSError),
            sleep=lambda s: None,
        )

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Self:
        return cls(0, 0)

    def _retried(self, value: Any) -> Any:
        left = [self.failures]

        def attempt(_: int) -> Any:
            if left[0]:
                left[0] -= 1
                raise ConnectionResetError("reset")
            return value

        try:
            return self.policy.call(attempt)
        except OSError as exc:
            raise ConnectionFailed("down") from exc

    def _ping(self) -> None:
        self._retried(None)

    def _read(self, key: str) -> bytes | None:
        return self._retried(self.data.get(key))  # type: ignore[no-any-return]

    def _write(self, key: str, data: bytes, ttl: float | None, consistency: Consistency) -> None:
        self.data[key] = self._retried(data)

    def _write_if(
        self, key: str, data: bytes, expected: str | None, ttl: float | None, consistency: Consistency
    ) -> bool:
        self.data[key] = data
        return True

    def _delete(self, key: str, consistency: Consistency) -> bool:
        return self.data.pop(key, None) is not None

    def _iter_keys(self, prefix: str) -> Iterator[str]:
        for key in sorted(self.data):
            self._retried(None)
            if key.startswith(prefix):
                yield key


@pytest.fixture
def local(tmp_path: Path) -> Iterator[LocalStorage]:
    store = LocalStorage.from_options({"path": str(tmp_path / "state.db")})
    store.configure(namespace="fleet")
    yield store
    store.close()


S = TypeVar("S", bound=Storage)


def observed(store: S, *observers: object) -> S:
    attach(store, {f"o{i}": o for i, o in enumerate(observers)})  # type: ignore[misc]
    store.initialize()
    return store


def test_each_public_call_gives_one_event_naming_its_first_key_without_namespace(local: LocalStorage) -> None:
    rec = Recorder()
    store = observed(local, rec)
    store.write("a", {"n": 1}, consistency="eventual", ttl=30)
    store.write_many({"b": 2, "c": 3})
    assert store.read("a") == {"n": 1}
    assert store.get("zz", default=5) == 5
    assert store.exists("b")
    entry = store.read_entry("a")
    store.write("a", 2, if_version=entry.version)
    assert store.update("c", lambda v: v + 1) == 4
    assert store.read_many(k for k in ["a", "b", "nope"]) == {"a": 2, "b": 2}
    assert sorted(store.keys()) == ["a", "b", "c"]
    assert store.delete("a")
    store.ping()
    got = [(e.operation, e.key, e.keys, e.consistency, e.outcome) for e in rec.operations]
    assert got == [
        ("write", "a", 1, "eventual", "ok"),
        ("write_many", "b", 2, "strong", "ok"),
        ("read", "a", 1, None, "ok"),
        ("get", "zz", 1, None, "ok"),
        ("exists", "b", 1, None, "ok"),
        ("read_entry", "a", 1, None, "ok"),
        ("write", "a", 1, "strong", "ok"),
        ("update", "c", 1, "strong", "ok"),
        ("read_many", "a", 3, None, "ok"),
        ("keys", None, 3, None, "ok"),
        ("delete", "a", 1, "strong", "ok"),
        ("ping", None, 0, None, "ok"),
    ]
    assert {(e.backend, e.namespace, e.retries) for e in rec.operations} == {("local", "fleet", 0)}
    assert all(0 < e.duration_s < 5 for e in rec.operations)
    assert [e.kind for e in rec.lifecycle] == ["initialized"]


def test_a_failed_call_reports_the_error_class_and_still_raises(local: LocalStorage) -> None:
    rec = Recorder()
    store = observed(local, rec)
    with pytest.raises(KeyNotFound):
        store.read("missing")
    with pytest.raises(InvalidKey):
        store.write("", 1)
    with pytest.raises(ValueError, match="consistency"):
        store.write("k", 1, consistency="sometimes")
    with pytest.raises(InvalidKey):
        store.read_many("abc")
    with pytest.raises(InvalidKey):
        store.keys(prefix=3)  # type: ignore[arg-type]
    got = [(e.operation, e.key, e.consistency, e.outcome) for e in rec.operations]
    assert got == [
        ("read", "missing", None, "KeyNotFound"),
        ("write", "", "strong", "InvalidKey"),
        ("write", "k", None, "InvalidArgument"),
        ("read_many", None, None, "InvalidKey"),
        ("keys", None, None, "InvalidKey"),
    ]


def test_no_value_ever_reaches_an_event(local: LocalStorage) -> None:
    rec = Recorder()
    store = observed(local, rec)
    store.write("token", "s3cr3t-value")
    store.update("token", lambda v: v + "-and-more")
    store.read("token")
    assert "s3cr3t" not in repr(rec.operations) + repr(rec.lifecycle)


def test_an_abandoned_key_stream_reports_what_it_yielded(local: LocalStorage) -> None:
    rec = Recorder()
    store = observed(local, rec)
    store.write_many({f"k{i}": i for i in range(5)})
    stream = store.keys("k")
    assert next(stream) == "k0"
    assert rec.last().operation == "write_many"  # nothing yet: the stream is still open
    stream.close()  # type: ignore[attr-defined]
    assert (rec.last().operation, rec.last().keys, rec.last().outcome) == ("keys", 1, "ok")


def test_close_and_a_second_initialize_are_lifecycle_events_once(local: LocalStorage) -> None:
    rec = Recorder()
    with observed(local, rec) as store:
        store.initialize()
    local.close()
    assert [e.kind for e in rec.lifecycle] == ["initialized", "closed"]
    assert rec.lifecycle[0] == LifecycleEvent("local", "initialized", "fleet")


def test_retries_are_counted_per_call_and_reported_as_they_happen() -> None:
    rec = Recorder()
    store = observed(Flaky(failures=2, retries=3), rec)  # initialize retried twice too
    rec.lifecycle.clear()
    store.write("a", 1)
    store.read("a")
    assert [(e.operation, e.retries) for e in rec.operations] == [("write", 2), ("read", 2)]
    retrying = rec.lifecycle[:2]
    assert [(e.kind, e.operation, e.attempt, e.error) for e in retrying] == [
        ("retrying", "write", 1, "ConnectionResetError"),
        ("retrying", "write", 2, "ConnectionResetError"),
    ]
    assert retrying[1].delay_s == pytest.approx(0.002)


def test_retries_while_initializing_and_while_listing_keys_are_seen() -> None:
    rec = Recorder()
    store = observed(Flaky(failures=1, retries=1), rec)
    assert [(e.kind, e.operation) for e in rec.lifecycle] == [("retrying", "initialize"), ("initialized", None)]
    store.data.update({"a": b"1", "b": b"2"})
    assert list(store.keys()) == ["a", "b"]
    assert (rec.last().operation, rec.last().keys, rec.last().retries) == ("keys", 2, 2)


def test_running_out_of_retries_is_a_connection_failed_event() -> None:
    rec = Recorder()
    flaky = Flaky(failures=0, retries=2)
    store = observed(flaky, rec)
    flaky.failures = 5
    with pytest.raises(ConnectionFailed):
        store.write("a", 1)
    assert (rec.last().outcome, rec.last().retries) == ("ConnectionFailed", 2)
    assert [(e.kind, e.attempt) for e in rec.lifecycle[1:]] == [
        ("retrying", 1),
        ("retrying", 2),
        ("connection_failed", 2),
    ]
    flaky.data["a"] = b"1"
    with pytest.raises(ConnectionFailed):
        list(store.keys())
    assert (rec.last().operation, rec.last().outcome) == ("keys", "ConnectionFailed")


def test_a_raising_observer_never_breaks_a_call_and_is_reported_once(
    local: LocalStorage, caplog: pytest.LogCaptureFixture
) -> None:
    broken, rec = Broken(), Recorder()
    with caplog.at_level(logging.ERROR, logger="storage_core"):
        store = observed(local, broken, rec)
        for i in range(3):
            store.write(f"k{i}", i)
        assert store.read("k2") == 2
        store.close()
    assert broken.calls == 4
    assert [e.operation for e in rec.operations] == ["write", "write", "write", "read"]
    assert [e.kind for e in rec.lifecycle] == ["initialized", "closed"]
    reports = [r for r in caplog.records if r.name == "storage_core"]
    assert [r.getMessage().split(" for ")[0] for r in reports] == [
        "the storage observer 'o0' raised in on_lifecycle",
        "the storage observer 'o0' raised in on_operation",
    ]
    assert "fix the observer or remove it from storage.observers" in reports[0].getMessage()


def test_an_observer_without_on_lifecycle_gets_operations_only(local: LocalStorage) -> None:
    only = OperationsOnly()
    store = observed(local, only)
    store.write("a", 1)
    store.close()
    assert [e.operation for e in only.operations] == ["write"]


def test_a_plain_store_is_untouched(local: LocalStorage) -> None:
    assert not is_observed(local)
    attach(local, {})
    assert not is_observed(local)
    assert "read" not in vars(local)
    assert type(local).read is Storage.read


def test_attaching_twice_or_a_non_observer_is_refused(local: LocalStorage) -> None:
    with pytest.raises(TypeError, match=r"'bad' .* has no on_operation"):
        attach(local, {"bad": object()})  # type: ignore[dict-item]
    lifecycle_not_callable = OperationsOnly()
    lifecycle_not_callable.on_lifecycle = 3  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match="on_lifecycle must be a method"):
        attach(local, {"odd": lifecycle_not_callable})
    attach(local, {"a": Recorder()})
    with pytest.raises(StorageError, match="already has observers"):
        attach(local, {"b": Recorder()})


def test_describers_count_keys_without_consuming_one_shot_iterables() -> None:
    key, count, args, kwargs = _many_keys((iter(["x", "y"]),), {})
    assert (key, count, args, kwargs) == ("x", 2, (["x", "y"],), {})
    key, count, args, kwargs = _many_keys((), {"keys": iter(["x"])})
    assert (key, count, kwargs) == ("x", 1, {"keys": ["x"]})
    assert _many_keys((5,), {})[:2] == (None, 0)
    assert _many_keys(([],), {})[:2] == (None, 0)


def test_a_transaction_names_its_first_key_and_counts_each_key_once() -> None:
    key, count, _, kwargs = _transaction((), {"expect": {"a": None}, "write": {"b": 1}, "delete": iter(["a", "c"])})
    assert (key, count, kwargs["delete"]) == ("b", 3, ["a", "c"])
    assert _transaction((), {})[:2] == (None, 0)


def test_lease_calls_name_the_lease_and_odd_arguments_name_no_key() -> None:
    class Held:
        name = "task:42"

    assert _lease_name(("task:42",), {})[:2] == ("task:42", 1)
    assert _held_lease((), {"lease": Held()})[:2] == ("task:42", 1)
    assert _held_lease((object(),), {})[:2] == (None, 1)
    assert _many_items(({},), {})[:2] == (None, 0)
    assert _many_items(([("a", 1)],), {})[:2] == (None, 0)


def test_retries_are_counted_per_call_even_with_threads_sharing_the_store() -> None:
    rec = Recorder()
    store = observed(Flaky(failures=2, retries=3), rec)
    start = threading.Barrier(8)

    def work(n: int) -> None:
        start.wait()
        for i in range(20):
            store.write(f"t{n}-{i}", i)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    writes = [e for e in rec.operations if e.operation == "write"]
    assert len(writes) == 160
    assert {e.retries for e in writes} == {2}


def test_the_fast_event_constructor_builds_what_the_dataclass_builds() -> None:
    values: dict[str, Any] = {f.name: f"v-{f.name}" for f in dataclasses.fields(OperationEvent)}
    fast = _operation_event(*values.values())
    assert fast == OperationEvent(**values)
    assert [getattr(fast, name) for name in values] == list(values.values())
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.key = "other"  # type: ignore[misc]


def test_every_public_operation_of_the_template_is_observed() -> None:
    # Not operations on data: building, configuring and the lifecycle (its own events),
    # and the change feed, a stream that may never end, so no one event could sum it up.
    not_operations = {"from_options", "from_url", "configure", "initialize", "close", "supports", "watch"}
    public = {name for name in dir(Storage) if not name.startswith("_") and callable(getattr(Storage, name))}
    assert public - not_operations <= {*_OPERATIONS, "keys"}


def test_reading_expiries_is_observed_like_any_read(local: LocalStorage) -> None:
    rec = Recorder()
    store = observed(local, rec)
    store.write("a", 1, ttl=60)
    assert store.ttl("a") is not None
    assert set(store.read_many_with_ttl(iter(["a", "b"]))) == {"a"}
    got = [(e.operation, e.key, e.keys, e.outcome) for e in rec.operations[1:]]
    assert got == [("ttl", "a", 1, "ok"), ("read_many_with_ttl", "a", 2, "ok")]


def test_leases_and_transactions_are_observed_with_their_keys(local: LocalStorage) -> None:
    rec = Recorder()
    store = observed(local, rec)
    lease = store.acquire_lease("task:42", ttl=30.0)
    assert lease is not None
    store.renew_lease(lease, ttl=30.0)
    store.transaction(write={"a": 1, "b": 2}, delete=iter(["c"]), fence=lease)
    assert store.release_lease(lease)
    got = [(e.operation, e.key, e.keys, e.outcome) for e in rec.operations]
    assert got == [
        ("acquire_lease", "task:42", 1, "ok"),
        ("renew_lease", "task:42", 1, "ok"),
        ("transaction", "a", 3, "ok"),
        ("release_lease", "task:42", 1, "ok"),
    ]
    assert store.read_many(["a", "b"]) == {"a": 1, "b": 2}
