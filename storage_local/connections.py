"""One SQLite connection per thread, all tracked so ``close()`` closes every one.

A ``sqlite3.Connection`` must not run two statements at once, and a shared one behind
a lock would serialize readers that WAL lets run in parallel. So each thread gets its
own, found through a ``threading.local`` (one attribute lookup on the hot path).
Connections of threads that have ended are closed when the next one is opened.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import weakref
from collections.abc import Callable

from storage_core.backend import Consistency, StorageError
from storage_local.sql import SYNC

__all__ = ["ConnectionPool"]

# Connections inherited through fork(): SQLite forbids using them in the child, and
# closing them there could disturb the parent's locks, so the child keeps them unused.
_INHERITED: list[sqlite3.Connection] = []
# Every live pool, for the one fork hook below (a hook per pool could never be removed).
_POOLS: weakref.WeakSet[ConnectionPool] = weakref.WeakSet()


class _Slot(threading.local):
    conn: sqlite3.Connection | None = None
    level: Consistency | None = None  # the synchronous level set on conn


class ConnectionPool:
    """Thread-local connections made by *connect*, once ``open()``; a write sets its sync level only on change."""

    def __init__(self, connect: Callable[[], sqlite3.Connection], where: str) -> None:
        self._connect = connect
        self._where = where
        self._slot = _Slot()
        self._lock = threading.Lock()
        self._owned: list[tuple[threading.Thread, sqlite3.Connection]] | None = None  # None: closed
        self._forked = False
        _POOLS.add(self)

    def open(self) -> None:
        """Allow connections again, each thread starting afresh."""
        with self._lock:
            if self._owned is None:
                self._owned = []
                self._forked = False

    def reader(self) -> sqlite3.Connection:
        """This thread's connection."""
        conn = self._slot.conn
        return conn if conn is not None else self._add()

    def writer(self, level: Consistency) -> sqlite3.Connection:
        """This thread's connection, synced per *level* on commit.

        Tracked so the ``PRAGMA`` runs only when the level changes: EVENTUAL then costs
        nothing more than STRONG.
        """
        slot = self._slot
        conn = slot.conn
        if conn is None:
            conn = self._add()
        if slot.level is not level:
            conn.execute(SYNC[level])
            slot.level = level
        return conn

    def close(self) -> None:
        """Close every connection; later use raises ``StorageError``."""
        with self._lock:
            owned, self._owned = self._owned, None
            self._slot = _Slot()  # so no thread finds its closed connection again
        for _, conn in owned or ():
            conn.close()

    def _add(self) -> sqlite3.Connection:
        with self._lock:
            if self._owned is None:
                if self._forked:
                    raise StorageError(
                        f"the store {self._where} was opened before this process was forked, and SQLite "
                        "connections cannot cross fork(): open a new store in the child process"
                    )
                raise StorageError(f"the store {self._where} is not open: initialize() it first")
            self._close_orphans()
            conn = self._connect()
            self._owned.append((threading.current_thread(), conn))
            slot = self._slot  # under the lock: close() swaps it
            slot.conn, slot.level = conn, None
        return conn

    def _close_orphans(self) -> None:
        """Close the connections of threads that have ended (caller holds the lock)."""
        assert self._owned is not None
        ended = [pair for pair in self._owned if not pair[0].is_alive()]
        for pair in ended:
            self._owned.remove(pair)
            pair[1].close()

    def _forget_inherited(self) -> None:
        self._lock = threading.Lock()  # another thread may have held it at fork time
        if self._owned:
            _INHERITED.extend(conn for _, conn in self._owned)
        self._owned = None
        self._forked = True
        self._slot = _Slot()


def _after_fork() -> None:
    for pool in list(_POOLS):
        pool._forget_inherited()


os.register_at_fork(after_in_child=_after_fork)
