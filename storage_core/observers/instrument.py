"""Instruments one store for its observers by wrapping its public methods on the instance.

Only a store that has observers is touched: a plain store runs the template's own code
with nothing added, so "no observer, no cost" needs no flag tested on the hot path.
Retries reach the operation's event through :data:`storage_core.retry.retry_listener`,
which each wrapper sets for the length of its call.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from time import perf_counter
from typing import Any

from storage_core.consistency import Consistency
from storage_core.errors import StorageError
from storage_core.observers.events import LifecycleEvent, LifecycleKind, Observer, OperationEvent
from storage_core.retry import retry_listener
from storage_core.storage import Storage

__all__ = ["attach", "is_observed"]

log = logging.getLogger("storage_core")

_HUB = "_storage_core_observers"
"""The instance attribute that holds a store's hub; its presence marks a store as observed."""

Args = tuple[Any, ...]
Kwargs = dict[str, Any]
# What a call names: (first key, how many keys, the arguments to pass on). A describer
# may replace a one-shot iterable of keys by a list, so counting it does not consume it.
Described = tuple[str | None, int, Args, Kwargs]
Describe = Callable[[Args, Kwargs], Described]


def _arg(args: Args, kwargs: Kwargs, index: int, name: str) -> Any:
    return args[index] if len(args) > index else kwargs.get(name)


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _no_key(args: Args, kwargs: Kwargs) -> Described:
    return None, 0, args, kwargs


def _one_key(args: Args, kwargs: Kwargs) -> Described:
    return _str_or_none(_arg(args, kwargs, 0, "key")), 1, args, kwargs


def _lease_name(args: Args, kwargs: Kwargs) -> Described:
    return _str_or_none(_arg(args, kwargs, 0, "name")), 1, args, kwargs


def _held_lease(args: Args, kwargs: Kwargs) -> Described:
    return _str_or_none(getattr(_arg(args, kwargs, 0, "lease"), "name", None)), 1, args, kwargs


def _listed(args: Args, kwargs: Kwargs, index: int, name: str) -> tuple[list[Any] | None, Args, Kwargs]:
    """The iterable argument as a list, put back in its place so the call still gets all of it."""
    value = _arg(args, kwargs, index, name)
    if value is None or isinstance(value, str | bytes) or not hasattr(value, "__iter__"):
        return None, args, kwargs  # the template refuses it with its own message
    if isinstance(value, list | tuple):
        return list(value), args, kwargs
    items = list(value)
    if len(args) > index:
        return items, (*args[:index], items, *args[index + 1 :]), kwargs
    return items, args, {**kwargs, name: items}


def _many_keys(args: Args, kwargs: Kwargs) -> Described:
    keys, args, kwargs = _listed(args, kwargs, 0, "keys")
    if not keys:
        return None, 0, args, kwargs
    return _str_or_none(keys[0]), len(keys), args, kwargs


def _many_items(args: Args, kwargs: Kwargs) -> Described:
    items = _arg(args, kwargs, 0, "items")
    if not isinstance(items, Mapping) or not items:
        return None, 0, args, kwargs
    return _str_or_none(next(iter(items))), len(items), args, kwargs


def _transaction(args: Args, kwargs: Kwargs) -> Described:
    expect, write = _arg(args, kwargs, 0, "expect"), _arg(args, kwargs, 1, "write")
    deleted, args, kwargs = _listed(args, kwargs, 2, "delete")
    named: dict[Any, None] = {}
    for part in (write, deleted, expect):
        if isinstance(part, Mapping | list):
            named.update(dict.fromkeys(part))
    first = next(iter(named), None)
    return _str_or_none(first), len(named), args, kwargs


# Public operation -> (describer, whether it writes and so has a consistency level).
# Operations a backend's class lacks (those of later issues, say) are simply not wrapped.
_OPERATIONS: Mapping[str, tuple[Describe, bool]] = {
    "read": (_one_key, False),
    "get": (_one_key, False),
    "exists": (_one_key, False),
    "read_entry": (_one_key, False),
    "ttl": (_one_key, False),
    "ping": (_no_key, False),
    "write": (_one_key, True),
    "delete": (_one_key, True),
    "update": (_one_key, True),
    "read_many": (_many_keys, False),
    "read_many_with_ttl": (_many_keys, False),
    "write_many": (_many_items, True),
    "transaction": (_transaction, True),
    "acquire_lease": (_lease_name, False),
    "renew_lease": (_held_lease, False),
    "release_lease": (_held_lease, False),
}


