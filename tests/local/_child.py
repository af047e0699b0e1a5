"""Work for the process tests, run as ``python _child.py MODE ...`` in a child process.

``write DB LEVEL START SIZE``: write k<START>, k<START+1>, ... (each value SIZE characters
of padding between two copies of its number) and print each key once ``write`` returned.
``levels DB LEVEL...``: for each level, print ``phase-LEVEL`` then write three keys at it.
``count DB N``: say ready, wait for a line on stdin, then increment ``counter`` N times.
"""

from __future__ import annotations

import sys

from storage_local import LocalStorage


def value(i: int, size: int) -> dict[str, object]:
    """Large enough to span many pages, so a torn write would show."""
    return {"i": i, "pad": chr(ord("a") + i % 26) * size, "end": i}


def main(mode: str, path: str, *args: str) -> None:
    with LocalStorage.from_options({"path": path}) as store:
        if mode == "write":
            level, start, size = args[0], int(args[1]), int(args[2])
            i = start
            while True:
                store.write(f"k{i:06}", value(i, size), consistency=level)
                print(f"k{i:06}", flush=True)
                i += 1
        elif mode == "count":
            store.ping()
            print("ready", flush=True)
            sys.stdin.readline()  # every worker starts at once, when the parent says so
            for _ in range(int(args[0])):
                store.update("counter", lambda v: v + 1, default=0)
        elif mode == "levels":
            for n, level in enumerate(args):
                print(f"phase-{level}", flush=True)
                for i in range(3):
                    store.write(f"k{i}", [n, i], consistency=level)  # new bytes: SQLite skips no-op rewrites
        else:
            raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(*sys.argv[1:])
