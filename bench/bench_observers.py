"""What observers cost a local ``read``: nothing when none is enabled, and how much ``log`` adds.

Run: ``.venv/bin/python bench/bench_observers.py [--rounds 15] [--keys 1000] [--dir DIR]``

Every contender reads the same keys of one SQLite file through its own store. The
baseline is a ``LocalStorage`` built directly, as before observers existed (a second one
shows how far two identical stores differ in this run, the noise floor); "none" is
opened by ``open_storage`` from a config with ``observers: []``. Each round has every
contender read every key, in chunks taken in turn, in an order that alternates; the
table shows the median of the per-round ratios to the baseline.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import tempfile
import time
from collections.abc import Callable

from report import median_ratio, print_report
from samples import nested_state

from storage_core import Consistency, Storage, open_storage
from storage_core.observers import Observer, OperationEvent, attach
from storage_core.observers.log import LogObserver
from storage_local import LocalConfig, LocalStorage

CHUNK = 100  # keys read by one contender before the next takes its turn


class Discard:
    """An observer that does nothing: the cost of the instrumentation alone."""

    def on_operation(self, event: OperationEvent) -> None:
        pass


def emitting_logger(sink: io.StringIO) -> logging.Logger:
    """A logger that formats every record into *sink*, as a file handler would."""
    logger = logging.getLogger("bench.audit")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    handler = logging.StreamHandler(sink)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    return logger


def otel_observer() -> tuple[Observer, Callable[[], None]] | None:
    """``otel`` on the SDK with in-memory export, and what empties that export; None without the SDK."""
    try:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        from storage_core.observers.otel import OtelObserver
    except ImportError:
        return None
    tracer_provider = TracerProvider()
    exporter = InMemorySpanExporter()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    observer = OtelObserver(
        tracer_provider=tracer_provider, meter_provider=MeterProvider(metric_readers=[InMemoryMetricReader()])
    )
    return observer, exporter.clear


def run(rounds: int, count: int, folder: str) -> None:
    path = os.path.join(folder, "bench-observers.db")
    keys = [f"agent:{i}:state" for i in range(count)]
    config = {"backend": "local", "local": {"path": path}}
    sink = io.StringIO()
    with LocalStorage(LocalConfig(path=path)) as writer:  # closed, so every reader starts alike
        writer.write_many({key: nested_state(i, 0) for i, key in enumerate(keys)}, consistency=Consistency.EVENTUAL)

    def local(**observers: Observer) -> Storage:
        store = LocalStorage(LocalConfig(path=path))
        if observers:
            attach(store, observers)
        store.initialize()
        return store

    stores: dict[str, Storage] = {
        "baseline (LocalStorage, as before)": local(),
        "a second baseline (noise floor)": local(),
        "none (observers: [])": open_storage({**config, "observers": []}),
        "a do-nothing observer": local(discard=Discard()),
        "log, audit logger off": open_storage({**config, "observers": ["log"]}),
        "log, formatted to a stream": local(log=LogObserver(logger=emitting_logger(sink))),
    }
    otel = otel_observer()
    if otel is not None:
        stores["otel (SDK, in-memory export)"] = local(otel=otel[0])
    logging.getLogger("storage_core.audit").setLevel(logging.WARNING)  # "off": below its threshold
    try:
        for store in stores.values():  # a round untimed: every connection's page cache warm
            timed(store.read, keys)
        samples: dict[str, list[float]] = {name: [] for name in stores}
        order = list(stores)
        chunks = [keys[i : i + CHUNK] for i in range(0, count, CHUNK)]
        for round_no in range(rounds):
            # Chunks interleaved too: a neighbour's burst then hits every contender alike.
            spent = dict.fromkeys(stores, 0.0)
            for chunk_no, chunk in enumerate(chunks):
                for name in order if (round_no + chunk_no) % 2 == 0 else reversed(order):
                    spent[name] += timed(stores[name].read, chunk) * len(chunk)
            for name, total in spent.items():
                samples[name].append(total / count)
            sink.seek(0)
            sink.truncate()
            if otel is not None:
                otel[1]()
    finally:
        for store in stores.values():
            store.close()
    report(samples, f"local read: {rounds} rounds, {count} keys")


def timed(read: Callable[[str], object], keys: list[str]) -> float:
    """Nanoseconds per ``read`` over *keys*."""
    start = time.perf_counter_ns()
    for key in keys:
        read(key)
    return (time.perf_counter_ns() - start) / len(keys)


def report(samples: dict[str, list[float]], title: str) -> None:
    base = "baseline (LocalStorage, as before)"
    targets = {"none (observers: [])": "<= 1.02", "a second baseline (noise floor)": "(noise)"}
    rows = [(f"{name} / baseline", median_ratio(samples, name, base), targets.get(name, "(cost)")) for name in samples]
    print_report(title, samples, rows[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--keys", type=int, default=1000)
    parser.add_argument("--dir", help="where to make the temporary folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-observers-", dir=args.dir) as folder:
        run(args.rounds, args.keys, folder)


if __name__ == "__main__":
    main()