# An observed call builds one event, and a frozen dataclass's __init__ sets each field
# through object.__setattr__: about three times the cost of setting its slot directly,
# the biggest single share of what observing costs. tests/core/test_observers.py checks
# that this builds what OperationEvent(...) builds, for every field.
_new = object.__new__
_SLOTS = vars(OperationEvent)
_set_backend = _SLOTS["backend"].__set__
_set_operation = _SLOTS["operation"].__set__
_set_key = _SLOTS["key"].__set__
_set_keys = _SLOTS["keys"].__set__
_set_consistency = _SLOTS["consistency"].__set__
_set_duration = _SLOTS["duration_s"].__set__
_set_outcome = _SLOTS["outcome"].__set__
_set_retries = _SLOTS["retries"].__set__
_set_namespace = _SLOTS["namespace"].__set__


def _operation_event(  # noqa: PLR0917 - positional, in the fields' order, on the hot path
    backend: str,
    operation: str,
    key: str | None,
    keys: int,
    consistency: str | None,
    duration_s: float,
    outcome: str,
    retries: int,
    namespace: str,
) -> OperationEvent:
    event: OperationEvent = _new(OperationEvent)
    _set_backend(event, backend)
    _set_operation(event, operation)
    _set_key(event, key)
    _set_keys(event, keys)
    _set_consistency(event, consistency)
    _set_duration(event, duration_s)
    _set_outcome(event, outcome)
    _set_retries(event, retries)
    _set_namespace(event, namespace)
    return event


def _level(value: object, store: Storage) -> str | None:
    if value is None:
        return store.default_consistency.value
    try:
        return Consistency.parse(value).value
    except ValueError:
        return None  # the call itself was refused for it


class _Hub:
    """Hands each event to every observer; one that raises is reported once and skipped."""

    def __init__(self, store: Storage, observers: Mapping[str, Observer]) -> None:
        self.store = store
        self._on_operation = [(label, observer.on_operation) for label, observer in observers.items()]
        self._on_lifecycle: list[tuple[str, Callable[[LifecycleEvent], object]]] = [
            (label, hook) for label, observer in observers.items() if (hook := getattr(observer, "on_lifecycle", None))
        ]
        self._failed: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def operation(self, event: OperationEvent) -> None:
        for label, hook in self._on_operation:
            try:
                hook(event)
            except Exception:
                self._report(label, "on_operation")

    def lifecycle(self, kind: LifecycleKind, **details: Any) -> None:
        if not self._on_lifecycle:
            return
        event = LifecycleEvent(self.store.name, kind, self.store.namespace, **details)
        # A lifecycle hook that uses a store of its own must not report that store's
        # retries as this operation's (nor recurse through them).
        token = retry_listener.set(None)
        try:
            for label, hook in self._on_lifecycle:
                try:
                    hook(event)
                except Exception:
                    self._report(label, "on_lifecycle")
        finally:
            retry_listener.reset(token)

    def _report(self, label: str, method: str) -> None:
        with self._lock:
            if (label, method) in self._failed:
                return
            self._failed.add((label, method))
        log.error(
            "the storage observer %r raised in %s for %r; the operation was not affected, and further errors "
            "from it are not reported; fix the observer or remove it from storage.observers",
            label,
            method,
            self.store,
            exc_info=True,
        )


class _Attempt:
    """The retry listener of one call: counts its retries and reports them as lifecycle events."""

    __slots__ = ("_hub", "_operation", "retries")

    def __init__(self, hub: _Hub, operation: str) -> None:
        self._hub = hub
        self._operation = operation
        self.retries = 0

    def retrying(self, error: BaseException, failures: int, delay: float) -> None:
        self.retries += 1
        self._hub.lifecycle(
            "retrying", operation=self._operation, attempt=failures, delay_s=delay, error=type(error).__name__
        )

    def gave_up(self, error: BaseException, failures: int) -> None:
        self._hub.lifecycle(
            "connection_failed", operation=self._operation, attempt=failures, error=type(error).__name__
        )


