"""``storage demo``: agents sharing one store, a task queue, leases with fencing, and one agent killed.

The main job of storage-core, shown in seconds: N agent processes (``_demo_agent``) claim M
tasks with leases, one of them is SIGKILLed while it holds a task, and the task is taken
over once the lease expires. The checks at the end read only what the store holds (each
task's history of fenced appends), so they prove the framework, not the demo's own
bookkeeping; ``--fault`` (for the tests) breaks the invariant to show the checks can fail.
"""

from __future__ import annotations

import argparse
import os
import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from storage_core.capabilities import Capability
from storage_core.cli._args import Commands, add_command, count, seconds
from storage_core.cli._demo_agent import AgentPlan, run_agent, start_key, stats_key, task_key
from storage_core.cli._errors import EXIT_ERROR, EXIT_OK, CommandError
from storage_core.cli._output import out, out_utf8
from storage_core.cli._progress import Progress, on_terminal
from storage_core.cli._store import config_source
from storage_core.factory import open_storage
from storage_core.storage import Storage

_FAULTS = ("lose", "duplicate")
_DEADLINE = 120.0  # seconds: a demo that takes longer is stuck, and says so


def register(commands: Commands) -> None:
    parser = add_command(
        commands,
        "demo",
        run,
        "Run N agent processes sharing the configured store and a queue of M tasks: they claim "
        "tasks with leases and fencing tokens, one agent is SIGKILLed mid-task (its task is taken "
        "over once its lease expires), then a table per agent and the checks: every task completed "
        "exactly once, none lost, none twice, no write from a fenced-out agent. Exits 1 if a check fails. "
        "Its keys (demo:<run>:...) are removed at the end.",
        examples=["storage demo", "storage -c redis://localhost:6379/0 demo --agents 8 --tasks 1000 --json"],
    )
    parser.add_argument("--agents", type=count, default=4, metavar="N", help="agent processes (4)")
    parser.add_argument("--tasks", type=count, default=300, metavar="M", help="tasks in the queue (300)")
    parser.add_argument("--lease-ttl", type=seconds, default=1.0, metavar="S", help="lease seconds (1)")
    parser.add_argument("--no-chaos", action="store_true", help="kill no agent")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    parser.add_argument("--fault", choices=_FAULTS, help=argparse.SUPPRESS)  # tests: prove the checks can fail


@dataclass(frozen=True)
class _Run:
    source: str | None
    prefix: str
    tasks: int
    agents: int
    lease_ttl: float
    chaos: bool
    fault: str | None


def run(args: argparse.Namespace) -> int:
    if args.agents < 1 or args.tasks < 1:
        raise CommandError("--agents and --tasks must be at least 1")
    if not args.no_chaos and args.agents < 2:
        raise CommandError("chaos kills one agent, so it needs --agents 2 or more (or --no-chaos)")
    demo = _Run(
        config_source(args),
        f"demo:{uuid.uuid4().hex[:8]}:",
        args.tasks,
        args.agents,
        args.lease_ttl,
        not args.no_chaos,
        args.fault,
    )
    with open_storage(demo.source) as store:
        if not store.supports(Capability.LEASES):
            raise CommandError(f"the {store.name!r} backend has no leases ({Capability.LEASES}); the demo needs them")
        try:
            summary = _play(store, demo)
        finally:
            for key in list(store.keys(demo.prefix)):
                store.delete(key, consistency="eventual")
    if args.json:
        out_utf8(orjson.dumps(summary))
    else:
        _print(summary)
    return EXIT_OK if summary["ok"] else EXIT_ERROR


def _play(store: Storage, demo: _Run) -> dict[str, Any]:
    import multiprocessing  # noqa: PLC0415 - only the demo starts processes

    keys = [task_key(demo.prefix, i) for i in range(demo.tasks)]
    store.write_many({key: [] for key in keys})
    if demo.fault == "lose":
        store.delete(keys[0])  # the queue loses a task: nobody can complete it
    names = [f"agent-{i + 1}" for i in range(demo.agents)]
    victim = names[-1] if demo.chaos else None
    context = multiprocessing.get_context("spawn")
    processes = {
        name: context.Process(
            target=run_agent,
            args=(
                AgentPlan(
                    demo.source,
                    demo.prefix,
                    name,
                    demo.tasks,
                    demo.lease_ttl,
                    _victim_slow_after(demo) if name == victim else None,
                    demo.fault if name == names[0] else None,
                ),
            ),
            name=name,
            daemon=True,
        )
        for name in names
    }
    for process in processes.values():
        process.start()
    killed: dict[str, Any] = {}
    try:
        _start_together(store, demo, names, processes)
        start = time.time()
        with Progress("tasks completed", demo.tasks, unit="tasks") as progress:
            for done in _watch(store, keys, processes):
                progress.advance(done - progress.done)
                if victim and not killed:
                    killed = _kill_when_busy(store, demo, victim, processes[victim], progress)
    finally:
        for process in processes.values():
            if process.is_alive():
                process.kill()
            process.join(10)
    failed = [name for name, process in processes.items() if name != victim and process.exitcode != 0]
    if failed:
        raise CommandError(
            f"agent {', '.join(failed)} failed (exit {processes[failed[0]].exitcode}); its error is above"
        )
    return _summarize(store, demo, keys, names=names, killed=killed, elapsed=time.time() - start)


def _start_together(store: Storage, demo: _Run, names: list[str], processes: dict[str, Any]) -> None:
    """Wait until every agent process is up (spawning takes a while), then let them all go at once."""
    deadline = time.monotonic() + _DEADLINE
    while len(store.read_many([stats_key(demo.prefix, name) for name in names])) < len(names):
        if not all(process.is_alive() for process in processes.values()):
            return  # one died starting: the check after the run names it
        if time.monotonic() > deadline:
            raise CommandError(f"the agents did not start within {_DEADLINE:.0f} s")
        time.sleep(0.02)
    store.write(start_key(demo.prefix), True)


