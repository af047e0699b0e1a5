"""Coordination between real processes: a paused holder, contenders, movers, a killed watcher."""

from __future__ import annotations

import itertools
import multiprocessing
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from storage_core.capabilities import Capability
from storage_core.codec import encode
from storage_core.storage import Storage
from storage_core.testing import _coordination_workers as workers
from storage_core.testing._base import ContractBase
from storage_core.testing._leases import require
from storage_core.testing._transactions import ACCOUNTS, START_BALANCE, assert_balances
from storage_core.testing.factories import StorageFactory
from storage_core.versions import content_version

_SPAWN = multiprocessing.get_context("spawn")


class CoordinationProcessesContract(ContractBase):
    """The issue's proofs, with spawned processes sharing the store (``supports_processes``)."""

    @pytest.fixture
    def spawn(self) -> Iterator[Callable[..., Any]]:
        """``spawn(target, *args)``: a started process, killed and reaped after the test whatever happens."""
        if not self.supports_processes:
            pytest.skip("the backend is not shared between processes (supports_processes = False)")
        started: list[Any] = []

        def start(target: Callable[..., None], *args: Any) -> Any:
            process = _SPAWN.Process(target=target, args=args, daemon=True)
            process.start()
            started.append(process)
            return process

        yield start
        for process in started:
            if process.is_alive():
                os.kill(process.pid, signal.SIGCONT)  # a stopped process cannot die of SIGKILL until reaped
                process.kill()
            process.join()
            process.close()

    def _job(self, factory: StorageFactory, namespace: str, **fields: Any) -> workers.CoordinationJob:
        return workers.CoordinationJob(factory, namespace, **fields)

    def _join(self, process: Any, what: str) -> None:
        process.join(self.process_timeout)
        assert not process.is_alive(), f"{what} did not finish within {self.process_timeout}s"
        assert process.exitcode == 0, f"{what} failed with exit code {process.exitcode}; see the captured stderr"

    def test_coordination_a_paused_holder_cannot_write_after_takeover(
        self,
        store: Storage,
        storage_factory: StorageFactory,
        namespace: str,
        spawn: Callable[..., Any],
        tmp_path: Path,
    ) -> None:
        require(store, Capability.LEASES)
        report = tmp_path / "holder.txt"
        ttl = 0.5
        ready = _SPAWN.Event()
        holder = spawn(workers.hold_until_lost, self._job(storage_factory, namespace, ttl=ttl, path=str(report)), ready)
        assert ready.wait(self.process_timeout), "the holder never wrote under its lease"
        os.kill(holder.pid, signal.SIGSTOP)
        try:
            time.sleep(ttl + self.ttl_resolution)
            successor = store.acquire_lease("task", ttl=30.0)
            assert successor is not None, "the paused holder's lease must have expired"
            store.write("result", "B", fence=successor)
        finally:
            os.kill(holder.pid, signal.SIGCONT)
        self._join(holder, "the resumed holder")
        lost, token, _written = report.read_text().split()
        assert lost == "lost"
        assert int(token) < successor.token
        assert store.read("result") == "B", "the resumed holder wrote after the takeover"

    def test_coordination_contenders_never_overlap(
        self, store: Storage, storage_factory: StorageFactory, namespace: str, spawn: Callable[..., Any]
    ) -> None:
        require(store, Capability.LEASES)
        count, rounds = self.process_workers, 10
        start = _SPAWN.Barrier(count)
        jobs = [self._job(storage_factory, namespace, me=me, rounds=rounds, ttl=10.0) for me in range(count)]
        processes = [spawn(workers.take_turns, job, start, self.process_timeout) for job in jobs]
        for me, process in enumerate(processes):
            self._join(process, f"contender {me}")
        tenures = sorted(store.read_many(list(store.keys("tenure:"))).values(), key=lambda t: t[2])
        assert len(tenures) == count * rounds
        for before, after in itertools.pairwise(tenures):
            assert before[3] < after[2], f"tenures overlap: {before} and {after}"
            assert before[1] < after[1], f"tokens must grow with each tenure: {before} then {after}"

    def test_coordination_movers_keep_the_total(
        self, store: Storage, storage_factory: StorageFactory, namespace: str, spawn: Callable[..., Any]
    ) -> None:
        require(store, Capability.TRANSACTIONS)
        store.write_many({f"acct{i}": START_BALANCE for i in range(ACCOUNTS)})
        count, rounds = self.process_workers, 10
        start = _SPAWN.Barrier(count)
        jobs = [self._job(storage_factory, namespace, me=me, rounds=rounds) for me in range(count)]
        processes = [spawn(workers.move_between_accounts, job, start, self.process_timeout) for job in jobs]
        for me, process in enumerate(processes):
            self._join(process, f"mover process {me}")
        deltas = list(store.read_many(list(store.keys("deltas:"))).values())
        assert len(deltas) == count * 8
        assert_balances(store, deltas)

    def test_coordination_a_killed_watcher_resumes_exactly_once(
        self,
        store: Storage,
        storage_factory: StorageFactory,
        namespace: str,
        spawn: Callable[..., Any],
        tmp_path: Path,
    ) -> None:
        require(store, Capability.CHANGE_FEED)
        log = tmp_path / "changes.txt"
        job = self._job(storage_factory, namespace, path=str(log))
        ready, go = _SPAWN.Event(), _SPAWN.Event()
        watcher = spawn(workers.watch_feed, job, ready)
        assert ready.wait(self.process_timeout), "the watcher never started"
        writer = spawn(workers.write_feed, job, go)
        go.set()
        for seen in (2_000, 6_000):  # kill it twice, mid-stream
            _wait_for_lines(log, seen, self.process_timeout)
            watcher.kill()
            watcher.join()
            ready = _SPAWN.Event()
            watcher = spawn(workers.watch_feed, job, ready)
            assert ready.wait(self.process_timeout), "the restarted watcher never started"
        self._join(writer, "the writer")
        _wait_for_lines(log, workers.FEED_OPS, self.process_timeout)
        time.sleep(0.2)  # room for a duplicate to show, were one coming
        watcher.kill()
        watcher.join()
        lines = [line.split(" ") for line in log.read_text().splitlines()]
        expected = [workers.feed_op(i) for i in range(workers.FEED_OPS)]
        assert [(key, kind) for key, kind, _, _ in lines] == expected, "a change was lost, doubled or reordered"
        for i, (_, kind, version, _) in enumerate(lines):
            assert version == (content_version(encode(i)) if kind == "put" else "None")
        assert len({cursor for *_, cursor in lines}) == workers.FEED_OPS


def _wait_for_lines(path: Path, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists() or path.read_bytes().count(b"\n") < count:
        assert time.monotonic() < deadline, f"{path.name} did not reach {count} lines in {timeout}s"
        time.sleep(0.02)
