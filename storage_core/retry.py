"""One retry policy for every backend: exponential backoff with jitter, and nothing else.

Backends switch their client library's own retries off and wrap each operation in
:meth:`RetryPolicy.call`, so there is exactly one place that decides how often and how
long to wait. Clock and randomness are injected so tests never really sleep.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from storage_core.errors import InvalidArgument

__all__ = ["ExponentialBackoff", "RetryPolicy"]

T = TypeVar("T")


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
                    raise
                failures += 1
                delay = self.backoff.compute(failures)
                if self.on_retry is not None:
                    self.on_retry(exc, failures, delay)
                self.sleep(delay)
