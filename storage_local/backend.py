"""``LocalStorage``: the embedded default backend, one SQLite file in WAL mode.

What each consistency level buys here:

============  =====================================================================
level         on return from a write
============  =====================================================================
STRONG        committed and synced (``synchronous=FULL``): survives a power cut
EVENTUAL      committed, atomic and visible to every reader and process at once;
              synced at the next checkpoint or STRONG commit, so a power cut (not
              a process crash) may lose the last moments (``synchronous=NORMAL``)
============  =====================================================================

Either way a crash never leaves a torn value: every change is one SQLite transaction.
Compare-and-set runs in a ``BEGIN IMMEDIATE`` transaction, which holds the file's write
lock, so it is exact across threads and processes alike.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, Self
from urllib.parse import quote

from storage_core.backend import Capability, ConnectionFailed, Consistency, Storage, StorageError, content_version
from storage_local import sql
from storage_local.config import LocalConfig, config_from_url
from storage_local.connections import ConnectionPool
from storage_local.coordination import LocalCoordination
from storage_local.files import prepare_database_file, read_only_uri
from storage_local.sqlite_errors import translate

__all__ = ["LocalStorage"]

log = logging.getLogger(__name__)

_READ_MANY_CHUNK = 500  # well under SQLite's smallest default variable limit (999)
_FIRST_PAGE = 64  # small, so keys() answers fast; pages double up to _LAST_PAGE
_LAST_PAGE = 2048
_PURGE_EVERY = 1024  # writes between two purges of expired rows
_PURGE_LIMIT = 1024  # rows one purge deletes at most, so it never holds the lock long
_MAX_CHAR = "\U0010ffff"


class LocalStorage(LocalCoordination, Storage):
    """Key-value store in one SQLite file, shared by the threads and processes of a host.

    Each thread uses its own connection; every process opening the same file sees the
    same data. Expired keys are absent to every call and purged lazily. Leases,
    transactions and the change feed: see :mod:`storage_local.coordination`.
    """

    name: ClassVar[str] = "local"
    url_schemes: ClassVar[tuple[str, ...]] = ("local",)
    # write_many is one transaction: all items or none.
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {
            Capability.ATOMIC_WRITE_MANY,
            Capability.READ_TTL,
            Capability.ORDERED_KEYS,
            Capability.LEASES,
            Capability.TRANSACTIONS,
            Capability.CHANGE_FEED,
        }
    )

    def __init__(self, config: LocalConfig | None = None) -> None:
        super().__init__()
        self._config = config if config is not None else LocalConfig()
        # Resolved now, so a later chdir() cannot move the store.
        self._path = os.path.abspath(os.path.expanduser(self._config.path))
        # mode=rw: SQLite never creates the file itself, only prepare_database_file does.
        self._uri = f"file:{quote(self._path)}?mode=rw"  # chosen again by _connect
        self._pool = ConnectionPool(self._open_connection, f"local:{self._path}")
        self._writes = 0

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Self:
        """Build from the ``storage.local`` section; see :class:`LocalConfig`."""
        return cls(LocalConfig.from_options(options))

    @classmethod
    def from_url(cls, url: str) -> Self:
        """Build from ``local:///absolute/path/state.db`` (``?timeout=`` may follow)."""
        return cls(config_from_url(url))

    @property
    def config(self) -> LocalConfig:
        """The options this store was built with."""
        return self._config

    @property
    def path(self) -> str:
        """The absolute path of the database file."""
        return self._path

    def _describe(self) -> str:
        return f"local:{self._path}"

    def _failure(self, exc: sqlite3.Error) -> StorageError:
        return translate(exc, self._path, self._config.timeout, read_only=self.read_only)

    # -- lifecycle ----------------------------------------------------------------------

    def _open_connection(self) -> sqlite3.Connection:
        return sqlite3.connect(
            self._uri, timeout=self._config.timeout, isolation_level=None, check_same_thread=False, uri=True
        )

    def _connect(self) -> None:
        if self.read_only:
            self._uri = read_only_uri(self._path)
        else:
            self._uri = f"file:{quote(self._path)}?mode=rw"
            prepare_database_file(self._path)
        self._pool.open()
        try:
            if not self.read_only:
                self._prepare_schema(self._pool.reader())
        except BaseException as exc:
            self._pool.close()
            if isinstance(exc, sqlite3.Error):
                raise self._failure(exc) from exc
            raise

    def _prepare_schema(self, conn: sqlite3.Connection) -> None:
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        if mode != "wal":
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode != "wal":
                raise ConnectionFailed(
                    f"SQLite cannot use WAL mode for {self._path} (it stays in {mode!r} mode): "
                    "put the database on a local filesystem"
                )
        for statement in sql.SCHEMA:
            conn.execute(statement)
        self._coordination_tables = False
        if self._change_feed:  # before the first write, which logs its change
            self._create_coordination_tables()
        self._purge(_PURGE_LIMIT * 16)

    def _close(self) -> None:
        self._pool.close()

    def _ping(self) -> None:
        try:
            row = self._pool.reader().execute(sql.PING, (sql.TABLE,)).fetchone()
        except sqlite3.Error as exc:
            raise self._failure(exc) from exc
        if row is None:
            raise ConnectionFailed(
                f"the database {self._path} has no {sql.TABLE} table (was it replaced while open?): "
                "close and initialize() the store again"
            )

    # -- single keys --------------------------------------------------------------------

    def _read(self, key: str) -> bytes | None:
        try:
            row = self._pool.reader().execute(sql.READ, (key,)).fetchone()
        except sqlite3.Error as exc:
            raise self._failure(exc) from exc
        if row is None or (row[1] is not None and row[1] <= time.time()):
            return None
        data: bytes = row[0]
        return data

    def _exists(self, key: str) -> bool:
        try:
            row = self._pool.reader().execute(sql.EXISTS, (key,)).fetchone()
        except sqlite3.Error as exc:
            raise self._failure(exc) from exc
        return row is not None and (row[0] is None or row[0] > time.time())

    def _write(self, key: str, data: bytes, ttl: float | None, consistency: Consistency) -> None:
        if self._change_feed:  # the write and its change in one transaction
            self._write_many([(key, data)], ttl, consistency)
            return
        expires = None if ttl is None else time.time() + ttl
        try:
            self._pool.writer(consistency).execute(sql.UPSERT, (key, expires, data))
        except sqlite3.Error as exc:
            raise self._failure(exc) from exc
        self._count_writes(1)

    def _write_if(
        self, key: str, data: bytes, expected: str | None, ttl: float | None, consistency: Consistency
    ) -> bool:
        def compare_and_set(conn: sqlite3.Connection) -> bool:
            row = conn.execute(sql.READ, (key,)).fetchone()
            now = time.time()
            if row is None or (row[1] is not None and row[1] <= now):
                matches = expected is None
            else:
                matches = expected is not None and content_version(row[0]) == expected
            if matches:
                conn.execute(sql.UPSERT, (key, None if ttl is None else now + ttl, data))
                if self._change_feed:
                    self._log_changes(conn, [(key, data)], ())
            return matches

        if not self._in_transaction(consistency, compare_and_set):
            return False
        self._count_writes(1)
        self._committed()
        return True

    def _in_transaction(self, consistency: Consistency, body: Callable[[sqlite3.Connection], bool]) -> bool:
        """Run *body* holding the write lock; commit if it returns True, else roll back.

        ``BEGIN IMMEDIATE`` takes the lock up front, so nobody writes between what *body*
        reads and what it writes, in this process or another.
        """
        try:
            conn = self._pool.writer(consistency)
            conn.execute("BEGIN IMMEDIATE")
            try:
                keep = body(conn)
                conn.execute("COMMIT" if keep else "ROLLBACK")
            except BaseException:
                _rollback(conn)
                raise
        except sqlite3.Error as exc:
            raise self._failure(exc) from exc
        return keep

    def _delete(self, key: str, consistency: Consistency) -> bool:
        if self._change_feed:
            return self._transact({}, (), [key], None, None, consistency).deleted > 0
        try:
            rows = self._pool.writer(consistency).execute(sql.DELETE, (key,)).fetchall()
        except sqlite3.Error as exc:
            raise self._failure(exc) from exc
        return bool(rows) and (rows[0][0] is None or rows[0][0] > time.time())

    # -- many keys ----------------------------------------------------------------------

    def _iter_keys(self, prefix: str) -> Iterator[str]:
        upper = _upper_bound(prefix)
        bounds: tuple[str, ...] = (prefix,) if upper is None else (prefix, upper)
        statement = sql.keys_page(first=True, bounded=upper is not None)
        size = _FIRST_PAGE
        while True:
            # One short statement per page: no cursor stays open across a yield to
            # block a checkpoint, and memory holds one page, whatever the table's size.
            try:
                rows = self._pool.reader().execute(statement, (*bounds, time.time(), size)).fetchall()
            except sqlite3.Error as exc:
                raise self._failure(exc) from exc
            for (key,) in rows:
                yield key
            if len(rows) < size:
                return
            bounds = (rows[-1][0], *bounds[1:])
            statement = sql.keys_page(first=False, bounded=upper is not None)
            size = min(size * 2, _LAST_PAGE)

    def _read_many(self, keys: Sequence[str]) -> Sequence[bytes | None]:
        found = self._live_rows(keys)
        return [row[0] if (row := found.get(key)) is not None else None for key in keys]

    def _live_rows(self, keys: Sequence[str]) -> dict[str, tuple[bytes, float | None]]:
        """``key -> (value, expires_at)`` for the unexpired keys among *keys*, from one snapshot."""
        found: dict[str, tuple[bytes, float | None]] = {}
        now = time.time()
        chunks = [keys[i : i + _READ_MANY_CHUNK] for i in range(0, len(keys), _READ_MANY_CHUNK)]
        try:
            conn = self._pool.reader()
            if len(chunks) > 1:
                conn.execute("BEGIN")  # one snapshot across the chunks
            try:
                for chunk in chunks:
                    for key, data, expires in conn.execute(sql.read_many(len(chunk)), chunk):
                        if expires is None or expires > now:
                            found[key] = (data, expires)
            finally:
                _rollback(conn)
        except sqlite3.Error as exc:
            raise self._failure(exc) from exc
        return found

    def _write_many(self, items: Sequence[tuple[str, bytes]], ttl: float | None, consistency: Consistency) -> None:
        expires = None if ttl is None else time.time() + ttl

        def upsert_all(conn: sqlite3.Connection) -> bool:
            conn.executemany(sql.UPSERT, [(key, expires, data) for key, data in items])
            if self._change_feed:
                self._log_changes(conn, items, ())
            return True

        self._in_transaction(consistency, upsert_all)
        self._count_writes(len(items))
        self._committed()

    # -- expiry -------------------------------------------------------------------------

    def _read_with_ttl(self, key: str) -> tuple[bytes, float | None] | None:
        try:
            row = self._pool.reader().execute(sql.READ, (key,)).fetchone()
        except sqlite3.Error as exc:
            raise self._failure(exc) from exc
        return None if row is None else _remaining(row[0], row[1], time.time())

    def _read_many_with_ttl(self, keys: Sequence[str]) -> Sequence[tuple[bytes, float | None] | None]:
        found = self._live_rows(keys)  # one SELECT per 500 keys, all in one snapshot
        now = time.time()
        return [None if (row := found.get(key)) is None else _remaining(row[0], row[1], now) for key in keys]

    def _count_writes(self, count: int) -> None:
        """Purge expired rows every ``_PURGE_EVERY`` writes (a racy count is fine: it is a hint)."""
        before = self._writes
        self._writes = before + count
        if before // _PURGE_EVERY != (before + count) // _PURGE_EVERY:
            self._purge(_PURGE_LIMIT)

    def _purge(self, limit: int) -> None:
        """Delete up to *limit* expired rows, if the write lock is free right now.

        Expired rows are already invisible, so this never waits for another process's
        lock: neither ``initialize()`` nor a write that has already committed should
        stall (or fail) on housekeeping.
        """
        conn = self._pool.reader()
        try:
            conn.execute("PRAGMA busy_timeout = 0")
            try:
                conn.execute(sql.PURGE, (time.time(), limit))
            finally:
                conn.execute(f"PRAGMA busy_timeout = {int(self._config.timeout * 1000)}")
        except sqlite3.Error as exc:  # locked, say: try again after the next batch of writes
            log.debug("purging expired keys from %s skipped: %s", self._path, exc)


def _remaining(data: bytes, expires_at: float | None, now: float) -> tuple[bytes, float | None] | None:
    """A row as (value, seconds left), or None once expired."""
    if expires_at is None:
        return data, None
    if expires_at <= now:
        return None
    return data, expires_at - now


def _rollback(conn: sqlite3.Connection) -> None:
    """End the open transaction, if any, keeping the error that got us here."""
    try:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
    except sqlite3.Error as exc:  # closed, say: SQLite ends the transaction itself then
        log.debug("rollback failed: %s", exc)


def _upper_bound(prefix: str) -> str | None:
    """The least string above every string that starts with *prefix*; None when unbounded.

    SQLite compares TEXT as UTF-8 bytes, which orders like code points, so the bound is
    *prefix* with its last code point raised by one, once trailing U+10FFFF are dropped
    (they have no successor: a prefix of only those, or an empty one, has no bound).
    """
    stem = prefix.rstrip(_MAX_CHAR)
    if not stem:
        return None
    after = ord(stem[-1]) + 1
    if after == 0xD800:  # surrogates cannot be encoded: the next storable code point is U+E000
        after = 0xE000
    return stem[:-1] + chr(after)
