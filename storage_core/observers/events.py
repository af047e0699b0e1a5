"""What observers are, and what they receive: frozen records with no value and no secret.

An event names the operation and its first key (without namespace) but never the value
written or read, nor a URL or password: observers often ship what they get to a log or
a collector that more people can read than the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

__all__ = ["LifecycleEvent", "LifecycleKind", "Observer", "OperationEvent"]

LifecycleKind = Literal["initialized", "closed", "retrying", "connection_failed"]


@dataclass(frozen=True, slots=True)
class OperationEvent:
    """One public call on an observed store, sent once it has returned or raised.

    ``key`` is the first key the call named (None for calls naming none, such as
    ``keys()``), ``keys`` how many keys it concerned (for ``keys()``, how many it
    yielded), ``consistency`` the level of a write (None for a read), ``outcome``
    ``"ok"`` or the class name of the error it raised, ``retries`` how many times the
    retry policy retried on its behalf.
    """

    backend: str
    operation: str
    key: str | None
    keys: int
    consistency: str | None
    duration_s: float
    outcome: str
    retries: int
    namespace: str = ""


@dataclass(frozen=True, slots=True)
class LifecycleEvent:
    """A change in the store's life: opened, closed, retrying, or unreachable.

    For ``retrying`` and ``connection_failed``, ``operation`` names the call under way
    (``initialize`` for the first connection), ``attempt`` the number of the retry about
    to be made (or, on giving up, how many were made), ``delay_s`` the wait before it and
    ``error`` the class name of the failure.
    """

    backend: str
    kind: LifecycleKind
    namespace: str = ""
    operation: str | None = None
    attempt: int = 0
    delay_s: float = 0.0
    error: str | None = None


class Observer(Protocol):
    """What an observer factory returns; ``on_lifecycle`` is optional.

    Called synchronously, in the thread of the operation, so it must be quick and
    thread-safe. What it raises is logged once and otherwise ignored.
    """

    def on_operation(self, event: OperationEvent) -> None:
        """Record one finished operation."""