def _watch(store: Storage, keys: list[str], processes: dict[str, Any]) -> Iterator[int]:
    """Yield the number of completed tasks every few ms until the agents are all done."""
    deadline = time.monotonic() + _DEADLINE
    while True:
        histories = store.read_many(keys)
        yield sum(1 for events in histories.values() if any(e["event"] == "completed" for e in events))
        if not any(process.is_alive() for process in processes.values()):
            return
        if time.monotonic() > deadline:
            raise CommandError(f"the demo did not finish within {_DEADLINE:.0f} s; is the store very slow?")
        time.sleep(0.05)


def _victim_slow_after(demo: _Run) -> int:
    """Completions before the victim's task hangs: a few, so it dies mid-queue, fewer for a short queue."""
    return min(3, demo.tasks // demo.agents // 2)


def _kill_when_busy(store: Storage, demo: _Run, victim: str, process: Any, progress: Progress) -> dict[str, Any]:
    """SIGKILL *victim* once it is working on its slow task, holding that task's lease."""
    stats = store.get(stats_key(demo.prefix, victim))
    if not stats or stats["working_on"] is None or stats["completed"] < _victim_slow_after(demo):
        return {}
    os.kill(process.pid, signal.SIGKILL)
    progress.log(f"chaos: SIGKILLed {victim} (pid {process.pid}) while it held task {stats['working_on']}")
    return {"agent": victim, "task": stats["working_on"], "pid": process.pid}


def _summarize(
    store: Storage, demo: _Run, keys: list[str], *, names: list[str], killed: dict[str, Any], elapsed: float
) -> dict[str, Any]:
    histories = store.read_many(keys)
    completions = {key: [e for e in histories.get(key, []) if e["event"] == "completed"] for key in keys}
    lost = sum(1 for key in keys if not completions[key])
    duplicated = sum(1 for key in keys if len(completions[key]) > 1)
    taken_over = sum(
        1 for key in keys if len({e["agent"] for e in histories.get(key, []) if e["event"] == "claimed"}) > 1
    )
    stale = sum(1 for key in keys if _stale_writes(histories.get(key, [])))
    agents = []
    for name in names:
        stats = store.get(stats_key(demo.prefix, name)) or {
            "pid": None,
            "claimed": 0,
            "completed": 0,
            "taken_over": 0,
            "conflicts": 0,
            "started": 0,
            "last": 0,
        }
        span = max(stats["last"] - stats["started"], 1e-9)
        agents.append(
            {
                "name": name,
                "pid": stats["pid"],
                "claimed": stats["claimed"],
                "completed": stats["completed"],
                "taken_over": stats["taken_over"],
                "conflicts": stats["conflicts"],
                "throughput": round(stats["completed"] / span, 1),
                "killed": name == killed.get("agent"),
            }
        )
    checks = {
        "every task completed exactly once": lost == 0 and duplicated == 0,
        "no task lost": lost == 0,
        "no task done twice": duplicated == 0,
        "no write from a fenced-out agent": stale == 0,
    }
    if demo.chaos:
        checks["the killed agent's task was taken over"] = bool(killed) and any(
            len(
                {
                    e["agent"]
                    for e in histories.get(task_key(demo.prefix, killed["task"]), [])
                    if e["event"] == "claimed"
                }
            )
            > 1
            for _ in [0]
        )
    return {
        "tasks": demo.tasks,
        "completed": sum(1 for key in keys if completions[key]),
        "lost": lost,
        "duplicated": duplicated,
        "taken_over": taken_over,
        "agents": agents,
        "killed": killed or None,
        "checks": checks,
        "ok": all(checks.values()),
        "seconds": round(elapsed, 2),
        "store": repr(store),
    }


def _stale_writes(events: list[dict[str, Any]]) -> bool:
    """Whether an event was appended with an older token after a newer one: a fenced-out write."""
    newest = 0
    for event in events:
        if event["token"] < newest:
            return True
        newest = max(newest, event["token"])
    return False


def _print(summary: dict[str, Any]) -> None:
    from rich.box import SIMPLE  # noqa: PLC0415 - only the commands that draw import rich
    from rich.console import Console  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    title = f"storage demo: {summary['tasks']} tasks on {summary['store']} in {summary['seconds']} s"
    table = Table(title=title, title_justify="left", box=SIMPLE)
    for header in ("agent", "pid", "claimed", "completed", "taken over", "conflicts retried", "tasks/s"):
        table.add_column(header, justify="left" if header == "agent" else "right", no_wrap=True)
    agents = summary["agents"]
    for a in agents:
        name = f"{a['name']} (SIGKILLed)" if a["killed"] else a["name"]
        cells = (a["pid"], a["claimed"], a["completed"], a["taken_over"], a["conflicts"], f"{a['throughput']:.0f}")
        table.add_row(name, *map(str, cells))
    totals = (sum(a["claimed"] for a in agents), summary["completed"], summary["taken_over"])
    table.add_row("total", "", *map(str, totals), str(sum(a["conflicts"] for a in agents)), "")
    # Piped, rich would assume 80 columns and cut the table: give it room, since nobody resizes a pipe.
    Console(soft_wrap=False, width=None if on_terminal() else 120).print(table)
    out(f"lost {summary['lost']}, duplicated {summary['duplicated']}, taken over {summary['taken_over']}")
    for check, passed in summary["checks"].items():
        out(f"{'ok  ' if passed else 'FAIL'} {check}")