def _observed(hub: _Hub, name: str, method: Callable[..., Any], describe: Describe, writes: bool) -> Callable[..., Any]:
    store = hub.store
    one_key = describe is _one_key  # most calls: inlined, as a call to it costs a fifth of the wrapper

    @functools.wraps(method)
    def observed(*args: Any, **kwargs: Any) -> Any:
        attempt = _Attempt(hub, name)
        key: str | None = None
        count = 0
        outcome = "ok"
        token = retry_listener.set(attempt)
        start = perf_counter()
        try:
            if one_key:
                key = args[0] if args else kwargs.get("key")
                if type(key) is not str:
                    key = None
                count = 1
            else:
                key, count, args, kwargs = describe(args, kwargs)
            return method(*args, **kwargs)
        except BaseException as exc:
            outcome = type(exc).__name__
            raise
        finally:
            duration = perf_counter() - start
            retry_listener.reset(token)
            level = _level(kwargs.get("consistency"), store) if writes else None
            hub.operation(
                _operation_event(
                    store.name, name, key, count, level, duration, outcome, attempt.retries, store.namespace
                )
            )

    return observed


def _observed_keys(hub: _Hub, method: Callable[..., Iterator[str]]) -> Callable[..., Iterator[str]]:
    @functools.wraps(method)
    def observed_keys(*args: Any, **kwargs: Any) -> Iterator[str]:
        attempt = _Attempt(hub, "keys")
        token = retry_listener.set(attempt)
        start = perf_counter()
        try:
            stream = method(*args, **kwargs)
        except BaseException as exc:
            retry_listener.reset(token)
            _keys_event(hub, attempt, 0, perf_counter() - start, type(exc).__name__)
            raise
        retry_listener.reset(token)
        return _streamed(hub, attempt, stream, perf_counter() - start)

    return observed_keys


def _streamed(hub: _Hub, attempt: _Attempt, stream: Iterator[str], elapsed: float) -> Iterator[str]:
    """Yield what *stream* yields; one event when it ends, is abandoned, or fails.

    Its duration is the time spent in the store, not the consumer's time between keys.
    """
    count = 0
    outcome = "ok"
    try:
        while True:
            token = retry_listener.set(attempt)
            start = perf_counter()
            try:
                key = next(stream)
            except StopIteration:
                return
            except BaseException as exc:
                outcome = type(exc).__name__
                raise
            finally:
                elapsed += perf_counter() - start
                retry_listener.reset(token)
            count += 1
            yield key
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()
        _keys_event(hub, attempt, count, elapsed, outcome)


def _keys_event(hub: _Hub, attempt: _Attempt, count: int, duration: float, outcome: str) -> None:
    store = hub.store
    hub.operation(
        _operation_event(store.name, "keys", None, count, None, duration, outcome, attempt.retries, store.namespace)
    )


def _observed_lifecycle(hub: _Hub, name: str, method: Callable[[], None], kind: LifecycleKind) -> Callable[[], None]:
    store = hub.store

    @functools.wraps(method)
    def observed() -> None:
        # The template's own flag: an idempotent second initialize() or close() is no event.
        was_open = store._open
        token = retry_listener.set(_Attempt(hub, name))
        try:
            method()
        finally:
            retry_listener.reset(token)
        if store._open != was_open:
            hub.lifecycle(kind)

    return observed


def attach(store: Storage, observers: Mapping[str, Observer]) -> None:
    """Make *store* send its events to *observers* (labels, as in messages, to observers).

    Attach before the store is shared between threads; ``open_storage`` does it for
    ``storage.observers`` before ``initialize()``, so the ``initialized`` event is seen.

    Raises:
        TypeError: an observer has no callable ``on_operation``.
        StorageError: the store already has observers.
    """
    for label, observer in observers.items():
        if not callable(getattr(observer, "on_operation", None)):
            raise TypeError(f"the storage observer {label!r} ({observer!r:.80}) has no on_operation(event) method")
        hook = getattr(observer, "on_lifecycle", None)
        if hook is not None and not callable(hook):
            raise TypeError(f"the storage observer {label!r}: on_lifecycle must be a method, got {hook!r:.80}")
    if is_observed(store):
        raise StorageError(f"{store!r} already has observers; attach them all in one call")
    if not observers:
        return
    hub = _Hub(store, observers)
    slots = vars(store)
    slots[_HUB] = hub
    cls = type(store)
    for name, (describe, writes) in _OPERATIONS.items():
        if hasattr(cls, name):
            slots[name] = _observed(hub, name, getattr(store, name), describe, writes)
    slots["keys"] = _observed_keys(hub, store.keys)
    slots["initialize"] = _observed_lifecycle(hub, "initialize", store.initialize, "initialized")
    slots["close"] = _observed_lifecycle(hub, "close", store.close, "closed")


def is_observed(store: Storage) -> bool:
    """Whether *store* has observers attached."""
    return _HUB in vars(store)
