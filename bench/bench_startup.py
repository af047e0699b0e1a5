"""Start-up: does installing storage-redis slow down a command on the local store?

Run: ``.venv/bin/python bench/bench_startup.py [--rounds 21]`` (needs the dev group: build, hatchling).

Builds the storage-core and storage-redis wheels, installs them into two fresh virtual
environments in a temporary folder (storage-core alone; storage-core[redis]), and times
the wall clock of ``storage -c local:///.../x.db get k`` in each, and of ``python -c pass``
as the floor no command can beat. Each round runs the three once, in an order that
rotates between rounds; the ratios are medians of per-round ratios. Target: with
storage-redis installed / without <= 1.1 (the redis backend is registered by reference,
so redis-py is imported only when a config selects it).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from report import Samples, median_ratio, print_report

ROOT = Path(__file__).resolve().parent.parent
WITHOUT, WITH, FLOOR = "get k (storage-core)", "get k (+ storage-redis)", "python -c pass"


def build_wheels(dist: Path) -> None:
    for project in (ROOT, ROOT / "storage_redis"):
        subprocess.run(
            [sys.executable, "-m", "build", "--no-isolation", "--wheel", "--outdir", str(dist), str(project)],
            check=True,
            capture_output=True,
        )


def make_venv(folder: Path, dist: Path, requirement: str) -> Path:
    """A fresh environment with *requirement* installed from the wheels just built; its bin folder."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    python = folder / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--find-links", str(dist)]
    subprocess.run([*pip, requirement], check=True)
    return folder / "bin"


def wall_ns(argv: list[str]) -> int:
    start = time.perf_counter_ns()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter_ns() - start


def run(rounds: int, work: Path) -> None:
    dist = work / "dist"
    build_wheels(dist)
    without = make_venv(work / "without", dist, "storage-core")
    with_redis = make_venv(work / "with", dist, "storage-core[redis]")
    url = f"local://{work}/x.db"
    subprocess.run([without / "storage", "-c", url, "put", "k", '{"v": 1}'], check=True)
    listed = subprocess.run([with_redis / "storage", "backends"], check=True, capture_output=True, text=True).stdout
    assert "storage-redis" in listed, listed  # the comparison is only fair if redis really is installed
    commands = {
        WITHOUT: [str(without / "storage"), "-c", url, "get", "k"],
        WITH: [str(with_redis / "storage"), "-c", url, "get", "k"],
        FLOOR: [str(without / "python"), "-c", "pass"],
    }
    for argv in commands.values():  # warm the page cache and the .pyc files
        wall_ns(argv)
    samples: Samples = {name: [] for name in commands}
    names = list(commands)
    for round_no in range(rounds):
        shift = round_no % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(wall_ns(commands[name]))
    print_report(
        f"start-up: {rounds} rounds, wall time of one process (Python {sys.version.split()[0]}, {os.cpu_count()} CPUs)",
        samples,
        [
            ("with storage-redis / without", median_ratio(samples, WITH, WITHOUT), "<= 1.10"),
            ("get k (storage-core) / python -c pass", median_ratio(samples, WITHOUT, FLOOR), "(the floor)"),
            ("get k (+ storage-redis) / python -c pass", median_ratio(samples, WITH, FLOOR), "(the floor)"),
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=21)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as work:
        run(args.rounds, Path(work))


if __name__ == "__main__":
    main()
