"""``storage migrate``: a verified copy between two stores, resumable after Ctrl-C or SIGKILL.

Here between two real SQLite files; tests/redis/test_redis_cli.py moves keys to and from
a real redis-server.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import storage, storage_script

from storage_core import Capability, Storage, open_storage
from storage_core.cli import main, migrate
from storage_core.cli._progress import Progress


def local(tmp_path: Path, name: str) -> str:
    return f"local://{tmp_path / name}"


def fill(url: str, count: int, *, ttl_every: int = 0) -> None:
    with open_storage(url) as store:
        for start in range(0, count, 5000):
            batch = {f"key:{i:07}": {"n": i, "text": "x" * 20} for i in range(start, min(start + 5000, count))}
            store.write_many(batch, consistency="eventual")
        if ttl_every:
            store.write_many({f"key:{i:07}": {"n": i} for i in range(0, count, ttl_every)}, ttl=600)


def contents(url: str, prefix: str = "") -> dict[str, Any]:
    with open_storage(url) as store:
        keys = list(store.keys(prefix))
        return store.read_many(keys)


def checkpoint(url: str) -> dict[str, Any] | None:
    with open_storage(url) as store:
        for key in store.keys(migrate.CHECKPOINTS):
            found: dict[str, Any] = store.read(key)
            return found
    return None


def copied_this_run(out: str) -> int:
    match = re.search(r"^copied (\d+) keys", out, re.MULTILINE)
    assert match, out
    return int(match[1])


def test_migrate_copies_values_and_ttls_and_verifies(tmp_path: Path) -> None:
    src, dst = local(tmp_path, "src.db"), local(tmp_path, "dst.db")
    fill(src, 2500, ttl_every=10)
    result = storage("migrate", "--from", src, "--to", dst, cwd=tmp_path)
    assert result.code == 0, result.err
    assert result.lines[0].startswith("copied 2500 keys (250 with a TTL) in ")
    assert result.lines[1:] == [
        "verified: 2500 keys in the source, 2500 in the destination; 0 missing, 0 different",
        "done: 2500 keys copied",
    ]
    assert result.err == ""  # piped: no progress display
    assert contents(dst) == contents(src)
    with open_storage(dst) as copy:
        assert copy.ttl("key:0000001") is None
        left = copy.ttl("key:0000010")
        assert left is not None
        assert 590 < left <= 600
    assert checkpoint(dst) is None  # removed once verified


def test_migrate_takes_a_prefix_and_an_agent_yaml(tmp_path: Path) -> None:
    src, dst = local(tmp_path, "src.db"), tmp_path / "dst.yaml"
    dst.write_text(f"storage:\n  backend: local\n  namespace: copy\n  local:\n    path: {tmp_path / 'dst.db'}\n")
    with open_storage(src) as store:
        store.write_many({"a:1": 1, "a:2": 2, "b:1": 3})
    result = storage("migrate", "--from", src, "--to", str(dst), "--prefix", "a:", cwd=tmp_path)
    assert result.code == 0, result.err
    with open_storage(str(dst)) as copy:
        assert copy.namespace == "copy"
        assert copy.read_many(["a:1", "a:2", "b:1"]) == {"a:1": 1, "a:2": 2}


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    src, dst = local(tmp_path, "src.db"), local(tmp_path, "dst.db")
    fill(src, 30)
    result = storage("migrate", "--from", src, "--to", dst, "--dry-run", "--batch", "7", cwd=tmp_path)
    assert result.code == 0, result.err
    assert result.lines == [
        f"dry run: would copy 30 keys from <LocalStorage local:{tmp_path / 'src.db'}> "
        f"to <LocalStorage local:{tmp_path / 'dst.db'}> in batches of 7"
    ]
    assert contents(dst) == {}


def wait_for_checkpoint(url: str, process: subprocess.Popen[bytes], at_least: int) -> int:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, "migrate finished before it could be interrupted"
        found = checkpoint(url)
        if found is not None and found["copied"] >= at_least:
            return int(found["copied"])
        time.sleep(0.02)
    raise AssertionError("migrate made no progress")


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "Ctrl-C"])
def test_an_interrupted_migration_resumes_without_copying_everything_again(
    tmp_path: Path, stop: signal.Signals
) -> None:
    total = 40_000
    src, dst = local(tmp_path, "src.db"), local(tmp_path, "dst.db")
    fill(src, total, ttl_every=97)
    argv = [storage_script(), "migrate", "--from", src, "--to", dst, "--batch", "100"]
    process = subprocess.Popen(argv, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for_checkpoint(dst, process, at_least=4000)
        process.send_signal(stop)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    if stop == signal.SIGINT:
        assert process.returncode == 130
        assert re.fullmatch(
            r"storage: interrupted after \d+ keys were copied; run the same command again to resume\n", err.decode()
        )
    else:
        assert process.returncode == -signal.SIGKILL
    interrupted_at = checkpoint(dst)
    assert interrupted_at is not None
    assert 4000 <= interrupted_at["copied"] < total

    resumed = storage("migrate", "--from", src, "--to", dst, "--batch", "100", cwd=tmp_path)
    assert resumed.code == 0, resumed.err
    assert resumed.notes[0] == (
        f"storage: resuming an interrupted migration: {interrupted_at['copied']} keys were copied "
        "(--restart copies everything again)"
    )
    # At most the one batch that was in flight is copied twice.
    assert copied_this_run(resumed.out) <= total - interrupted_at["copied"] + 100
    assert f"verified: {total} keys in the source, {total} in the destination; 0 missing, 0 different" in resumed.out
    assert f"done: {total} keys copied" in resumed.out
    assert contents(dst) == contents(src)
    assert checkpoint(dst) is None


def test_restart_ignores_the_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src, dst = local(tmp_path, "src.db"), local(tmp_path, "dst.db")
    fill(src, 50)
    plant_checkpoint(src, dst, after="key:0000039", copied=40)
    assert main(["migrate", "--from", src, "--to", dst, "--restart"]) == 0
    out = capsys.readouterr().out
    assert copied_this_run(out) == 50


def plant_checkpoint(src: str, dst: str, *, after: str, copied: int) -> None:
    """What an interrupted run leaves in the destination."""
    with open_storage(src) as source, open_storage(dst) as destination:
        plan = migrate._Plan(source, destination, "", 10, None)
        destination.write(plan.checkpoint_key, {"source": repr(source), "prefix": "", "after": after, "copied": copied})


def test_resuming_from_an_unordered_source_writes_only_what_is_missing_or_different(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    src, dst = local(tmp_path, "src.db"), local(tmp_path, "dst.db")
    fill(src, 300)
    with open_storage(src) as source, open_storage(dst) as destination:
        destination.write_many(source.read_many([f"key:{i:07}" for i in range(0, 300, 2)]))  # every other key
        destination.write("key:0000000", "stale")
    plant_checkpoint(src, dst, after="key:0000299", copied=150)
    # A source listing keys in no fixed order (like Redis SCAN) cannot skip up to the last key.
    monkeypatch.setattr(type(open_storage(src)), "capabilities", frozenset({Capability.READ_TTL}))
    assert main(["migrate", "--from", src, "--to", dst, "--batch", "64"]) == 0
    captured = capsys.readouterr()
    assert copied_this_run(captured.out) == 151  # the 150 missing and the stale one
    assert "0 missing, 0 different" in captured.out
    assert contents(dst) == contents(src)


Sabotage = Callable[[Storage, list[tuple[str, Any, float | None]]], int]


@pytest.mark.parametrize(
    ("sabotage", "finding"),
    [
        (lambda store, items: migrate_write(store, items[1:]), "1 missing, 0 different"),
        (
            lambda store, items: migrate_write(store, [(k, "tampered", t) for k, _, t in items]),
            "0 missing, 5 different",
        ),
    ],
    ids=["a key lost", "values changed"],
)
def test_verify_fails_when_the_copy_differs(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    sabotage: Sabotage,
    finding: str,
) -> None:
    src, dst = local(tmp_path, "src.db"), local(tmp_path, "dst.db")
    fill(src, 5)
    monkeypatch.setattr(migrate, "write_batch", lambda store, items, consistency=None: sabotage(store, list(items)))
    assert main(["migrate", "--from", src, "--to", dst]) == 1
    captured = capsys.readouterr()
    assert finding in captured.out
    error = captured.err.splitlines()[-1]
    assert error.startswith("storage: error: verify failed: ")
    assert "(e.g. 'key:0000000'" in error
    assert checkpoint(dst) is not None  # kept, so a rerun resumes


def migrate_write(store: Storage, items: list[tuple[str, Any, float | None]]) -> int:
    from storage_core.cli._batches import write_batch

    return write_batch(store, items)


def test_verify_notes_keys_only_the_destination_holds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src, dst = local(tmp_path, "src.db"), local(tmp_path, "dst.db")
    fill(src, 3)
    with open_storage(dst) as destination:
        destination.write("theirs", 1)
    assert main(["migrate", "--from", src, "--to", dst]) == 0
    captured = capsys.readouterr()
    assert "verified: 3 keys in the source, 4 in the destination; 0 missing, 0 different" in captured.out
    assert captured.err == "storage: the destination also holds 1 keys the source does not (left as they are)\n"


def test_no_verify_skips_the_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src, dst = local(tmp_path, "src.db"), local(tmp_path, "dst.db")
    fill(src, 3)
    assert main(["migrate", "--from", src, "--to", dst, "--no-verify"]) == 0
    assert "verified" not in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--batch", "0"], "--batch must be at least 1"),
        (["--to", "SRC"], "--from and --to name the same store"),
    ],
)
def test_refusals_are_one_line(tmp_path: Path, argv: list[str], message: str) -> None:
    src, dst = local(tmp_path, "src.db"), local(tmp_path, "dst.db")
    argv = [src if a == "SRC" else a for a in argv]
    result = storage("migrate", "--from", src, "--to", dst, *argv, cwd=tmp_path)
    assert result.code == 1
    assert len(result.notes) == 1
    assert message in result.err


def test_a_source_without_read_ttl_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    src, dst = local(tmp_path, "src.db"), local(tmp_path, "dst.db")
    monkeypatch.setattr(type(open_storage(src)), "capabilities", frozenset())
    assert main(["migrate", "--from", src, "--to", dst]) == 1
    assert "cannot report expiries (read_ttl), so a copy would lose every TTL" in capsys.readouterr().err


def test_dry_run_mentions_an_interrupted_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src, dst = local(tmp_path, "src.db"), local(tmp_path, "dst.db")
    fill(src, 5)
    plant_checkpoint(src, dst, after="key:0000001", copied=2)
    assert main(["migrate", "--from", src, "--to", dst, "--dry-run"]) == 0
    assert "an interrupted run copied 2 keys; it would resume after them" in capsys.readouterr().out


def test_on_a_terminal_the_copy_shows_a_bar_with_an_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    src, dst = local(tmp_path, "src.db"), local(tmp_path, "dst.db")
    fill(src, 20)
    with open_storage(src) as source, open_storage(dst) as destination:
        destination.write_many(source.read_many([f"key:{i:07}" for i in range(10)]))
    plant_checkpoint(src, dst, after="key:0000009", copied=10)
    monkeypatch.setattr(migrate, "on_terminal", lambda: True)
    monkeypatch.setattr("storage_core.cli._progress.on_terminal", lambda: True)
    assert main(["migrate", "--from", src, "--to", dst]) == 0
    err = capsys.readouterr().err
    assert re.search(r"copy .* 20/20 100%", err)
    assert re.search(r"verify .* 20/20 100%", err)


def test_piped_progress_is_a_plain_line_now_and_then(capsys: pytest.CaptureFixture[str]) -> None:
    now = [0.0]
    with Progress("copy", None, live=False, clock=lambda: now[0]) as progress:
        progress.advance(10)
        now[0] = 6.0
        progress.advance(20)
        now[0] = 7.0
        progress.advance(5)
    assert capsys.readouterr().err == "storage: copy: 30 keys in 6.0 s (5 keys/s)\n"
    assert progress.line() == "copy: 35 keys in 7.0 s (5 keys/s)"
    assert Progress("x", 3, clock=lambda: 0.0).rate == 0.0


def test_no_color_is_honoured_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("FORCE_COLOR", "1")  # a terminal rich would colour
    with Progress("copy", 2, live=True) as progress:
        progress.advance(2)
    err = capsys.readouterr().err
    assert "2/2" in err
    assert "\x1b[3" not in err  # no foreground colour codes
    assert os.environ["NO_COLOR"] == "1"
