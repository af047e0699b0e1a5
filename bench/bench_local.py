"""How much the local backend costs over raw sqlite3, and how it compares with diskcache.

Run: ``.venv/bin/python bench/bench_local.py [--rounds 9] [--keys 1000] [--shape both] [--dir DIR]``

Every contender works on the same file (diskcache on its own, in the same folder) with
the same settings (WAL; synchronous=NORMAL for the EVENTUAL writes and their baseline).
Each round times every contender once, in an order that alternates between rounds, and
every write stores values no earlier write stored (SQLite skips rewriting a row whose
bytes are unchanged, which would time nothing). The table shows the median of the
per-round ratios, which a noisy neighbour or a WAL checkpoint in one round cannot move.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sqlite3
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import diskcache
import orjson
from report import median_ratio, print_report
from samples import SHAPES

from storage_core import Consistency
from storage_core.codec import encode
from storage_local import LocalConfig, LocalStorage

RAW_SCHEMA = "CREATE TABLE IF NOT EXISTS raw_kv (key TEXT PRIMARY KEY NOT NULL, value BLOB NOT NULL) WITHOUT ROWID"
RAW_READ = "SELECT value FROM raw_kv WHERE key = ?"
RAW_UPSERT = "INSERT INTO raw_kv (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"


@dataclass
class Batch:
    """What one timed call works on: keys, and for writes fresh values and their JSON bytes."""

    keys: list[str]
    values: list[Any]
    blobs: list[bytes]


@dataclass
class Case:
    fn: Callable[[Batch], None]
    ops: int
    writes: bool


def run(rounds: int, count: int, folder: str, shape: str) -> None:
    make = SHAPES[shape]
    revs = itertools.count()
    path = os.path.join(folder, f"bench-{shape}.db")
    keys = [f"agent:{i}:state" for i in range(count)]

    def batch(ops: int, writes: bool) -> Batch:
        rev = next(revs) if writes else 0
        values = [make(i, rev) for i in range(ops)]
        return Batch(keys[:ops], values, [orjson.dumps(v) for v in values])

    store = LocalStorage(LocalConfig(path=path))
    store.initialize()
    raw = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    raw.execute("PRAGMA synchronous = NORMAL")
    raw.execute(RAW_SCHEMA)
    cache = diskcache.Cache(os.path.join(folder, f"diskcache-{shape}"))
    try:
        first = batch(count, writes=False)
        store.write_many(dict(zip(first.keys, first.values, strict=True)), consistency=Consistency.EVENTUAL)
        for key, blob in zip(first.keys, first.blobs, strict=True):
            raw.execute(RAW_UPSERT, (key, blob))
        for key, value in zip(first.keys, first.values, strict=True):
            cache.set(key, value)

        cases = build_cases(store, raw, cache, count)
        samples: dict[str, list[float]] = {name: [] for name in cases}
        order = list(cases)
        for round_no in range(rounds):
            for name in order if round_no % 2 == 0 else reversed(order):
                case = cases[name]
                work = batch(case.ops, case.writes)
                start = time.perf_counter_ns()
                case.fn(work)
                samples[name].append((time.perf_counter_ns() - start) / case.ops)
    finally:
        cache.close()
        raw.close()
        store.close()
    report(samples, f"{shape} values: {rounds} rounds, {count} keys, {len(first.blobs[0])} bytes each")


def build_cases(store: LocalStorage, raw: sqlite3.Connection, cache: diskcache.Cache, count: int) -> dict[str, Case]:
    """Each contender, doing its work on a batch."""

    def store_read(b: Batch) -> None:
        read = store.read
        for key in b.keys:
            read(key)

    def raw_read(b: Batch) -> None:
        execute, loads = raw.execute, orjson.loads
        for key in b.keys:
            loads(execute(RAW_READ, (key,)).fetchone()[0])

    def cache_get(b: Batch) -> None:
        get = cache.get
        for key in b.keys:
            get(key)

    def store_write(level: Consistency) -> Callable[[Batch], None]:
        def write(b: Batch) -> None:
            put = store.write
            for key, value in zip(b.keys, b.values, strict=True):
                put(key, value, consistency=level)

        return write

    def raw_write(b: Batch) -> None:
        execute = raw.execute  # autocommit: each upsert is its own committed transaction
        for key, blob in zip(b.keys, b.blobs, strict=True):
            execute(RAW_UPSERT, (key, blob))

    def encode_only(b: Batch) -> None:
        for value in b.values:
            encode(value)

    def cache_set(b: Batch) -> None:
        put = cache.set
        for key, value in zip(b.keys, b.values, strict=True):
            put(key, value)

    synced = min(count, 100)  # each STRONG write waits for an fsync: fewer of them
    return {
        "store.read": Case(store_read, count, writes=False),
        "raw SELECT + orjson.loads": Case(raw_read, count, writes=False),
        "diskcache get": Case(cache_get, count, writes=False),
        "store.write EVENTUAL": Case(store_write(Consistency.EVENTUAL), count, writes=True),
        "raw upsert + commit (NORMAL)": Case(raw_write, count, writes=True),
        "diskcache set": Case(cache_set, count, writes=True),
        "core encode() alone": Case(encode_only, count, writes=True),
        "store.write STRONG": Case(store_write(Consistency.STRONG), synced, writes=True),
        "store.write EVENTUAL (as many)": Case(store_write(Consistency.EVENTUAL), synced, writes=True),
    }


def report(samples: dict[str, list[float]], title: str) -> None:
    def ratio(a: str, b: str, less: str | None = None) -> float:
        return median_ratio(samples, a, b, less)

    write, raw_write = "store.write EVENTUAL", "raw upsert + commit (NORMAL)"
    rows = [
        ("store.read / raw SELECT+loads", ratio("store.read", "raw SELECT + orjson.loads"), "<= 1.5"),
        ("store.write EVENTUAL / raw upsert", ratio(write, raw_write), "<= 1.5"),
        ("  the same, less core encode()", ratio(write, raw_write, less="core encode() alone"), "(backend's share)"),
        ("store.read / diskcache get", ratio("store.read", "diskcache get"), "< 1"),
        ("store.write EVENTUAL / diskcache set", ratio(write, "diskcache set"), "< 1"),
        ("store.write EVENTUAL / STRONG", ratio("store.write EVENTUAL (as many)", "store.write STRONG"), "<= 1"),
    ]
    print_report(f"{title}, SQLite {sqlite3.sqlite_version}", samples, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--keys", type=int, default=1000)
    parser.add_argument("--shape", choices=[*SHAPES, "both"], default="both")
    parser.add_argument("--dir", help="where to make the temporary folder (use a disk, not tmpfs)")
    args = parser.parse_args()
    shapes = list(SHAPES) if args.shape == "both" else [args.shape]
    with tempfile.TemporaryDirectory(prefix="bench-local-", dir=args.dir) as folder:
        for shape in shapes:
            run(args.rounds, args.keys, folder, shape)


if __name__ == "__main__":
    main()
