"""Several processes on one file: no lost update, and a SIGKILL never tears a value."""

from __future__ import annotations

import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from storage_local import LocalStorage

from ._child import value

CHILD = str(Path(__file__).with_name("_child.py"))
PAD = 64_000  # each value spans many 4 KiB pages


def spawn(*args: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, CHILD, *map(str, args)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )


def kill_mid_run(db: Path, level: str, start: int, reported: int) -> list[str]:
    """Let a child write until it reported *reported* keys, SIGKILL it, return every key it reported."""
    child = spawn("write", db, level, start, PAD)
    assert child.stdout is not None
    keys: list[str] = []
    while len(keys) < reported:
        line = child.stdout.readline()
        assert line, f"the writer died on its own with exit code {child.wait()}"
        keys.append(line.strip())
    time.sleep(random.uniform(0, 0.004))  # so the kill lands at a different point of a write each time
    child.send_signal(signal.SIGKILL)
    assert child.wait(timeout=30) == -signal.SIGKILL
    rest = child.stdout.read()  # what it printed before the kill (communicate() would skip read-ahead)
    child.stdout.close()
    assert child.stdin is not None
    child.stdin.close()
    return keys + rest.split()


def integrity(db: Path) -> str:
    conn = sqlite3.connect(db)
    try:
        result: str = conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()
    return result


@pytest.mark.slow
@pytest.mark.parametrize("level", ["strong", "eventual"])
def test_sigkill_mid_write_leaves_a_sound_database(tmp_path: Path, level: str) -> None:
    db = tmp_path / "state.db"
    reported: list[str] = []
    for attempt in range(3):  # three kills, each landing somewhere else
        reported += kill_mid_run(db, level, start=attempt * 100_000, reported=15)
        assert integrity(db) == "ok"
    with LocalStorage.from_options({"path": str(db)}) as store:
        stored = list(store.keys())
        # A reported key's write returned before it was printed: it is there, whole. (For
        # EVENTUAL too: a process crash loses nothing the OS already has; a power cut could.)
        assert set(reported) <= set(stored)
        found = store.read_many(stored)
    # No torn values: whatever is there, reported or caught in flight, is complete.
    for key, data in found.items():
        assert data == value(int(key[1:]), PAD), key
    assert len(stored) - len(reported) in (0, 1, 2, 3)  # at most the write in flight, per kill


@pytest.mark.slow
def test_update_from_many_processes_loses_nothing(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    workers = [spawn("count", db, 50) for _ in range(4)]
    for worker in workers:
        assert worker.stdout is not None
        assert worker.stdout.readline() == "ready\n"
    for worker in workers:
        worker.communicate("go\n", timeout=120)
        assert worker.returncode == 0
    with LocalStorage.from_options({"path": str(db)}) as store:
        assert store.read("counter") == 200
    assert integrity(db) == "ok"


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace to watch the fsyncs")
def test_strong_writes_sync_before_returning_and_eventual_ones_do_not(tmp_path: Path) -> None:
    log = tmp_path / "strace.log"
    levels = ["strong", "eventual", "strong", "eventual"]
    trace = ["strace", "-f", "-e", "trace=fsync,fdatasync,write", "-o", str(log)]
    subprocess.run(
        [*trace, sys.executable, CHILD, "levels", str(tmp_path / "state.db"), *levels],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    syncs: dict[int, int] = {}
    phase = -1
    for line in log.read_text().splitlines():
        if '"phase-' in line:
            phase += 1
            syncs[phase] = 0
        elif "sync(" in line and phase >= 0:
            syncs[phase] += 1
    # The last phase also holds the checkpoint of close().
    assert [syncs[0], syncs[1], syncs[2]] == [3, 0, 3], syncs
