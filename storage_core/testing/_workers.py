"""Code run in spawned child processes: module-level, so ``spawn`` can find it by name."""

from __future__ import annotations

from dataclasses import dataclass
from multiprocessing.synchronize import Barrier, Event
from typing import Any

from storage_core.errors import VersionConflict
from storage_core.storage import Storage
from storage_core.testing.factories import StorageFactory


def plus_one(value: int) -> int:
    """The ``update`` function of the contention tests (a lambda would not pickle)."""
    return value + 1


@dataclass(frozen=True)
class _Append:
    item: str

    def __call__(self, value: list[str]) -> list[str]:
        return [*value, self.item]


@dataclass(frozen=True)
class Job:
    """What one worker process needs: how to open the store, and what to do in it."""

    factory: StorageFactory
    namespace: str
    key: str
    count: int = 1
    version: str = ""
    me: str = ""


def _open(job: Job, start: Barrier) -> Storage:
    """The worker's own store; a failure breaks the barrier so the others stop waiting at once."""
    try:
        return job.factory(job.namespace)
    except BaseException:
        start.abort()
        raise


def increment(job: Job, start: Barrier, timeout: float) -> None:
    """Open a store of our own, wait for every worker, then increment the key ``count`` times."""
    store = _open(job, start)
    try:
        start.wait(timeout)
        for _ in range(job.count):
            store.update(job.key, plus_one, default=0)
    finally:
        store.close()


def race_version(job: Job, start: Barrier, timeout: float) -> None:
    """Try one conditional write with the shared ``version``; a winner signs ``winners``."""
    store = _open(job, start)
    try:
        start.wait(timeout)
        try:
            store.write(job.key, job.me, if_version=job.version)
        except VersionConflict:
            return
        store.update("winners", _Append(job.me), default=[])
    finally:
        store.close()


TORN_KEYS = 4
"""Keys the killed writer rewrites with ``write_many`` besides its ``write`` of ``job.key``."""


def whole_value(i: int) -> dict[str, Any]:
    """Value number *i* of the killed writer: large, and checkable for being whole."""
    return {"i": i, "blob": f"{i:08d}" * 16_384, "end": i}


def is_whole(value: Any) -> bool:
    """Whether *value* is one of :func:`whole_value`'s values, complete."""
    if not isinstance(value, dict) or set(value) != {"i", "blob", "end"}:
        return False
    return bool(value["i"] == value["end"] and value["blob"] == f"{value['i']:08d}" * 16_384)


def write_until_killed(job: Job, ready: Event) -> None:
    """Rewrite ``job.key`` and a few more keys with large values, until the test kills us."""
    store = job.factory(job.namespace)
    i = 0
    while True:
        i += 1
        value = whole_value(i)
        store.write(job.key, value)
        store.write_many({f"{job.key}-{n}": value for n in range(TORN_KEYS)})
        ready.set()
