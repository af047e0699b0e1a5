"""Code the coordination tests run in spawned processes: module-level, so ``spawn`` finds it by name."""

from __future__ import annotations

import os
import random
import threading
import time
from dataclasses import dataclass
from multiprocessing.synchronize import Barrier, Event

from storage_core.errors import LeaseLost
from storage_core.storage import Storage
from storage_core.testing._changes import with_feed
from storage_core.testing._transactions import move_units
from storage_core.testing.factories import StorageFactory

FEED_OPS = 10_000
FEED_KEYS = 50
# A watcher ends after this many idle seconds, so a forgotten one cannot outlive its test for long.
FEED_IDLE = 60.0


@dataclass(frozen=True)
class CoordinationJob:
    """How a worker opens the store, and what it works on."""

    factory: StorageFactory
    namespace: str
    me: int = 0
    rounds: int = 0
    ttl: float = 0.5
    path: str = ""  # a file the worker reports through


def feed_op(i: int) -> tuple[str, str]:
    """The writer's *i*-th operation: even ones put a key, odd ones delete it again."""
    return f"k{(i // 2) % FEED_KEYS}", "put" if i % 2 == 0 else "delete"


def hold_until_lost(job: CoordinationJob, ready: Event) -> None:
    """Acquire, then write under the lease until the store says it is lost; report in ``job.path``."""
    store = job.factory(job.namespace)
    try:
        lease = store.acquire_lease("task", ttl=job.ttl)
        if lease is None:
            raise SystemExit("the lease was already held")
        written = 0
        try:
            while True:
                store.write("result", f"A:{written}", fence=lease)
                written += 1
                if written == 1:
                    ready.set()
                time.sleep(0.01)
        except LeaseLost:
            _report(job.path, f"lost {lease.token} {written}")
    finally:
        store.close()


def take_turns(job: CoordinationJob, start: Barrier, timeout: float) -> None:
    """Hold the lease ``rounds`` times, recording each tenure (token, start, end) with a fenced write."""
    store = job.factory(job.namespace)
    rng = random.Random(job.me)
    try:
        start.wait(timeout)
        deadline = time.monotonic() + timeout
        for _ in range(job.rounds):
            while (lease := store.acquire_lease("mutex", ttl=job.ttl)) is None:
                if time.monotonic() > deadline:
                    raise SystemExit(f"worker {job.me} never got the lease")
                time.sleep(rng.uniform(0.0005, 0.003))
            began = time.monotonic()
            time.sleep(rng.uniform(0, 0.002))
            ended = time.monotonic()
            store.write(f"tenure:{lease.token}", [job.me, lease.token, began, ended], fence=lease)
            store.release_lease(lease)
    finally:
        store.close()


def move_between_accounts(job: CoordinationJob, start: Barrier, timeout: float) -> None:
    """Eight threads of this process move ``rounds`` units each; each reports its moves' net effect."""
    store = job.factory(job.namespace)
    try:
        start.wait(timeout)
        threads = [threading.Thread(target=_mover, args=(store, job.rounds, job.me * 100 + n)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout)
        if any(thread.is_alive() for thread in threads):
            raise SystemExit(f"movers of worker {job.me} hung")
    finally:
        store.close()


def _mover(store: Storage, rounds: int, seed: int) -> None:
    deltas = move_units(store, rounds, seed)
    store.write(f"deltas:{seed}", deltas)


def write_feed(job: CoordinationJob, start: Event) -> None:
    """Do ``FEED_OPS`` puts and deletes, each its own call, once the first watcher is ready."""
    store = with_feed(job.factory(job.namespace))
    try:
        start.wait(60)
        for i in range(FEED_OPS):
            key, kind = feed_op(i)
            # EVENTUAL: the test is about the feed, not about 10,000 fsyncs.
            if kind == "put":
                store.write(key, i, consistency="eventual")
            else:
                store.delete(key, consistency="eventual")
    finally:
        store.close()


def watch_feed(job: CoordinationJob, ready: Event) -> None:
    """Append each change to ``job.path`` as a line, resuming after the last whole line there."""
    store = with_feed(job.factory(job.namespace))
    try:
        since = None
        if os.path.exists(job.path):
            with open(job.path, "rb+") as file:
                lines = file.read().split(b"\n")
                # A kill mid-line leaves a torn last line: drop it, and resume after the one before.
                whole = lines[:-1]
                file.seek(sum(len(line) + 1 for line in whole))
                file.truncate()
            if whole:
                since = whole[-1].decode().split(" ")[3]
        changes = store.watch(since=since, timeout=FEED_IDLE)
        ready.set()
        with open(job.path, "a", encoding="utf-8") as out:
            for change in changes:
                out.write(f"{change.key} {change.kind} {change.version} {change.cursor}\n")
                out.flush()
    finally:
        store.close()


def _report(path: str, line: str) -> None:
    with open(path, "a", encoding="utf-8") as file:
        file.write(line + "\n")
