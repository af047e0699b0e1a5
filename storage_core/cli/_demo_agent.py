"""One agent of ``storage demo``, in its own process: claim tasks with leases, do them, record them.

Each task has one history key, a list of events appended with ``update(..., fence=lease)``:
``claimed`` when an agent takes the task's lease, ``completed`` when it is done. The
fence makes the store refuse an append from an agent whose lease has expired or was taken
over, so the history alone proves (or disproves) the demo's checks afterwards.
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from storage_core.errors import LeaseLost
from storage_core.factory import open_storage
from storage_core.storage import Storage

SLOW = 3600.0  # the victim's slow task: far longer than the demo, so it is killed mid-task
# The demo is about a killed process, which loses nothing committed at eventual; a power
# cut (what strong adds on local) is not its subject, and strong would make it slow.
_LEVEL = "eventual"


@dataclass
class AgentStats:
    """What an agent reports in its stats key after every task (a killed agent cannot report at the end)."""

    name: str
    pid: int
    claimed: int = 0
    completed: int = 0
    taken_over: int = 0
    conflicts: int = 0
    started: float = field(default_factory=time.time)
    last: float = field(default_factory=time.time)
    working_on: int | None = None


@dataclass(frozen=True)
class AgentPlan:
    """Everything an agent process needs, picklable for ``spawn``."""

    source: str | None
    run: str
    name: str
    tasks: int
    lease_ttl: float
    slow_task_after: int | None  # the victim: after this many completions its next task hangs
    fault: str | None


def task_key(run: str, index: int) -> str:
    return f"{run}task:{index:05}"


def stats_key(run: str, name: str) -> str:
    return f"{run}agent:{name}"


def start_key(run: str) -> str:
    """Written by the demo once every agent is ready, so they all start together."""
    return f"{run}start"


def run_agent(plan: AgentPlan) -> None:
    """The agent's whole life: until every task has a completion, claim one and do it."""
    with open_storage(plan.source) as store:
        _Agent(store, plan).work()


class _Agent:
    def __init__(self, store: Storage, plan: AgentPlan) -> None:
        self.store = store
        self.plan = plan
        self.stats = AgentStats(plan.name, os.getpid())
        self.random = random.Random(plan.name)
        self.keys = [task_key(plan.run, i) for i in range(plan.tasks)]

    def work(self) -> None:
        self._report(working_on=None)  # ready
        while not self.store.exists(start_key(self.plan.run)):
            time.sleep(0.01)
        self.stats.started = time.time()
        done: set[str] = set()
        while len(done) < len(self.keys):
            pending = [key for key in self.keys if key not in done]
            histories = self.store.read_many(pending)
            for key in pending:
                if key not in histories or _completed(histories[key]):
                    done.add(key)  # completed by someone, or not in the queue at all
            todo = [key for key in pending if key not in done]
            self.random.shuffle(todo)
            for key in todo:
                if self._try(key):
                    done.add(key)
            if todo:
                time.sleep(0.01)  # the rest are held by others: look again shortly

    def _try(self, key: str) -> bool:
        """Claim and do the task at *key*; True when this agent knows it is completed."""
        lease = self.store.acquire_lease(key, ttl=self.plan.lease_ttl)
        if lease is None:
            self.stats.conflicts += 1
            return False
        try:
            me = {"agent": self.plan.name, "token": lease.token}
            history = self.store.update(
                key, lambda events: events if _completed(events) else [*events, {**me, "event": "claimed"}], fence=lease
            )
            if _completed(history):
                return True
            self.stats.claimed += 1
            if any(e["event"] == "claimed" and e["agent"] != self.plan.name for e in history):
                self.stats.taken_over += 1
            self._report(working_on=int(key.rsplit(":", 1)[1]))
            self._do_the_work()
            appends = 2 if self.plan.fault == "duplicate" and self.stats.completed == 0 else 1
            for _ in range(appends):
                self.store.update(
                    key, lambda events: [*events, {**me, "event": "completed"}], fence=lease, consistency=_LEVEL
                )
            self.stats.completed += 1
            self._report(working_on=None)
            return True
        except LeaseLost:  # fenced out: another agent holds the task now, and nothing was written
            self.stats.conflicts += 1
            return False
        finally:
            self.store.release_lease(lease)

    def _do_the_work(self) -> None:
        slow_after = self.plan.slow_task_after
        if slow_after is not None and self.stats.completed == slow_after:
            time.sleep(SLOW)  # the demo SIGKILLs this agent here, holding the lease
        time.sleep(self.random.uniform(0.002, 0.01))

    def _report(self, *, working_on: int | None) -> None:
        self.stats.working_on = working_on
        self.stats.last = time.time()
        self.store.write(stats_key(self.plan.run, self.plan.name), asdict(self.stats), consistency=_LEVEL)


def _completed(events: list[dict[str, Any]]) -> bool:
    return any(event["event"] == "completed" for event in events)
