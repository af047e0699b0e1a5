"""How much the Redis backend costs over raw redis-py, on the same pool, in one run.

Run: ``.venv/bin/python bench/bench_redis.py [--rounds 15] [--ops 1000] [--batch 100]``
(``REDIS_URL=redis://... `` to use a server of your own; otherwise the script starts a
private ``redis-server`` on a free loopback port and stops it at the end).

The raw contender uses the store's own ``BlockingConnectionPool`` (same connections, same
parser, retries off) and the same orjson bytes: ``r.set(key, orjson.dumps(value))`` and
``orjson.loads(r.get(key))``, the code a user would write without storage-core. Each round
times every contender once, in an order that alternates between rounds; the table shows
the median of the per-round ratios, which a noisy neighbour in one round cannot move.

``write_many`` is one ``MSET`` (all or none). Its baseline is the raw batch with the same
guarantee, 100 ``SET`` in one ``MULTI``/``EXEC`` pipeline; a raw ``MSET`` is shown too.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import orjson
import redis
from report import median_ratio, print_report
from samples import SHAPES

from storage_core import Consistency, Storage
from storage_redis import RedisConfig, RedisStorage


@contextmanager
def redis_server() -> Iterator[str]:
    """``$REDIS_URL``, or a private redis-server on a free loopback port for the run."""
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("no redis-server on PATH: install it, or set REDIS_URL")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with tempfile.TemporaryDirectory() as folder:
        log = Path(folder) / "redis.log"
        args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        process = subprocess.Popen([*args, "--dir", folder, "--logfile", str(log)])
        try:
            deadline = time.monotonic() + 10
            while not log.exists() or "Ready to accept" not in log.read_text():
                if time.monotonic() > deadline or process.poll() is not None:
                    raise SystemExit("redis-server did not start")
                time.sleep(0.01)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            process.terminate()
            process.wait(10)


Case = Callable[[int], None]


class RawClient(Protocol):
    """What the single-key baselines use of a raw client: ``redis.Redis`` or ``RedisCluster``."""

    def set(self, name: str, value: bytes) -> Any: ...
    def get(self, name: str) -> Any: ...


def single_key_cases(
    store: Storage, raw: RawClient, keys: list[str], ops: int, values: Callable[[int, int], list[dict[str, Any]]]
) -> dict[str, tuple[Case, int]]:
    """``write``/``read`` against raw ``SET``/``GET`` of the same orjson bytes: shared by the Redis benchmarks."""
    dumps, loads = orjson.dumps, orjson.loads
    eventual = Consistency.EVENTUAL

    def store_write(rev: int) -> None:
        write = store.write
        for key, value in zip(keys[:ops], values(ops, rev), strict=True):
            write(key, value, consistency=eventual)

    def raw_set(rev: int) -> None:
        put = raw.set
        for key, value in zip(keys[:ops], values(ops, rev), strict=True):
            put(key, dumps(value))

    def store_read(rev: int) -> None:
        read = store.read
        for key in keys[:ops]:
            read(key)

    def raw_get(rev: int) -> None:
        get = raw.get
        for key in keys[:ops]:
            loads(get(key))

    return {
        "store.write (EVENTUAL)": (store_write, ops),
        "raw SET of orjson.dumps": (raw_set, ops),
        "store.read": (store_read, ops),
        "raw GET + orjson.loads": (raw_get, ops),
    }


def build_cases(
    store: RedisStorage, raw: redis.Redis, ops: int, batch: int, make: Callable[[int, int], dict[str, Any]]
) -> dict[str, tuple[Case, int]]:
    """Each contender as ``fn(rev)`` doing its work, with how many operations that is."""
    keys = [f"agent:{i}:state" for i in range(max(ops, batch))]
    dumps, loads = orjson.dumps, orjson.loads
    eventual = Consistency.EVENTUAL
    batch_keys = keys[:batch]

    def values(n: int, rev: int) -> list[dict[str, Any]]:
        return [make(i, rev) for i in range(n)]

    def store_read_many(rev: int) -> None:
        for _ in range(ops // batch):
            store.read_many(batch_keys)

    def raw_mget(rev: int) -> None:
        for _ in range(ops // batch):
            {k: loads(v) for k, v in zip(batch_keys, raw.mget(batch_keys), strict=True) if v is not None}

    def store_reads_one_by_one(rev: int) -> None:
        read = store.read
        for _ in range(max(1, ops // batch)):
            for key in batch_keys:
                read(key)

    def raw_gets_one_by_one(rev: int) -> None:
        get = raw.get
        for _ in range(max(1, ops // batch)):
            for key in batch_keys:
                loads(get(key))  # type: ignore[arg-type]

    def store_read_many_as_often(rev: int) -> None:
        for _ in range(max(1, ops // batch)):
            store.read_many(batch_keys)

    def store_write_many(rev: int) -> None:
        for n in range(ops // batch):
            store.write_many(dict(zip(batch_keys, values(batch, rev + n), strict=True)), consistency=eventual)

    def raw_transaction(rev: int) -> None:
        for n in range(ops // batch):
            with raw.pipeline(transaction=True) as pipe:
                for key, value in zip(batch_keys, values(batch, rev + n), strict=True):
                    pipe.set(key, dumps(value))
                pipe.execute()

    def raw_mset(rev: int) -> None:
        for n in range(ops // batch):
            raw.mset({key: dumps(value) for key, value in zip(batch_keys, values(batch, rev + n), strict=True)})

    batches, few = ops // batch, max(1, ops // batch)
    return {
        **single_key_cases(store, raw, keys, ops, values),
        f"store.read_many({batch})": (store_read_many, batches),
        f"raw MGET({batch}) + loads": (raw_mget, batches),
        f"store.write_many({batch})": (store_write_many, batches),
        f"raw MULTI/{batch} SET/EXEC": (raw_transaction, batches),
        f"raw MSET({batch})": (raw_mset, batches),
        f"{batch} x store.read": (store_reads_one_by_one, few),
        f"{batch} x raw GET + loads": (raw_gets_one_by_one, few),
        f"store.read_many({batch}) (as often)": (store_read_many_as_often, few),
    }


def run(rounds: int, ops: int, batch: int, shape: str, url: str) -> None:
    store = RedisStorage(RedisConfig(url=url, max_connections=4))
    store.initialize()
    # The very pool the store uses, so both sides share connections and settings.
    raw = redis.Redis(connection_pool=store._source._pool)  # type: ignore[attr-defined]
    try:
        cases = build_cases(store, raw, ops, batch, SHAPES[shape])
        for fn, _ in cases.values():  # warm up: connections made, scripts loaded, keys present
            fn(0)
        samples: dict[str, list[float]] = {name: [] for name in cases}
        order = list(cases)
        for round_no in range(1, rounds + 1):
            for name in order if round_no % 2 else reversed(order):
                fn, count = cases[name]
                start = time.perf_counter_ns()
                fn(round_no * 1000)
                samples[name].append((time.perf_counter_ns() - start) / count)
    finally:
        raw.close()
        store.close()
    size = len(orjson.dumps(SHAPES[shape](1, 1)))
    where = repr(store)  # never the password
    report(samples, batch, f"{shape} values ({size} bytes): {rounds} rounds of {ops} operations, {where}")


def report(samples: dict[str, list[float]], batch: int, title: str) -> None:
    def ratio(a: str, b: str) -> float:
        return median_ratio(samples, a, b)

    rows = [
        ("write / raw SET", ratio("store.write (EVENTUAL)", "raw SET of orjson.dumps"), "<= 1.10"),
        ("read / raw GET", ratio("store.read", "raw GET + orjson.loads"), "<= 1.10"),
        (f"read_many({batch}) / raw MGET", ratio(f"store.read_many({batch})", f"raw MGET({batch}) + loads"), "<= 1.2"),
        (
            f"write_many({batch}) / raw MULTI..EXEC",
            ratio(f"store.write_many({batch})", f"raw MULTI/{batch} SET/EXEC"),
            "<= 1.2",
        ),
        (
            f"write_many({batch}) / raw MSET",
            ratio(f"store.write_many({batch})", f"raw MSET({batch})"),
            "(same command)",
        ),
        (
            f"{batch} reads / read_many({batch})",
            ratio(f"{batch} x store.read", f"store.read_many({batch}) (as often)"),
            ">= 20",
        ),
        (
            f"  raw: {batch} GETs / one MGET",
            ratio(f"{batch} x raw GET + loads", f"raw MGET({batch}) + loads"),
            "(the ceiling)",
        ),
    ]
    print_report(title, samples, rows)


def parse_bench_args(doc: str | None) -> argparse.Namespace:
    """The options both Redis benchmarks take; prints the client's versions, which move the figures."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--ops", type=int, default=1000, help="single operations per contender and round")
    parser.add_argument("--batch", type=int, default=100, help="keys per read_many/write_many")
    parser.add_argument("--shape", choices=[*SHAPES, "both"], default="both")
    args = parser.parse_args()
    if args.ops < args.batch:  # the bulk contenders make ops // batch calls a round: none at all
        parser.error(f"--ops ({args.ops}) must be at least --batch ({args.batch})")
    print(f"redis-py {redis.__version__}, hiredis parser: {redis.utils.HIREDIS_AVAILABLE}\n")
    return args


def main() -> None:
    args = parse_bench_args(__doc__)
    with redis_server() as url:
        for shape in SHAPES if args.shape == "both" else [args.shape]:
            run(args.rounds, args.ops, args.batch, shape, url)


if __name__ == "__main__":
    main()
