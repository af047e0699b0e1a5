"""The "did you mean" helper every misspelled-name message uses."""

from __future__ import annotations

import pytest

from storage_core.suggest import did_you_mean


@pytest.mark.parametrize(
    ("word", "choices", "expected"),
    [
        ("consistncy", ["backend", "consistency", "namespace"], " (did you mean 'consistency'?)"),
        ("rdis", ["local", "redis"], " (did you mean 'redis'?)"),
        ("postgres", ["local", "redis"], ""),
        (42, ["local"], ""),
        ("local", [], ""),
    ],
)
def test_suggests_only_a_close_match(word: object, choices: list[str], expected: str) -> None:
    assert did_you_mean(word, choices) == expected
