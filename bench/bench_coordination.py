"""What coordination costs, on local and on Redis, measured in one run.

Run: ``.venv/bin/python bench/bench_coordination.py [--rounds 15] [--ops 3000] [--backend both]``
(``REDIS_URL=redis://...`` for a server of your own; otherwise a private ``redis-server``
on a free loopback port, stopped at the end).

Ratios, each the median over rounds of the per-round ratio (every round times every
contender once, in an order that alternates between rounds):

- ``write(fence=lease)`` / plain ``write`` (target <= 1.3);
- ``transaction`` of 2 keys, both expected at their current versions, / ``write_many`` of
  the same 2 keys (target <= 1.5); a write-only ``transaction`` is shown too;
- plain ``write`` with the change feed off, in this tree / in a build of ``main`` (``git
  archive``), each timed in a fresh child process on the same store (target: within noise);
- ``write`` with the change feed on / off: what the feed costs every write.

Local writes run at EVENTUAL: at STRONG an fsync per commit dominates and every ratio is
close to 1, which would hide the costs this measures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench_redis import redis_server
from report import median_ratio, print_report

from storage_core import Storage, open_storage
from storage_core.codec import encode
from storage_core.versions import content_version

ROOT = Path(__file__).resolve().parents[1]

# Timed in a child process, in this tree or in the baseline one (PYTHONPATH first).
# The backend class is built directly, not through the registry: the entry points installed
# are this tree's, and may name modules (observers, say) that the baseline tree lacks.
_CHILD = """
import json, sys, time
config, ops, salt = json.loads(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
if config["backend"] == "redis":
    from storage_redis.storage import RedisStorage as cls
else:
    from storage_local.backend import LocalStorage as cls
store = cls.from_options(config[config["backend"]])
store.configure(namespace="bench-baseline", consistency=config.get("consistency", "strong"))
store.initialize()
for i in range(200):
    store.write(f"w{i % 100}", {"warm": i, "salt": salt})
start = time.perf_counter_ns()
for i in range(ops):
    store.write(f"w{i % 100}", {"i": i, "salt": salt})
print((time.perf_counter_ns() - start) / ops)
store.close()
"""

Case = Callable[[int], float]  # round number -> ns per operation


def cases(store: Storage, feed: Storage, ops: int) -> dict[str, Case]:
    lease = store.acquire_lease("bench", ttl=3600.0)
    assert lease is not None

    def timed(body: Callable[[int, int], None], prepare: Callable[[int], None] | None = None) -> Case:
        def run(round_no: int) -> float:
            if prepare is not None:
                prepare(round_no)
            start = time.perf_counter_ns()
            for i in range(ops):
                body(round_no, i)
            return (time.perf_counter_ns() - start) / ops

        return run

    def plain(r: int, i: int) -> None:
        store.write(f"k{i % 100}", {"r": r, "i": i})

    def fenced(r: int, i: int) -> None:
        store.write(f"k{i % 100}", {"r": r, "i": i}, fence=lease)

    def with_feed(r: int, i: int) -> None:
        feed.write(f"k{i % 100}", {"r": r, "i": i})

    def write_many(r: int, i: int) -> None:
        store.write_many({f"a{i % 100}": [r, i], f"b{i % 100}": [r, i]})

    def txn_write(r: int, i: int) -> None:
        store.transaction(write={f"a{i % 100}": [r, i], f"b{i % 100}": [r, i]})

    # The versions each transaction expects: those of what the previous one wrote, worked
    # out before the clock runs (a caller has them from read_entry or its own last write).
    versions: dict[str, str | None] = {}
    expected: list[dict[str, str | None]] = []

    def plan_round(r: int) -> None:
        expected.clear()
        for i in range(ops):
            a, b = f"x{i % 100}", f"y{i % 100}"
            expected.append({a: versions.get(a), b: versions.get(b)})
            versions[a] = versions[b] = _version_of([r, i])

    def txn_expect(r: int, i: int) -> None:  # the writes built in the loop, as write_many's are
        store.transaction(expect=expected[i], write={f"x{i % 100}": [r, i], f"y{i % 100}": [r, i]})

    return {
        "write": timed(plain),
        "write fence=": timed(fenced),
        "write, feed on": timed(with_feed),
        "write_many 2": timed(write_many),
        "transaction 2 (write only)": timed(txn_write),
        "transaction 2 (expect both)": timed(txn_expect, plan_round),
    }


def _version_of(value: Any) -> str:
    return content_version(encode(value))


def child_write(config: str, ops: int, tree: Path | None, salt: str) -> float:
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(tree), str(tree / "storage_redis" / "src")])
    # python -c puts the working directory first on sys.path: the baseline's child runs in its
    # tree, or it would import this checkout's packages instead.
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, config, str(ops), salt],
        env=env,
        cwd=tree,
        check=True,
        capture_output=True,
        text=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


@contextmanager
def baseline_tree(ref: str) -> Iterator[Path]:
    """*ref* of this repository as plain files, for the baseline child processes."""
    with tempfile.TemporaryDirectory(prefix="bench-baseline-") as folder:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", folder], input=archive.stdout, check=True)
        yield Path(folder)


def run(name: str, config: dict[str, Any], rounds: int, ops: int, baseline: Path) -> None:
    store = open_storage(config, namespace="bench")
    feed = open_storage({**config, "change_feed": True}, namespace="bench")
    try:
        contenders = cases(store, feed, ops)
        samples: dict[str, list[float]] = {name: [] for name in contenders}
        samples["write, child, this tree"] = []
        samples["write, child, main"] = []
        order = list(contenders)
        encoded = json.dumps(config)
        for round_no in range(rounds):
            for case in order if round_no % 2 == 0 else reversed(order):
                samples[case].append(contenders[case](round_no))
            pair = [("write, child, this tree", None), ("write, child, main", baseline)]
            for label, tree in pair if round_no % 2 == 0 else reversed(pair):
                samples[label].append(child_write(encoded, ops, tree, f"{round_no}"))
    finally:
        feed.close()
        store.close()

    def ratio(a: str, b: str) -> float:
        return median_ratio(samples, a, b)

    rows = [
        ("write fence= / write", ratio("write fence=", "write"), "<= 1.3"),
        ("transaction 2 (expect both) / write_many 2", ratio("transaction 2 (expect both)", "write_many 2"), "<= 1.5"),
        ("transaction 2 (write only) / write_many 2", ratio("transaction 2 (write only)", "write_many 2"), "<= 1.5"),
        ("write feed off: this tree / main", ratio("write, child, this tree", "write, child, main"), "~ 1 (noise)"),
        ("write feed on / feed off", ratio("write, feed on", "write"), "(the feed's cost)"),
    ]
    print_report(f"{name}: {rounds} rounds, {ops} operations each", samples, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    # 1,000 operations a round left the Redis ratios swinging by +-0.1 between runs on a
    # noisy 2-core machine; 15 rounds of 3,000 settle them within a few hundredths.
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--ops", type=int, default=3000)
    parser.add_argument("--backend", choices=["local", "redis", "both"], default="both")
    parser.add_argument("--baseline", default="main", help="the git ref plain writes are compared with")
    parser.add_argument("--dir", help="where the local database goes (use a disk, not tmpfs)")
    args = parser.parse_args()
    with baseline_tree(args.baseline) as baseline:
        if args.backend in ("local", "both"):
            with tempfile.TemporaryDirectory(prefix="bench-coordination-", dir=args.dir) as folder:
                local = {"backend": "local", "consistency": "eventual", "local": {"path": f"{folder}/bench.db"}}
                run("local (EVENTUAL)", local, args.rounds, args.ops, baseline)
        if args.backend in ("redis", "both"):
            with redis_server() as url:
                run("redis", {"backend": "redis", "redis": {"url": url}}, args.rounds, args.ops, baseline)


if __name__ == "__main__":
    main()
