"""Concurrency: ``update`` never loses an increment, across threads and processes."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.synchronize import Barrier
from typing import Any

import pytest

from storage_core.errors import KeyNotFound, SerializationError
from storage_core.storage import Storage
from storage_core.testing import _workers
from storage_core.testing._base import ContractBase, clause
from storage_core.testing.factories import StorageFactory


class _Boom(Exception):
    pass


class ConcurrencyContract(ContractBase):
    """``update`` semantics, and thread and process safety."""

    # -- update semantics ----------------------------------------------------------------

    def test_update_absent_without_default_raises(self, store: Storage) -> None:
        with pytest.raises(KeyNotFound):
            store.update("counter", _workers.plus_one)
        assert not store.exists("counter")

    def test_update_absent_passes_default(self, store: Storage) -> None:
        seen: list[Any] = []

        def fn(value: Any) -> Any:
            seen.append(value)
            return {"was": value}

        assert store.update("key", fn, default=41) == {"was": 41}
        assert seen[-1] == 41
        assert store.read("key") == {"was": 41}

    def test_update_default_none_is_a_default(self, store: Storage) -> None:
        assert store.update("key", lambda v: [v], default=None) == [None]
        assert store.read("key") == [None]

    def test_update_present_ignores_default(self, store: Storage) -> None:
        store.write("counter", 10)
        assert store.update("counter", _workers.plus_one, default=0) == 11

    def test_update_passes_current_value_and_returns_written_value(self, store: Storage) -> None:
        store.write("list", [1])
        assert store.update("list", lambda v: [*v, 2]) == [1, 2]
        assert store.read("list") == [1, 2]

    def test_update_mutable_default_is_not_shared(self, store: Storage) -> None:
        default: list[int] = []

        def append(value: list[int]) -> list[int]:
            value.append(1)
            return value

        assert store.update("a", append, default=default) == [1]
        assert store.update("b", append, default=default) == [1]
        assert default == [], "update must not hand fn the caller's default object itself"

    def test_update_exception_writes_nothing(self, store: Storage) -> None:
        store.write("key", "old")

        def fail(value: Any) -> Any:
            raise _Boom

        with pytest.raises(_Boom):
            store.update("key", fail)
        with pytest.raises(_Boom):
            store.update("absent", fail, default=0)
        assert store.read_many(["key", "absent"]) == {"key": "old"}

    def test_update_unserializable_result_writes_nothing(self, store: Storage) -> None:
        store.write("key", 1)
        with pytest.raises(SerializationError):
            store.update("key", lambda v: {v})
        assert store.read("key") == 1

    def test_update_with_ttl_expires(self, store: Storage) -> None:
        store.update("key", _workers.plus_one, default=0, ttl=self.short_ttl)
        self.expire()
        assert not store.exists("key")

    # -- threads -------------------------------------------------------------------------

    def test_update_under_thread_contention_loses_nothing(self, store: Storage) -> None:
        workers, count = self.thread_workers, self.thread_increments
        start = threading.Barrier(workers)

        def work(_: int) -> None:
            start.wait(self.process_timeout)
            for _ in range(count):
                store.update("counter", _workers.plus_one, default=0)

        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(work, range(workers), timeout=self.process_timeout))
        assert store.read("counter") == workers * count

    def test_mixed_operations_from_threads(self, store: Storage) -> None:
        workers, rounds = self.thread_workers, 40
        start = threading.Barrier(workers)

        def work(me: int) -> None:
            start.wait(self.process_timeout)
            for i in range(rounds):
                key = f"t{me}/{i}"
                store.write(key, {"me": me, "i": i})
                assert store.read(key) == {"me": me, "i": i}
                store.write("shared", {"me": me, "i": i})
                shared = store.read("shared")
                assert shared["i"] in range(rounds), f"torn value: {shared!r}"
                if i % 2:
                    assert store.delete(key) is True
                store.write_many({f"t{me}/bulk": i, f"t{me}/last": i})
                assert store.read_many([f"t{me}/bulk", f"t{me}/last"]) == {f"t{me}/bulk": i, f"t{me}/last": i}
                sum(1 for _ in store.keys(f"t{me}/"))

        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(work, range(workers), timeout=self.process_timeout))
        for me in range(workers):
            expected = {f"t{me}/{i}" for i in range(0, rounds, 2)} | {f"t{me}/bulk", f"t{me}/last"}
            assert set(store.keys(f"t{me}/")) == expected
            assert store.read(f"t{me}/last") == rounds - 1
        assert store.read("shared")["me"] in range(workers)

    def test_threads_share_one_store_across_lifecycle_calls(self, store: Storage) -> None:
        workers = self.thread_workers
        start = threading.Barrier(workers)

        def work(me: int) -> None:
            start.wait(self.process_timeout)
            store.initialize()
            store.write(f"k{me}", me)

        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(work, range(workers), timeout=self.process_timeout))
        assert store.read_many([f"k{me}" for me in range(workers)]) == {f"k{me}": me for me in range(workers)}

    # -- processes -----------------------------------------------------------------------

    def _run_processes(self, target: Callable[[_workers.Job, Barrier, float], None], jobs: list[_workers.Job]) -> None:
        """Run *target* in spawned processes; fail on a crash or on ``process_timeout``."""
        if not self.supports_processes:
            pytest.skip("the backend is not shared between processes (supports_processes = False)")
        context = multiprocessing.get_context("spawn")
        start = context.Barrier(len(jobs))
        processes = [
            context.Process(target=target, args=(job, start, self.process_timeout), daemon=True) for job in jobs
        ]
        deadline = time.monotonic() + self.process_timeout
        try:
            for process in processes:
                process.start()
            for process in processes:
                process.join(max(0.0, deadline - time.monotonic()))
            hung = [p.pid for p in processes if p.is_alive()]
            assert not hung, f"worker processes {hung} did not finish within {self.process_timeout}s"
            failed = [p.exitcode for p in processes if p.exitcode != 0]
            assert not failed, f"workers failed with exit codes {failed}; their tracebacks are in the captured stderr"
        finally:
            for process in processes:
                if process.is_alive():
                    process.kill()
                    process.join()
                if process.exitcode is not None:
                    process.close()

    def test_update_under_process_contention_loses_nothing(
        self, store: Storage, storage_factory: StorageFactory, namespace: str
    ) -> None:
        workers, count = self.process_workers, self.process_increments
        job = _workers.Job(storage_factory, namespace, "counter", count=count)
        self._run_processes(_workers.increment, [job] * workers)
        assert store.read("counter") == workers * count

    def test_one_of_racing_processes_wins_conditional_write(
        self, store: Storage, storage_factory: StorageFactory, namespace: str
    ) -> None:
        store.write("key", "start")
        version = store.read_entry("key").version
        workers = self.process_workers
        jobs = [_workers.Job(storage_factory, namespace, "key", version=version, me=f"w{i}") for i in range(workers)]
        self._run_processes(_workers.race_version, jobs)
        winners = store.read("winners")
        assert len(winners) == 1, f"exactly one conditional write may win, these did: {winners}"
        assert store.read("key") == winners[0]

    @clause(
        "a writer killed mid-write leaves no torn value: each key holds a whole value, the old or the new",
        primitive="_write, _write_many",
    )
    def test_a_killed_writer_leaves_no_torn_value(
        self, store: Storage, storage_factory: StorageFactory, namespace: str
    ) -> None:
        if not self.supports_processes:
            pytest.skip("the backend is not shared between processes (supports_processes = False)")
        if not hasattr(signal, "SIGKILL"):
            pytest.skip("no SIGKILL on this platform")
        context = multiprocessing.get_context("spawn")
        ready = context.Event()
        job = _workers.Job(storage_factory, namespace, "torn")
        writer = context.Process(target=_workers.write_until_killed, args=(job, ready), daemon=True)
        writer.start()
        try:
            assert ready.wait(self.process_timeout), f"the writer wrote nothing within {self.process_timeout}s"
            time.sleep(0.2)  # it is writing, over and over: kill it somewhere in the middle
            os.kill(writer.pid, signal.SIGKILL)  # type: ignore[arg-type]
            writer.join(self.process_timeout)
        finally:
            if writer.is_alive():
                writer.kill()
                writer.join()
        assert writer.exitcode == -signal.SIGKILL, f"the writer died on its own (exit code {writer.exitcode})"
        writer.close()
        keys = ["torn", *(f"torn-{n}" for n in range(_workers.TORN_KEYS))]
        found = store.read_many(keys)
        assert set(found) == set(keys), f"keys written before the kill are missing: {sorted(set(keys) - set(found))}"
        torn = [key for key, value in found.items() if not _workers.is_whole(value)]
        assert not torn, f"the killed writer left part of a value at {torn}: a write must replace a value at once"
