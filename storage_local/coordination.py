"""Leases, transactions and the change feed of the local backend, in the same SQLite file.

Leases are judged by the host's monotonic clock (see :mod:`storage_local.clock`), which
every process of the host shares and which wall-clock steps cannot move. Lease changes
commit at STRONG (synced), so a token, once handed out, is never handed out again, even
after a power cut.

A transaction, and every fenced write, is one ``BEGIN IMMEDIATE`` transaction: it holds
the file's write lock from the lease check to the commit, so no other thread or process
writes in between.

With the change feed on, each write appends its changes to ``storage_changes`` in its
own transaction. A watcher in this process is woken by a condition the writer notifies
after its commit; a write from another process is noticed by ``PRAGMA data_version``,
a counter in the shared WAL index that changes when another connection commits: reading
it costs no disk I/O, so a watcher can look every ``_CROSS_PROCESS_POLL`` seconds while it
sleeps, instead of querying the table in a busy loop. Expired keys produce no change.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from storage_core.backend import (
    Consistency,
    CursorExpired,
    Fence,
    InvalidArgument,
    Outcome,
    RawChange,
    StorageError,
    content_version,
)
from storage_local import clock, sql
from storage_local import coordination_sql as csql

if TYPE_CHECKING:
    from storage_local.connections import ConnectionPool

__all__ = ["LocalCoordination", "feed_signal"]

_CROSS_PROCESS_POLL = 0.025  # seconds between two looks at data_version while a watcher waits
_CHANGES_PAGE = 1000
_PRUNE_EVERY = 1024  # logged changes between two prunes of the feed

_SIGNALS: dict[str, _FeedSignal] = {}
_SIGNALS_LOCK = threading.Lock()


class _FeedSignal:
    """Wakes this process's watchers of one database file when a write of this process commits."""

    def __init__(self) -> None:
        self.condition = threading.Condition()
        self.generation = 0

    def notify(self) -> None:
        with self.condition:
            self.generation += 1
            self.condition.notify_all()


def feed_signal(path: str) -> _FeedSignal:
    """The one signal of *path* in this process, shared by every store on that file."""
    with _SIGNALS_LOCK:
        signal = _SIGNALS.get(path)
        if signal is None:
            signal = _SIGNALS[path] = _FeedSignal()
        return signal


