"""``storage bench``: the numbers it reports, and no scratch key left behind, even after Ctrl-C."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import storage, storage_script

from storage_core import Storage, open_storage
from storage_core.cli import bench, main

OPERATIONS = [
    "read",
    "write strong",
    "write eventual",
    "read_many",
    "write_many",
    "update, 2 threads",
    "update, 2 processes",
]


def leftovers(url: str) -> list[str]:
    with open_storage(url) as store:
        return list(store.keys("storage-bench:"))


def test_bench_json_reports_every_operation_and_leaves_nothing(tmp_path: Path) -> None:
    url = f"local://{tmp_path / 'b.db'}"
    with open_storage(url) as store:
        store.write("mine", 1)
    result = storage("-c", url, "bench", "--json", "--ops", "20", "--threads", "2", "--processes", "2", cwd=tmp_path)
    assert result.code == 0, result.err
    assert result.err == ""
    report = json.loads(result.out)
    assert report["store"] == f"<LocalStorage local:{tmp_path / 'b.db'}>"
    rows: list[dict[str, Any]] = report["results"]
    assert [row["operation"] for row in rows] == OPERATIONS
    for row in rows:
        assert set(row) == {"operation", "ops", "keys_per_op", "p50_ms", "p99_ms", "ops_per_s"}
        assert 0 < row["p50_ms"] <= row["p99_ms"]
        assert row["ops_per_s"] > 0
    assert rows[3]["keys_per_op"] == 100
    assert rows[5]["ops"] == 20  # 2 threads x 10 updates
    assert leftovers(url) == []
    with open_storage(url) as store:
        assert list(store.keys()) == ["mine"]  # the user's keys untouched


def test_bench_prints_a_plain_table_when_piped(tmp_path: Path) -> None:
    url = f"local://{tmp_path / 'b.db'}"
    result = storage("-c", url, "bench", "--ops", "10", "--threads", "0", "--processes", "0", cwd=tmp_path)
    assert result.code == 0, result.err
    assert "\x1b[" not in result.out + result.err
    header = next(line for line in result.lines if "operation" in line)
    assert header.split() == ["operation", "ops", "keys/op", "p50", "ms", "p99", "ms", "ops/s"]
    assert sum(1 for line in result.lines if line.strip().startswith(("read", "write"))) == 5


def test_ctrl_c_during_bench_still_removes_the_scratch_keys(tmp_path: Path) -> None:
    url = f"local://{tmp_path / 'b.db'}"
    argv = [storage_script(), "-c", url, "bench", "--ops", "5000", "--processes", "0"]
    process = subprocess.Popen(argv, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not leftovers(url):
            assert process.poll() is None, "bench finished before it could be interrupted"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert (process.returncode, out, err) == (130, b"", b"")
    assert leftovers(url) == []


def test_ops_must_be_positive(tmp_path: Path) -> None:
    result = storage("-c", f"local://{tmp_path / 'b.db'}", "bench", "--ops", "0", cwd=tmp_path)
    assert (result.code, result.notes) == (1, ["storage: error: --ops must be at least 1"])


def test_lost_increments_are_a_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(Storage, "update", lambda self, key, fn, **kwargs: None)
    assert main(["-c", f"local://{tmp_path / 'b.db'}", "bench", "--ops", "4", "--processes", "0"]) == 1
    assert "update lost increments under contention: the counter is 0, expected 4" in capsys.readouterr().err


def test_a_failed_cleanup_is_a_warning_naming_the_safety_net(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def refuse(self: Storage, key: str, **kwargs: Any) -> bool:
        raise OSError("read-only file system")

    monkeypatch.setattr(Storage, "delete", refuse)
    url = f"local://{tmp_path / 'b.db'}"
    assert main(["-c", url, "bench", "--ops", "2", "--threads", "0", "--processes", "0", "--json"]) == 0
    err = capsys.readouterr().err
    assert "warning: could not remove the scratch keys storage-bench:" in err
    assert "they expire in 600 s" in err


def test_on_a_terminal_bench_says_what_it_measures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(bench, "on_terminal", lambda: True)
    assert (
        main(["-c", f"local://{tmp_path / 'b.db'}", "bench", "--ops", "2", "--threads", "1", "--processes", "0"]) == 0
    )
    captured = capsys.readouterr()
    assert "\r\x1b[Kmeasuring update, 1 threads..." in captured.err
    assert "update, 1 threads" in captured.out


def test_a_process_worker_times_each_update(tmp_path: Path) -> None:
    url = f"local://{tmp_path / 'b.db'}"
    times, start, end = bench._update_worker(url, "counter", 3)
    assert len(times) == 3
    assert start <= end
    with open_storage(url) as store:
        assert store.read("counter") == 3
