"""The one retry policy: exact attempt counts and delays, observed with no real waiting."""

from __future__ import annotations

from typing import TypedDict

import pytest

from storage_core.backend import ExponentialBackoff, InvalidArgument, RetryPolicy


class Flaky:
    """Fails with the given errors in turn, then returns the attempt number."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.attempts: list[int] = []

    def __call__(self, attempt: int) -> int:
        self.attempts.append(attempt)
        if self.errors:
            raise self.errors.pop(0)
        return attempt


def policy(retries: int, slept: list[float], **backoff: float) -> RetryPolicy:
    return RetryPolicy(
        retries=retries,
        backoff=ExponentialBackoff(random=lambda: 0.0, **backoff),
        retryable=lambda exc: isinstance(exc, OSError),
        sleep=slept.append,
    )


def test_success_on_the_first_attempt_does_not_sleep() -> None:
    slept: list[float] = []
    assert policy(3, slept).call(Flaky()) == 0
    assert slept == []


def test_retryable_errors_are_retried_with_doubling_delays() -> None:
    slept: list[float] = []
    op = Flaky(OSError("reset"), OSError("refused"))
    assert policy(3, slept, base=0.1).call(op) == 2
    assert op.attempts == [0, 1, 2]
    assert slept == pytest.approx([0.1, 0.2])


def test_after_the_last_retry_the_last_error_propagates() -> None:
    slept: list[float] = []
    op = Flaky(*(OSError(f"down {i}") for i in range(10)))
    with pytest.raises(OSError, match="down 3"):
        policy(3, slept, base=0.1).call(op)
    assert op.attempts == [0, 1, 2, 3]  # one attempt, then exactly three retries
    assert slept == pytest.approx([0.1, 0.2, 0.4])


def test_errors_that_a_retry_cannot_cure_propagate_at_once() -> None:
    slept: list[float] = []
    op = Flaky(ValueError("bad command"))
    with pytest.raises(ValueError, match="bad command"):
        policy(3, slept).call(op)
    assert op.attempts == [0]
    assert slept == []


def test_zero_retries_means_one_attempt() -> None:
    slept: list[float] = []
    op = Flaky(OSError("x"))
    with pytest.raises(OSError, match="x"):
        policy(0, slept).call(op)
    assert op.attempts == [0]


def test_delays_are_capped() -> None:
    backoff = ExponentialBackoff(base=1.0, cap=5.0, random=lambda: 0.0)
    assert [backoff.compute(n) for n in range(1, 6)] == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_jitter_takes_up_to_its_share_off_the_delay() -> None:
    assert ExponentialBackoff(base=1.0, jitter=0.5, random=lambda: 1.0).compute(1) == 0.5
    assert ExponentialBackoff(base=1.0, jitter=0.5, random=lambda: 0.5).compute(2) == 1.5
    assert ExponentialBackoff(base=1.0, jitter=0.0, random=lambda: 1.0).compute(3) == 4.0


def test_real_jitter_stays_within_bounds() -> None:
    backoff = ExponentialBackoff(base=0.2, cap=10.0, jitter=0.5)
    delays = [backoff.compute(3) for _ in range(200)]
    assert all(0.4 <= d <= 0.8 for d in delays)
    assert len(set(delays)) > 100  # really random, so agents do not reconnect in lockstep


def test_on_retry_sees_each_failure_with_its_delay() -> None:
    seen: list[tuple[str, int, float]] = []
    retry = RetryPolicy(
        retries=2,
        backoff=ExponentialBackoff(base=0.01, random=lambda: 0.0),
        retryable=lambda exc: True,
        sleep=lambda s: None,
        on_retry=lambda exc, n, delay: seen.append((str(exc), n, delay)),
    )
    retry.call(Flaky(RuntimeError("a"), RuntimeError("b")))
    assert seen == [("a", 1, 0.01), ("b", 2, 0.02)]


class BackoffArgs(TypedDict, total=False):
    base: float
    cap: float
    jitter: float


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"base": -1.0}, "0 <= base <= cap"),
        ({"base": 2.0, "cap": 1.0}, "0 <= base <= cap"),
        ({"jitter": 1.5}, "share between 0 and 1"),
    ],
)
def test_nonsense_backoffs_are_refused(kwargs: BackoffArgs, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        ExponentialBackoff(**kwargs)


def test_negative_retries_are_refused() -> None:
    with pytest.raises(InvalidArgument, match="0 or more"):
        RetryPolicy(retries=-1, backoff=ExponentialBackoff(), retryable=lambda exc: True)
