"""``storage bench``: latency percentiles and throughput of the configured store, on this machine.

Every key it writes is a scratch key under ``storage-bench:<uuid>:`` with a TTL as a
safety net; all are deleted at the end, also after a failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import orjson

from storage_core.cli._args import Commands, add_command, count
from storage_core.cli._errors import EXIT_OK, CommandError
from storage_core.cli._output import note, out_utf8
from storage_core.cli._progress import on_terminal
from storage_core.cli._store import config_source
from storage_core.factory import open_storage
from storage_core.storage import Storage

_SCRATCH_TTL = 600.0  # seconds: scratch keys vanish even if the cleanup never runs (SIGKILL)
_BATCH = 100


def register(commands: Commands) -> None:
    parser = add_command(
        commands,
        "bench",
        run,
        "Measure the configured store: p50/p99 latency and throughput of read, write (each "
        f"consistency), read_many and write_many ({_BATCH} keys), and update under contention from "
        "threads and from processes. Scratch keys (storage-bench:<uuid>:..., with a "
        f"{_SCRATCH_TTL:.0f} s TTL as a safety net) are removed afterwards, even on Ctrl-C.",
        examples=["storage bench", "storage -c redis://localhost:6379/0 bench --json --ops 2000"],
    )
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")
    parser.add_argument("--ops", type=count, default=500, metavar="N", help="operations per measurement (500)")
    parser.add_argument("--threads", type=count, default=4, metavar="T", help="threads contending in update (4)")
    parser.add_argument("--processes", type=count, default=4, metavar="P", help="processes contending in update (4)")


@dataclass(frozen=True)
class Measurement:
    """One row of the report."""

    operation: str
    ops: int
    keys_per_op: int
    p50_ms: float
    p99_ms: float
    ops_per_s: float


def run(args: argparse.Namespace) -> int:
    if not args.ops:
        raise CommandError("--ops must be at least 1")
    source = config_source(args)
    prefix = f"storage-bench:{uuid.uuid4().hex[:12]}:"
    with open_storage(source) as store:
        try:
            results = _measure_all(store, source, prefix, args)
        finally:  # Ctrl-C and failures too: leave nothing behind
            _remove_scratch(store, prefix)
        described = repr(store)
    if args.json:
        out_utf8(orjson.dumps({"store": described, "results": [asdict(r) for r in results]}))
    else:
        _print_table(described, results)
    return EXIT_OK


def _measure_all(store: Storage, source: str | None, prefix: str, args: argparse.Namespace) -> list[Measurement]:
    ops: int = args.ops
    keys = [f"{prefix}k{i}" for i in range(ops)]
    value = {"agent": "bench", "step": 1, "notes": "x" * 100}
    batches = [keys[i : i + _BATCH] for i in range(0, ops, _BATCH)] or [keys]
    store.write_many(dict.fromkeys(keys, value), ttl=_SCRATCH_TTL)
    cases: list[tuple[str, int, Callable[[int], object]]] = [
        ("read", 1, lambda i: store.read(keys[i])),
        ("write strong", 1, lambda i: store.write(keys[i], value, ttl=_SCRATCH_TTL, consistency="strong")),
        ("write eventual", 1, lambda i: store.write(keys[i], value, ttl=_SCRATCH_TTL, consistency="eventual")),
        ("read_many", _BATCH, lambda i: store.read_many(batches[i % len(batches)])),
        (
            "write_many",
            _BATCH,
            lambda i: store.write_many(dict.fromkeys(batches[i % len(batches)], value), ttl=_SCRATCH_TTL),
        ),
    ]
    results: list[Measurement] = []
    for name, per_op, action in cases:
        _status(name)
        times, wall = _timed(action, ops if per_op == 1 else max(1, ops // 10))
        results.append(_summary(name, per_op, times, len(times) / wall))
    counter = f"{prefix}counter"
    if args.threads:
        _status(f"update, {args.threads} threads")
        results.append(_threads_contending(store, counter, args.threads, max(1, ops // args.threads)))
    if args.processes:
        _status(f"update, {args.processes} processes")
        results.append(_processes_contending(source, counter, args.processes, max(1, ops // args.processes)))
    return results


def _timed(action: Callable[[int], object], ops: int) -> tuple[list[int], float]:
    """Nanoseconds of each call of *action*, and the wall seconds of all of them."""
    times: list[int] = []
    clock = time.perf_counter_ns
    start = clock()
    for i in range(ops):
        before = clock()
        action(i)
        times.append(clock() - before)
    return times, (clock() - start) / 1e9


def _summary(name: str, per_op: int, times: list[int], rate: float) -> Measurement:
    ordered = sorted(times)

    def percentile(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] / 1e6

    return Measurement(name, len(times), per_op, round(percentile(0.50), 4), round(percentile(0.99), 4), round(rate, 1))


def _increment(value: int) -> int:
    return value + 1


def _update_many(store: Storage, key: str, ops: int) -> list[int]:
    times, _ = _timed(lambda _: store.update(key, _increment, default=0, ttl=_SCRATCH_TTL), ops)
    return times


def _threads_contending(store: Storage, key: str, workers: int, ops: int) -> Measurement:
    store.write(key, 0, ttl=_SCRATCH_TTL)
    times: list[list[int]] = []
    start = time.perf_counter()
    threads = [threading.Thread(target=lambda: times.append(_update_many(store, key, ops))) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    _check_counter(store.read(key), workers * ops)
    flat = [t for worker in times for t in worker]
    return _summary(f"update, {workers} threads", 1, flat, len(flat) / wall)


def _processes_contending(source: str | None, key: str, workers: int, ops: int) -> Measurement:
    with open_storage(source) as store:
        store.write(key, 0, ttl=_SCRATCH_TTL)
    import multiprocessing  # noqa: PLC0415 - a fifth of the CLI's import time, for this one case

    # spawn: a fresh interpreter per worker, as separate agents are; each opens the store itself.
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers) as pool:
        replies = pool.starmap(_update_worker, [(source, key, ops)] * workers)
    with open_storage(source) as store:
        _check_counter(store.read(key), workers * ops)
    flat = [t for times, _, _ in replies for t in times]
    wall = max(end for _, _, end in replies) - min(start for _, start, _ in replies)
    return _summary(f"update, {workers} processes", 1, flat, len(flat) / wall)


def _update_worker(source: str | None, key: str, ops: int) -> tuple[list[int], float, float]:
    """In a spawned process: *ops* updates of *key*, with their times and the wall clock span."""
    with open_storage(source) as store:
        start = time.time()
        times = _update_many(store, key, ops)
        return times, start, time.time()


def _check_counter(found: Any, expected: int) -> None:
    if found != expected:
        raise CommandError(f"update lost increments under contention: the counter is {found}, expected {expected}")


def _remove_scratch(store: Storage, prefix: str) -> None:
    try:
        for key in list(store.keys(prefix)):
            store.delete(key, consistency="eventual")
    except Exception as exc:
        note(f"warning: could not remove the scratch keys {prefix}* ({exc}); they expire in {_SCRATCH_TTL:.0f} s")


def _status(step: str) -> None:
    if on_terminal():
        sys.stderr.write(f"\r\x1b[Kmeasuring {step}...")
        sys.stderr.flush()


def _print_table(store: str, results: list[Measurement]) -> None:
    from rich.box import SIMPLE  # noqa: PLC0415
    from rich.console import Console  # noqa: PLC0415 - only this command draws tables
    from rich.table import Table  # noqa: PLC0415

    if on_terminal():
        sys.stderr.write("\r\x1b[K")
    table = Table(title=f"storage bench: {store}", title_justify="left", box=SIMPLE)
    for header in ("operation", "ops", "keys/op", "p50 ms", "p99 ms", "ops/s"):
        table.add_column(header, justify="left" if header == "operation" else "right")
    for r in results:
        table.add_row(
            r.operation, str(r.ops), str(r.keys_per_op), f"{r.p50_ms:.3f}", f"{r.p99_ms:.3f}", f"{r.ops_per_s:,.0f}"
        )
    Console(soft_wrap=False).print(table)
