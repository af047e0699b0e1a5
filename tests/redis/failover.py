"""Writers that keep writing through a failover, and the figures a failover test reports.

Each thread writes its own keys (``w<thread>-<n>``, value ``n``) one after another and
records what the store acknowledged, what it refused as ``ConsistencyError`` (applied on
the primary, not confirmed by a replica: neither acknowledged nor lost), and what ended
in ``ConnectionFailed`` (the retry budget ran out). The window of unavailability is the
longest gap between two acknowledgements.
"""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any, Self

from storage_core import ConnectionFailed, ConsistencyError, Storage

__all__ = ["Writers", "lost_writes"]


class Writers:
    def __init__(self, store: Storage, *, threads: int, consistency: str) -> None:
        self.store = store
        self.consistency = consistency
        self.acked: dict[str, int] = {}
        self.unconfirmed: list[str] = []
        self.failed: list[tuple[str, float]] = []
        self.unexpected: list[str] = []
        self._times: list[float] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._write, args=(i,), daemon=True) for i in range(threads)]
        self.started = 0.0

    def _write(self, me: int) -> None:
        n = 0
        while not self._stop.is_set():
            key = f"w{me}-{n}"
            try:
                self.store.write(key, n, consistency=self.consistency)
            except ConsistencyError:
                with self._lock:
                    self.unconfirmed.append(key)
            except ConnectionFailed as exc:
                with self._lock:
                    self.failed.append((type(exc).__name__, time.monotonic() - self.started))
            except Exception as exc:  # anything else is a bug the test must show
                with self._lock:
                    self.unexpected.append(f"{key}: {type(exc).__name__}: {exc}")
                return
            else:
                with self._lock:
                    self.acked[key] = n
                    self._times.append(time.monotonic())
            n += 1

    @property
    def acknowledged(self) -> int:
        with self._lock:
            return len(self.acked)

    def wait_for(self, count: int, timeout: float = 60.0) -> None:
        """Until *count* writes were acknowledged in all."""
        deadline = time.monotonic() + timeout
        while self.acknowledged < count:
            if self.unexpected:
                raise AssertionError(self.unexpected)
            if time.monotonic() > deadline:
                raise AssertionError(f"only {self.acknowledged} of {count} writes acknowledged in {timeout} s")
            time.sleep(0.01)

    @property
    def window(self) -> float:
        """Seconds of the longest gap between two acknowledged writes."""
        times = sorted(self._times)
        return max((b - a for a, b in itertools.pairwise(times)), default=0.0)

    def report(self, title: str, **extra: Any) -> str:
        text = (
            f"{title}: {len(self.acked)} acknowledged, {len(self.unconfirmed)} unconfirmed (ConsistencyError), "
            f"{len(self.failed)} ConnectionFailed, unavailable for {self.window:.2f} s"
            + "".join(f", {name}={value}" for name, value in extra.items())
        )
        print(f"\n{text}")
        return text

    def __enter__(self) -> Self:
        self.started = time.monotonic()
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(120)


def lost_writes(store: Storage, acked: dict[str, int]) -> list[str]:
    """The acknowledged writes the store no longer has (read from the current primary)."""
    keys = sorted(acked)
    lost = []
    for i in range(0, len(keys), 500):
        chunk = keys[i : i + 500]
        found = store.read_many(chunk)
        lost += [key for key in chunk if found.get(key) != acked[key]]
    return lost
