"""Turns ``sqlite3`` errors into storage-core errors that say what to do."""

from __future__ import annotations

import sqlite3

from storage_core.backend import ConnectionFailed, ReadOnly, StorageError

__all__ = ["translate"]

_BUSY = (
    ConnectionFailed,
    "the database {path} stayed locked by another connection for {timeout:g}s ({exc}): another process "
    "holds a long transaction; retry later, or raise storage.local.timeout",
)
_READ_ONLY = (
    ConnectionFailed,
    "the database {path} is read-only for this process ({exc}): let this user write the file, its -wal and "
    "-shm files and their folder, or set storage.local.path elsewhere",
)
# By SQLite's primary result code (the low byte of the extended code).
_BY_CODE: dict[int, tuple[type[StorageError], str]] = {
    sqlite3.SQLITE_BUSY: _BUSY,
    sqlite3.SQLITE_LOCKED: _BUSY,
    sqlite3.SQLITE_READONLY: _READ_ONLY,
    sqlite3.SQLITE_PERM: _READ_ONLY,
    sqlite3.SQLITE_AUTH: _READ_ONLY,
    sqlite3.SQLITE_NOTADB: (
        ConnectionFailed,
        "{path} is not an SQLite database ({exc}): set storage.local.path to a new file, "
        "or restore the database that belongs there",
    ),
    sqlite3.SQLITE_CANTOPEN: (
        ConnectionFailed,
        "cannot open the database {path} ({exc}): check that the file and its folder exist "
        "and this user can read and write both",
    ),
    sqlite3.SQLITE_FULL: (StorageError, "the disk holding {path} is full ({exc}): nothing was written; free space"),
    sqlite3.SQLITE_CORRUPT: (
        StorageError,
        "the database {path} is corrupt ({exc}): restore it from a backup, or move it away to start afresh",
    ),
    sqlite3.SQLITE_IOERR: (StorageError, "I/O error on the database {path} ({exc}): check the disk and filesystem"),
}


def translate(exc: sqlite3.Error, path: str, timeout: float, *, read_only: bool = False) -> StorageError:
    """The storage-core error for *exc*, raised on the database at *path* (opened *read_only*)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if read_only and code is not None and code & 0xFF == sqlite3.SQLITE_READONLY:
        # SQLite's own refusal, behind the template's: a write no public method sent.
        return ReadOnly(f"the store at {path} was opened read-only, and SQLite refused a write to it ({exc})")
    kind, message = _BY_CODE.get(-1 if code is None else code & 0xFF, (StorageError, "SQLite failed on {path}: {exc}"))
    if isinstance(exc, sqlite3.ProgrammingError) and "closed" in str(exc):
        kind, message = StorageError, "the store at {path} was closed while in use ({exc}): initialize() it again"
    return kind(message.format(path=path, timeout=timeout, exc=exc))
