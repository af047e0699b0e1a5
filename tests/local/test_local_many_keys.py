"""A million keys: ``keys()`` streams them in order with memory bounded by one page."""

from __future__ import annotations

import time
import tracemalloc

import pytest

from storage_core import Consistency
from storage_local import LocalStorage

COUNT = 1_000_000
BATCH = 100_000


@pytest.mark.slow
def test_a_million_keys_stream_in_bounded_memory(store: LocalStorage) -> None:
    started = time.monotonic()
    for first in range(0, COUNT, BATCH):
        store.write_many({f"key:{i:07}": i for i in range(first, first + BATCH)}, consistency=Consistency.EVENTUAL)
    assert store.read("key:0999999") == 999_999

    tracemalloc.start()
    try:
        count, last = 0, ""
        for key in store.keys("key:"):
            assert key > last  # in order, each once
            last = key
            count += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == COUNT
    assert last == "key:0999999"
    # A list of a million keys alone would take about 60 MB; one page is 2048 keys.
    assert peak < 4_000_000, f"iterating took {peak / 1e6:.1f} MB"

    assert list(store.keys("key:012345")) == [f"key:{i:07}" for i in range(123450, 123460)]
    assert time.monotonic() - started < 60
