"""Connections: one per thread, all closed by ``close()``, none reused across ``fork()``."""

from __future__ import annotations

import gc
import os
import sqlite3
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from storage_core import StorageError
from storage_local import LocalStorage

from .conftest import MakeStore


def in_thread(fn: Callable[[], object]) -> object:
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn).result()


def test_threads_read_and_write_in_parallel(store: LocalStorage) -> None:
    start = threading.Barrier(8)

    def work(me: int) -> int:
        start.wait()
        for i in range(100):
            store.write(f"t{me}", i)
            assert store.read(f"t{me}") == i
        return store.read(f"t{me}")  # type: ignore[no-any-return]

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(work, range(8))) == [99] * 8


def test_close_releases_every_threads_connection(store: LocalStorage, open_fds: Callable[[], int]) -> None:
    store.write("k", 1)
    barrier = threading.Barrier(5)

    def work() -> None:
        store.read("k")
        barrier.wait()  # five threads alive at once: five connections

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    barrier.wait()
    for thread in threads:
        thread.join()
    assert open_fds() > 0
    store.close()
    assert open_fds() == 0


def test_connections_of_ended_threads_are_closed(store: LocalStorage, open_fds: Callable[[], int]) -> None:
    store.write("k", 1)
    in_thread(lambda: store.read("k"))
    baseline = open_fds()
    for _ in range(20):
        thread = threading.Thread(target=store.read, args=("k",))
        thread.start()
        thread.join()
    assert open_fds() <= baseline  # each new thread's connection replaced the last one's


def test_use_after_close_and_reopen(store: LocalStorage) -> None:
    store.write("k", 1)
    keys = store.keys()
    store.close()
    with pytest.raises(StorageError, match="closed"):
        store.read("k")
    with pytest.raises(StorageError, match="is not open"):
        list(keys)  # a generator made before close() cannot resurrect a connection
    store.initialize()
    assert store.read("k") == 1
    assert in_thread(lambda: store.read("k")) == 1


def test_a_closed_connection_in_use_is_reported(store: LocalStorage) -> None:
    store.write("k", 1)
    store._pool.reader().close()  # as if close() ran in another thread mid-call
    with pytest.raises(StorageError, match=r"was closed while in use \(Cannot operate on a closed database"):
        store.read("k")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_forked_child_must_open_its_own_store(store: LocalStorage, db_path: Path) -> None:
    store.write("k", 1)
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the child reports through its exit code)
        code = 1
        try:
            try:
                store.read("k")
            except StorageError as exc:
                if "opened before this process was forked" in str(exc):
                    code = 2
            if code == 2:
                child = LocalStorage.from_options({"path": str(db_path)})
                with child:
                    child.write("from-child", child.read("k") + 1)
                code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert store.read("from-child") == 2  # and the parent's connections still work


def test_initialize_failure_leaves_nothing_open(tmp_path: Path, open_fds: Callable[[], int]) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(b"not a database" * 100)
    store = LocalStorage.from_options({"path": str(path)})
    with pytest.raises(StorageError):
        store.initialize()
    assert open_fds() == 0


def test_many_stores_on_one_file_see_each_other(make_store: MakeStore) -> None:
    first, second = make_store(), make_store()
    first.write("k", "from first", consistency="eventual")
    assert second.read("k") == "from first"  # EVENTUAL is visible to every reader at once
    second.delete("k")
    assert not first.exists("k")


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.read("k"),
        lambda s: s.exists("k"),
        lambda s: s.write("k", 2),
        lambda s: s.write("k", 2, if_version="0" * 40),
        lambda s: s.update("k", lambda v: v + 1),
        lambda s: s.delete("k"),
        lambda s: list(s.keys()),
        lambda s: s.read_many(["k", "j"]),
        lambda s: s.write_many({"k": 2, "j": 3}),
        lambda s: s.ping(),
    ],
    ids=["read", "exists", "write", "write_if", "update", "delete", "keys", "read_many", "write_many", "ping"],
)
def test_every_primitive_reports_sqlite_failures(store: LocalStorage, call: Callable[[LocalStorage], object]) -> None:
    store.write("k", 1)
    store._pool.reader().close()  # as if close() ran in another thread mid-call
    with pytest.raises(StorageError, match=r"was closed while in use \(Cannot operate on a closed database"):
        call(store)


def test_rollback_of_a_closed_connection_keeps_quiet(db_path: Path) -> None:
    from storage_local.backend import _rollback

    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("BEGIN")
    conn.close()
    _rollback(conn)  # must not replace the error being raised with its own


def test_a_pool_forgets_inherited_connections(store: LocalStorage, open_fds: Callable[[], int]) -> None:
    from storage_local import connections

    store.write("k", 1)
    inherited = len(connections._INHERITED)
    store._pool.open()  # already open: a no-op
    store._pool._forget_inherited()  # what the fork hook does for each live pool in a child
    try:
        assert len(connections._INHERITED) == inherited + 1
        assert open_fds() > 0  # kept open: closing them in a child could upset the parent's locks
        with pytest.raises(StorageError, match="opened before this process was forked"):
            store.read("k")
        store.close()
        store.initialize()  # a child may open the store afresh
        assert store.read("k") == 1
    finally:
        for conn in connections._INHERITED[inherited:]:
            conn.close()
        del connections._INHERITED[inherited:]


def test_the_fork_hook_holds_pools_weakly() -> None:
    from storage_local.connections import _POOLS, ConnectionPool

    pool = ConnectionPool(lambda: sqlite3.connect(":memory:"), "nowhere")
    assert pool in _POOLS
    ref = weakref.ref(pool)
    del pool
    gc.collect()
    assert ref() is None  # one hook for the process, and no store is kept alive by it
