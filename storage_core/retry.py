"""One retry policy for every backend: exponential backoff with jitter, and nothing else.

Backends switch their client library's own retries off and wrap each operation in
:meth:`RetryPolicy.call`, so there is exactly one place that decides how often and how
long to wait. Clock and randomness are injected so tests never really sleep.

Observers learn of retries through :data:`retry_listener`, a context variable the
instrumented store sets around each operation: the policy reports to whoever is
listening in the calling context, so backends need no wiring, and a store nobody
observes pays one variable lookup per retry, nothing on success.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from storage_core.errors import InvalidArgument

__all__ = ["ExponentialBackoff", "RetryListener", "RetryPolicy", "retry_listener"]

T = TypeVar("T")


class RetryListener(Protocol):
    """Told of each retry of the operation under way in its context, and of giving up."""

    def retrying(self, error: BaseException, failures: int, delay: float) -> None:
        """*error* was the *failures*-th retryable failure; the policy waits *delay* s, then retries."""

    def gave_up(self, error: BaseException, failures: int) -> None:
        """*error* is retryable but the retries are spent (*failures* of them); it propagates."""


retry_listener: ContextVar[RetryListener | None] = ContextVar("storage_core_retry_listener", default=None)
"""The listener for retries in this context; None (the default) when nobody listens."""


@dataclass(frozen=True, slots=True)
class ExponentialBackoff:
    """Delay before retry *n*: ``base * 2**(n-1)``, capped, less a random share.

    With ``jitter=0.5`` each delay is drawn from ``[d/2, d]``: enough spread that many
    agents reconnecting after one outage do not arrive together, and never a zero wait.
    """

    base: float = 0.1
    cap: float = 10.0
    jitter: float = 0.5
    random: Callable[[], float] = field(default=random.random, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not (self.base >= 0 and self.cap >= self.base):
            raise InvalidArgument(f"backoff needs 0 <= base <= cap, got base={self.base}, cap={self.cap}")
        if not 0 <= self.jitter <= 1:
            raise InvalidArgument(f"jitter is a share between 0 and 1, got {self.jitter}")

    def compute(self, failures: int) -> float:
        """Seconds to wait after the *failures*-th consecutive failure (1-based)."""
        delay = min(self.cap, self.base * 2 ** (failures - 1))
        return float(delay * (1 - self.jitter * self.random()))


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Call an operation, retrying up to ``retries`` times the errors ``retryable`` accepts.

    Errors it does not accept propagate at once. When the retries run out the last error
    propagates too: the caller, which knows its error types, turns it into its own.
    """

    retries: int
    backoff: ExponentialBackoff
    retryable: Callable[[BaseException], bool]
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)
    on_retry: Callable[[BaseException, int, float], None] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise InvalidArgument(f"retries must be 0 or more, got {self.retries}")

    def call(self, operation: Callable[[int], T]) -> T:
        """Run ``operation(attempt)`` (attempt 0 first) until it succeeds or may not retry."""
        failures = 0
        while True:
            try:
                return operation(failures)
            except Exception as exc:
                if failures >= self.retries or not self.retryable(exc):
                    listener = retry_listener.get()
                    if listener is not None and failures >= self.retries and self.retryable(exc):
                        listener.gave_up(exc, failures)
                    raise
                failures += 1
                delay = self.backoff.compute(failures)
                if self.on_retry is not None:
                    self.on_retry(exc, failures, delay)
                listener = retry_listener.get()
                if listener is not None:
                    listener.retrying(exc, failures, delay)
                self.sleep(delay)
