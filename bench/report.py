"""How both benchmarks judge and print: medians of per-round ratios, in one place."""

from __future__ import annotations

import statistics

__all__ = ["median_ratio", "print_report"]

Samples = dict[str, list[float]]


def median_ratio(samples: Samples, a: str, b: str, less: str | None = None) -> float:
    """Median over rounds of ``(a - less) / b``: a noisy round moves one ratio, not the median."""
    minus = samples[less] if less else [0.0] * len(samples[a])
    return statistics.median((x - m) / y for x, m, y in zip(samples[a], minus, samples[b], strict=True))


def print_report(title: str, samples: Samples, rows: list[tuple[str, float, str]]) -> None:
    """The median time of each contender (ns samples), then each ratio against its target."""
    width = max(map(len, samples)) + 2
    print(f"== {title}\n")
    print(f"{'operation':{width}} {'median us/op':>12}")
    for name, times in samples.items():
        print(f"{name:{width}} {statistics.median(times) / 1000:12.2f}")
    width = max(len("ratio (median of per-round ratios)"), *(len(label) for label, _, _ in rows)) + 2
    print(f"\n{'ratio (median of per-round ratios)':{width}} {'value':>7}  target")
    for label, value, target in rows:
        print(f"{label:{width}} {value:7.2f}  {target}")
    print()
