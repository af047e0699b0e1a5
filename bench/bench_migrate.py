"""``storage migrate`` from a local file to Redis: time and peak memory against a hand-written copy.

Run once, not in CI: ``.venv/bin/python bench/bench_migrate.py [--keys 1000000] [--rounds 2]``
(a private ``redis-server`` on a free loopback port, stopped at the end).

The baseline is the script an operator would write without the tool: one streaming
``SELECT key, value, expires_at FROM storage_kv ORDER BY key`` and redis-py pipelines of
``SET ... PX`` per 1000 rows (no resume, no verify, no progress). Both run as child
processes on the same file and an emptied server; each round runs both, in an order that
alternates between rounds. Reported: wall time of each (migrate also split into its copy
and verify passes, from its own output), peak RSS of each child (``wait4``'s ru_maxrss),
and medians of the per-round ratios. Peak memory is measured again at a tenth of the keys:
constant memory means the two peaks are about equal.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import redis
from bench_redis import redis_server

from storage_core import open_storage

BASELINE = textwrap.dedent(
    """
    import sqlite3, sys, time, redis
    db, url = sys.argv[1], sys.argv[2]
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    client = redis.Redis.from_url(url)
    now = time.time()
    pipe = client.pipeline(transaction=False)
    pending = 0
    for key, value, expires in conn.execute("SELECT key, value, expires_at FROM storage_kv ORDER BY key"):
        if expires is None:
            pipe.set(key, value)
        elif expires > now:
            pipe.set(key, value, px=max(1, int((expires - now) * 1000)))
        else:
            continue
        pending += 1
        if pending == 1000:
            pipe.execute()
            pending = 0
    pipe.execute()
    """
)


def fill(path: Path, count: int) -> None:
    with open_storage(f"local://{path}") as store:
        for start in range(0, count, 10_000):
            batch = {
                f"agent:{i:08}:state": {"n": i, "step": "working", "tags": ["a", "b"]}
                for i in range(start, min(start + 10_000, count))
            }
            store.write_many(batch, consistency="eventual")
        store.write_many({f"agent:{i:08}:state": {"n": i, "lease": True} for i in range(0, count, 100)}, ttl=3600)


# A small parent for each measured child: a child forked from this process would start
# with this process's peak RSS (the filled data) as its own ru_maxrss.
_MEASURE = textwrap.dedent(
    """
    import resource, subprocess, sys, time
    start = time.perf_counter()
    done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode:
        sys.exit(f"{sys.argv[1]} failed ({done.returncode}): {done.stderr.strip()}")
    print(elapsed, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)
    sys.stdout.write(done.stdout)
    """
)


def run_child(argv: list[str]) -> tuple[float, int, str]:
    """Wall seconds, peak RSS in MiB, and stdout of one child process."""
    done = subprocess.run([sys.executable, "-c", _MEASURE, *argv], capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(done.stderr.strip())
    first, _, out = done.stdout.partition("\n")
    elapsed, rss = first.split()
    return float(elapsed), int(rss), out


def one_round(db: Path, url: str, order: list[str]) -> dict[str, float]:
    storage = str(Path(sys.executable).parent / "storage")
    result: dict[str, float] = {}
    client = redis.Redis.from_url(url, socket_timeout=300)
    for name in order:
        client.flushall()  # a million keys take a while to free: hence the long timeout
        if name == "migrate":
            wall, rss, out = run_child([storage, "migrate", "--from", f"local://{db}", "--to", url, "--batch", "1000"])
            copy = re.search(r"^copied \d+ keys .* in ([\d.]+) s", out, re.MULTILINE)
            assert copy, out
            assert "0 missing, 0 different" in out, out
            result |= {"migrate": wall, "migrate copy pass": float(copy[1]), "migrate rss": rss}
        else:
            wall, rss, _ = run_child([sys.executable, "-c", BASELINE, str(db), url])
            result |= {"baseline": wall, "baseline rss": rss}
        print(f"  {name}: {wall:.1f} s, peak {rss} MiB", flush=True)
    client.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, redis_server() as url:
        db, small = Path(folder) / "state.db", Path(folder) / "small.db"
        start = time.perf_counter()
        fill(db, args.keys)
        fill(small, args.keys // 10)
        print(f"filled {args.keys} keys (1% with a TTL) in {time.perf_counter() - start:.1f} s")
        rounds = [
            one_round(db, url, ["migrate", "baseline"] if i % 2 == 0 else ["baseline", "migrate"])
            for i in range(args.rounds)
        ]
        tenth = one_round(small, url, ["migrate", "baseline"])
    print(f"\n== storage migrate, {args.keys} keys local -> redis, {args.rounds} rounds (medians)\n")
    for name in ("migrate", "migrate copy pass", "baseline"):
        wall = statistics.median(r[name] for r in rounds)
        print(f"{name:20} {wall:8.1f} s  {args.keys / wall:10,.0f} keys/s")
    ratios = {
        "migrate / baseline": statistics.median(r["migrate"] / r["baseline"] for r in rounds),
        "copy pass / baseline": statistics.median(r["migrate copy pass"] / r["baseline"] for r in rounds),
    }
    for label, ratio in ratios.items():
        print(f"{label:20} {ratio:8.2f}  (median of per-round ratios)")
    for name in ("migrate rss", "baseline rss"):
        peak = max(r[name] for r in rounds)
        print(f"{name:20} {peak:8.0f} MiB peak at {args.keys} keys, {tenth[name]:.0f} MiB at {args.keys // 10}")


if __name__ == "__main__":
    main()