class LocalCoordination:
    """The coordination primitives of ``LocalStorage`` (a mixin)."""

    if TYPE_CHECKING:  # what the mixin uses of LocalStorage
        _pool: ConnectionPool
        _path: str
        _change_feed: bool
        _change_retention: int

        def _failure(self, exc: sqlite3.Error) -> StorageError: ...

        def _in_transaction(self, consistency: Consistency, body: Callable[[sqlite3.Connection], bool]) -> bool: ...

        def _count_writes(self, count: int) -> None: ...

    _cached_store_id: str | None = None
    _logged = 0
    _coordination_tables = False  # whether this open store has made sure its tables exist

    def _create_coordination_tables(self) -> None:
        """Create the tables on first use, so a store that never coordinates keeps one table."""
        if not self._coordination_tables:
            try:
                conn = self._pool.reader()
                for statement in csql.SCHEMA:
                    conn.execute(statement)
            except sqlite3.Error as exc:
                raise self._failure(exc) from exc
            self._coordination_tables = True

    # -- leases -------------------------------------------------------------------------

    def _store_id(self) -> str:
        if self._cached_store_id is None:
            self._create_coordination_tables()
            try:
                conn = self._pool.writer(Consistency.STRONG)
                conn.execute(csql.STORE_ID_INIT, (uuid.uuid4().hex,))
                self._cached_store_id = conn.execute(csql.STORE_ID).fetchone()[0]
            except sqlite3.Error as exc:
                raise self._failure(exc) from exc
        return self._cached_store_id

    def _lease_statement(self, statement: str, args: tuple[object, ...]) -> list[tuple[object, ...]]:
        self._create_coordination_tables()
        try:
            # fetchall: the statement must run to its end, which commits it.
            rows: list[tuple[object, ...]] = self._pool.writer(Consistency.STRONG).execute(statement, args).fetchall()
        except sqlite3.Error as exc:
            raise self._failure(exc) from exc
        return rows

    def _acquire_lease(self, name: str, ttl: float) -> tuple[int, float] | None:
        now = clock.now()
        rows = self._lease_statement(csql.ACQUIRE, (name, now + ttl, clock.BOOT_ID, now))
        if not rows:
            return None
        token = rows[0][0]
        assert isinstance(token, int)
        return token, now + ttl

    def _renew_lease(self, name: str, token: int, ttl: float) -> float | None:
        now = clock.now()
        rows = self._lease_statement(csql.RENEW, (name, token, clock.BOOT_ID, now, now + ttl))
        return now + ttl if rows else None

    def _release_lease(self, name: str, token: int) -> bool:
        return bool(self._lease_statement(csql.RELEASE, (name, token, clock.BOOT_ID, clock.now())))

    # -- transactions -------------------------------------------------------------------

    def _transact(  # noqa: PLR0917 - the template's primitive
        self,
        expect: Mapping[str, str | None],
        writes: Sequence[tuple[str, bytes]],
        deletes: Sequence[str],
        ttl: float | None,
        fence: Fence | None,
        consistency: Consistency,
    ) -> Outcome:
        self._create_coordination_tables()
        if fence is not None and len(writes) == 1 and not (expect or deletes or self._change_feed):
            return self._fenced_write(writes[0], ttl, fence, consistency)
        outcome = Outcome()

        def body(conn: sqlite3.Connection) -> bool:
            nonlocal outcome
            if fence is not None:
                current = conn.execute(csql.LEASE_CURRENT, (fence.name, fence.token, clock.BOOT_ID, clock.now()))
                if current.fetchone() is None:
                    outcome = Outcome(lease_lost=True)
                    return False
            now = time.time()
            conflicts = tuple(key for key, version in expect.items() if _version(conn, key, now) != version)
            if conflicts:
                outcome = Outcome(conflicts=conflicts)
                return False
            expires = None if ttl is None else now + ttl
            conn.executemany(sql.UPSERT, [(key, expires, data) for key, data in writes])
            deleted = [key for key in deletes if _deleted_live(conn, key, now)]
            if self._change_feed:
                self._log_changes(conn, writes, deleted)
            outcome = Outcome(deleted=len(deleted))
            return True

        if self._in_transaction(consistency, body):
            self._count_writes(len(writes))
            self._committed()
        return outcome

    def _fenced_write(
        self, item: tuple[str, bytes], ttl: float | None, fence: Fence, consistency: Consistency
    ) -> Outcome:
        """The common fenced write, one key and nothing else, as one statement."""
        key, data = item
        expires = None if ttl is None else time.time() + ttl
        args = (key, expires, data, fence.name, fence.token, clock.BOOT_ID, clock.now())
        try:
            written = self._pool.writer(consistency).execute(csql.FENCED_UPSERT, args).rowcount
        except sqlite3.Error as exc:
            raise self._failure(exc) from exc
        if not written:
            return Outcome(lease_lost=True)
        self._count_writes(1)
        return Outcome()

    # -- the change feed: writing --------------------------------------------------------

    def _log_changes(
        self, conn: sqlite3.Connection, writes: Sequence[tuple[str, bytes]], deletes: Sequence[str]
    ) -> None:
        """Append the changes of the transaction open on *conn*; prune the feed now and then."""
        rows: list[tuple[str, str, str | None]] = [(key, "put", content_version(data)) for key, data in writes]
        rows.extend((key, "delete", None) for key in deletes)
        conn.executemany(csql.LOG_CHANGE, rows)
        before = self._logged
        self._logged = before + len(rows)
        if before // _PRUNE_EVERY != self._logged // _PRUNE_EVERY:
            conn.execute(csql.PRUNE, (self._change_retention,))

    def _committed(self) -> None:
        """Wake this process's watchers after a commit that logged changes."""
        if self._change_feed:
            feed_signal(self._path).notify()

    # -- the change feed: reading --------------------------------------------------------

    def _feed_head(self) -> str:
        self._create_coordination_tables()
        try:
            row = self._pool.reader().execute(csql.FEED_HEAD).fetchone()
        except sqlite3.Error as exc:
            raise self._failure(exc) from exc
        return str(0 if row is None else row[0])

    def _changes(self, prefix: str, after: str, wait: float) -> tuple[Sequence[RawChange], str]:
        seq = _parse_cursor(after)
        self._create_coordination_tables()
        signal = feed_signal(self._path)
        deadline = time.monotonic() + wait
        try:
            conn = self._pool.reader()
            while True:
                generation = signal.generation
                data_version = conn.execute("PRAGMA data_version").fetchone()[0]
                # The head before the rows, each its own snapshot: a commit landing between
                # the two then only adds rows, never makes an empty read look like a gap.
                head = conn.execute(csql.FEED_HEAD).fetchone()
                head_seq = 0 if head is None else head[0]
                rows = conn.execute(csql.CHANGES_AFTER, (seq, _CHANGES_PAGE)).fetchall()
                if rows:
                    if rows[0][0] != seq + 1:
                        raise _expired(after, self._change_retention)
                    found = [RawChange(k, kind, v, str(s)) for s, k, kind, v in rows if k.startswith(prefix)]
                    return found, str(rows[-1][0])
                if seq > head_seq:
                    raise InvalidArgument(
                        f"since={after!r} is ahead of the change feed of {self._path} (it ends at {head_seq}): "
                        "pass a cursor from a Change this store gave out"
                    )
                if seq < head_seq:  # all that came after the cursor was pruned
                    raise _expired(after, self._change_retention)
                if not self._sleep_until_change(conn, signal, generation, data_version, deadline):
                    return (), after
        except sqlite3.Error as exc:
            raise self._failure(exc) from exc

    def _sleep_until_change(
        self, conn: sqlite3.Connection, signal: _FeedSignal, generation: int, data_version: int, deadline: float
    ) -> bool:
        """Wait for a commit of this process (notified) or of another (data_version); False at *deadline*."""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            with signal.condition:
                if signal.generation == generation:
                    signal.condition.wait(min(left, _CROSS_PROCESS_POLL))
                if signal.generation != generation:
                    return True
            if conn.execute("PRAGMA data_version").fetchone()[0] != data_version:
                return True


def _version(conn: sqlite3.Connection, key: str, now: float) -> str | None:
    row = conn.execute(sql.READ, (key,)).fetchone()
    if row is None or (row[1] is not None and row[1] <= now):
        return None
    return content_version(row[0])


def _deleted_live(conn: sqlite3.Connection, key: str, now: float) -> bool:
    rows = conn.execute(sql.DELETE, (key,)).fetchall()
    return bool(rows) and (rows[0][0] is None or rows[0][0] > now)


def _parse_cursor(cursor: str) -> int:
    if not (cursor.isascii() and cursor.isdigit()):
        raise InvalidArgument(
            f"since={cursor!r:.80} is not a change-feed cursor of the local backend: pass the cursor of a "
            "Change from watch() on this store"
        )
    return int(cursor)


def _expired(cursor: str, retention: int) -> CursorExpired:
    return CursorExpired(
        f"the changes after cursor {cursor!r} are no longer kept (the feed keeps the last {retention}): "
        "re-read the keys you follow, then watch() again from now (or raise change_retention)"
    )
