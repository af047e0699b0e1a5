"""Reading and writing a store in batches: what export, import and migrate share."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from storage_core.consistency import Consistency
from storage_core.storage import Storage

T = TypeVar("T")

BATCH = 500
"""Keys per round trip: large enough to amortise it, small enough to keep memory flat."""


def chunks(items: Iterable[T], size: int = BATCH) -> Iterator[list[T]]:
    """*items* in lists of *size* (the last may be shorter), never holding more than one."""
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def write_batch(
    store: Storage, items: Iterable[tuple[str, Any, float | None]], *, consistency: Consistency | str | None = None
) -> int:
    """Write ``(key, value, ttl)`` items, as few ``write_many`` calls as their expiries allow.

    ``write_many`` takes one ttl for all its items, so items are grouped by ttl: keys
    without expiry (usually most) go together. A key given twice keeps its last value.
    Returns how many keys were written.
    """
    latest = {key: (value, ttl) for key, value, ttl in items}
    groups: dict[float | None, dict[str, Any]] = {}
    for key, (value, ttl) in latest.items():
        groups.setdefault(ttl, {})[key] = value
    for ttl, values in groups.items():
        store.write_many(values, ttl=ttl, consistency=consistency)
    return len(latest)
