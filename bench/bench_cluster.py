"""How much the Redis backend costs over raw redis-py on a Redis Cluster, in one run.

Run: ``.venv/bin/python bench/bench_cluster.py [--rounds 15] [--ops 1000] [--batch 100]``
(needs redis-server and redis-cli on PATH: the script starts a private cluster of three
primaries with a replica each on loopback, and stops every process at the end).

The raw contender is a ``RedisCluster`` built as the backend builds its own (retries off,
blocking pools per node) with the same orjson bytes: ``mget_nonatomic`` for read_many,
a pipeline of ``SET`` s for write_many (both group per slot and send per node, as the
backend does), ``GET``/``SET`` for single keys. The store writes at EVENTUAL (no WAIT), as
the raw side does not wait either. Each round times every contender once, in an order
that alternates between rounds; the table shows medians of per-round ratios.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import redis
from bench_redis import parse_bench_args, single_key_cases
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.retry import Retry
from report import median_ratio, print_report
from samples import SHAPES

from storage_core import Consistency
from storage_redis import RedisConfig, RedisStorage

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "redis"))
# The tests' own cluster, started the same way.
from topologies import ClusterTopology

Case = Callable[[int], None]


def build_cases(
    store: RedisStorage, raw: Any, ops: int, batch: int, make: Callable[[int, int], dict[str, Any]]
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
            found = raw.mget_nonatomic(batch_keys)
            {k: loads(v) for k, v in zip(batch_keys, found, strict=True) if v is not None}

    def store_write_many(rev: int) -> None:
        for n in range(ops // batch):
            store.write_many(dict(zip(batch_keys, values(batch, rev + n), strict=True)), consistency=eventual)

    def raw_pipelined_sets(rev: int) -> None:
        for n in range(ops // batch):
            pipe = raw.pipeline()
            for key, value in zip(batch_keys, values(batch, rev + n), strict=True):
                pipe.set(key, dumps(value))
            pipe.execute()

    batches = ops // batch
    return {
        **single_key_cases(store, raw, keys, ops, values),
        f"store.read_many({batch})": (store_read_many, batches),
        f"raw mget_nonatomic({batch}) + loads": (raw_mget, batches),
        f"store.write_many({batch})": (store_write_many, batches),
        f"raw pipeline of {batch} SET": (raw_pipelined_sets, batches),
    }


def run(rounds: int, ops: int, batch: int, shape: str, topology: ClusterTopology) -> None:
    store = RedisStorage(RedisConfig(url=topology.url, max_connections=4))
    store.initialize()
    first = topology.nodes[0]
    raw: Any = RedisCluster(
        startup_nodes=[ClusterNode("127.0.0.1", first.port)],  # type: ignore[no-untyped-call]
        retry=Retry(NoBackoff(), 0),
        connection_pool_class=redis.BlockingConnectionPool,
        max_connections=4,
    )
    try:
        cases = build_cases(store, raw, ops, batch, SHAPES[shape])
        spread = {topology.owner(key).port for key in [f"agent:{i}:state" for i in range(batch)]}
        assert len(spread) == 3, "the batch's keys must live on all three primaries"
        for fn, _ in cases.values():  # warm up: connections made, slot maps known, keys present
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
    report(samples, batch, f"{shape} values ({size} bytes): {rounds} rounds of {ops} operations, {store!r}")


def report(samples: dict[str, list[float]], batch: int, title: str) -> None:
    def ratio(a: str, b: str) -> float:
        return median_ratio(samples, a, b)

    rows = [
        ("write / raw SET", ratio("store.write (EVENTUAL)", "raw SET of orjson.dumps"), "<= 1.10"),
        ("read / raw GET", ratio("store.read", "raw GET + orjson.loads"), "<= 1.10"),
        (
            f"read_many({batch}) / raw mget_nonatomic",
            ratio(f"store.read_many({batch})", f"raw mget_nonatomic({batch}) + loads"),
            "<= 1.3",
        ),
        (
            f"write_many({batch}) / raw pipelined SETs",
            ratio(f"store.write_many({batch})", f"raw pipeline of {batch} SET"),
            "<= 1.3",
        ),
    ]
    print_report(title, samples, rows)


def main() -> None:
    args = parse_bench_args(__doc__)
    with tempfile.TemporaryDirectory() as folder, ClusterTopology(Path(folder)) as topology:
        for shape in SHAPES if args.shape == "both" else [args.shape]:
            run(args.rounds, args.ops, args.batch, shape, topology)


if __name__ == "__main__":
    main()
