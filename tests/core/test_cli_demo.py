"""``storage demo``: real agent processes on a real SQLite file, one SIGKILLed, and checks that can fail."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import Result, storage

from storage_core import open_storage
from storage_core.cli import demo, main
from storage_core.cli._errors import CommandError
from storage_core.cli._progress import Progress

PINNED = {"tasks", "completed", "lost", "duplicated", "taken_over", "agents"}


def run_demo(tmp_path: Path, *argv: str) -> Result:
    return storage(
        "-c", f"local://{tmp_path / 'demo.db'}", "demo", "--lease-ttl", "0.5", *argv, cwd=tmp_path, timeout=240
    )


def leftovers(tmp_path: Path) -> list[str]:
    with open_storage(f"local://{tmp_path / 'demo.db'}") as store:
        return list(store.keys("demo:"))


@pytest.mark.slow
def test_the_demo_survives_a_killed_agent_and_proves_it(tmp_path: Path) -> None:
    result = run_demo(tmp_path, "--json", "--tasks", "40", "--agents", "3")
    assert result.code == 0, result.err
    summary: dict[str, Any] = json.loads(result.out)
    assert set(summary) >= PINNED
    assert (summary["tasks"], summary["completed"], summary["lost"], summary["duplicated"]) == (40, 40, 0, 0)
    assert summary["taken_over"] >= 1
    assert all(summary["checks"].values())
    agents = summary["agents"]
    assert [a["name"] for a in agents] == ["agent-1", "agent-2", "agent-3"]
    assert [a["killed"] for a in agents] == [False, False, True]
    assert sum(a["completed"] for a in agents) == 40
    assert summary["killed"]["agent"] == "agent-3"
    assert any(f"chaos: SIGKILLed agent-3 (pid {agents[2]['pid']}) while it held task" in line for line in result.notes)
    assert leftovers(tmp_path) == []


@pytest.mark.slow
def test_piped_the_demo_prints_a_plain_table_and_the_checks(tmp_path: Path) -> None:
    result = run_demo(tmp_path, "--no-chaos", "--tasks", "20", "--agents", "2")
    assert result.code == 0, result.err
    assert "\x1b[" not in result.out + result.err
    assert any(line.split()[:2] == ["agent", "pid"] for line in result.lines)
    assert "lost 0, duplicated 0, taken over 0" in result.lines
    assert [line for line in result.lines if line.startswith(("ok", "FAIL"))] == [
        "ok   every task completed exactly once",
        "ok   no task lost",
        "ok   no task done twice",
        "ok   no write from a fenced-out agent",
    ]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("fault", "broken", "figures"),
    [
        ("lose", "no task lost", {"lost": 1, "duplicated": 0, "completed": 19}),
        ("duplicate", "no task done twice", {"lost": 0, "duplicated": 1, "completed": 20}),
    ],
)
def test_a_fault_that_breaks_the_invariant_fails_the_checks(
    tmp_path: Path, fault: str, broken: str, figures: dict[str, int]
) -> None:
    # One agent: the faulty one is agent-1, and with company it might start after the others finished.
    result = run_demo(tmp_path, "--no-chaos", "--tasks", "20", "--agents", "1", "--json", "--fault", fault)
    assert result.code == 1, result.err
    summary = json.loads(result.out)
    assert {name: summary[name] for name in figures} == figures
    assert summary["checks"][broken] is False
    assert summary["checks"]["every task completed exactly once"] is False
    assert summary["ok"] is False
    table = run_demo(tmp_path, "--no-chaos", "--tasks", "5", "--agents", "1", "--fault", fault)
    assert table.code == 1
    assert f"FAIL {broken}" in table.lines


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--agents", "0"], "--agents and --tasks must be at least 1"),
        (["--tasks", "0"], "--agents and --tasks must be at least 1"),
        (["--agents", "1"], "chaos kills one agent, so it needs --agents 2 or more (or --no-chaos)"),
    ],
)
def test_refusals_are_one_line(tmp_path: Path, argv: list[str], message: str) -> None:
    result = run_demo(tmp_path, *argv)
    assert (result.code, result.notes) == (1, [f"storage: error: {message}"])


def test_a_backend_without_leases_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"local://{tmp_path / 'demo.db'}"
    monkeypatch.setattr(type(open_storage(url)), "capabilities", frozenset())
    assert main(["-c", url, "demo"]) == 1
    assert "the 'local' backend has no leases (leases); the demo needs them" in capsys.readouterr().err


@pytest.mark.parametrize(("tokens", "stale"), [([1, 1, 2, 2], False), ([1, 2, 1], True), ([], False), ([3, 5], False)])
def test_a_write_with_an_older_token_after_a_newer_one_is_stale(tokens: list[int], stale: bool) -> None:
    events = [{"event": "claimed", "agent": "a", "token": token} for token in tokens]
    assert demo._stale_writes(events) is stale


def test_progress_logs_events_above_a_live_display(capsys: pytest.CaptureFixture[str]) -> None:
    with Progress("tasks", 2, unit="tasks", live=True) as progress:
        progress.log("chaos: something [bold]happened[/bold]")
        progress.advance(2)
    assert "chaos: something [bold]happened[/bold]" in capsys.readouterr().err  # no markup interpreted


def test_a_stuck_demo_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Alive:
        def is_alive(self) -> bool:
            return True

    monkeypatch.setattr(demo, "_DEADLINE", 0.0)
    with open_storage(f"local://{tmp_path / 'x.db'}") as store:
        watching = demo._watch(store, ["k"], {"agent-1": Alive()})
        assert next(watching) == 0
        with pytest.raises(CommandError, match="did not finish within 0 s"):
            next(watching)


def test_a_failing_agent_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(demo, "run_agent", _exit_badly)
    assert main(["-c", f"local://{tmp_path / 'demo.db'}", "demo", "--no-chaos", "--tasks", "2", "--agents", "1"]) == 1
    assert "agent agent-1 failed (exit 3)" in capsys.readouterr().err


def _exit_badly(plan: Any) -> None:
    raise SystemExit(3)


def test_a_short_queue_still_sees_its_agent_killed_and_taken_over(tmp_path: Path) -> None:
    result = run_demo(tmp_path, "--json", "--tasks", "3", "--agents", "2")
    assert result.code == 0, result.err
    summary = json.loads(result.out)
    assert summary["checks"]["the killed agent's task was taken over"] is True
    assert summary["completed"] == 3


def test_storage_keys_are_untouched(tmp_path: Path) -> None:
    url = f"local://{tmp_path / 'demo.db'}"
    with open_storage(url) as store:
        store.write("mine", 1)
    assert run_demo(tmp_path, "--no-chaos", "--tasks", "3", "--agents", "1").code == 0
    with open_storage(url) as store:
        assert list(store.keys()) == ["mine"]
