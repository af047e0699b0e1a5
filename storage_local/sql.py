"""Every SQL statement the backend runs, as constants so SQLite's statement cache hits.

One table, clustered on the key (``WITHOUT ROWID``: a lookup is one B-tree descent).
``expires_at`` comes before ``value`` so checking an expiry never reads a large value.
Table and index names are spelled out in each statement (no string building) so what
runs is what you read.
"""

from __future__ import annotations

from functools import cache

from storage_core.backend import Consistency

__all__ = [
    "DELETE",
    "EXISTS",
    "PING",
    "PURGE",
    "READ",
    "SCHEMA",
    "SYNC",
    "TABLE",
    "UPSERT",
    "keys_page",
    "read_many",
]

TABLE = "storage_kv"

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS storage_kv ("
    " key TEXT PRIMARY KEY NOT NULL,"
    " expires_at REAL,"  # wall-clock seconds since the epoch; NULL: never
    " value BLOB NOT NULL"
    ") WITHOUT ROWID",
    # Partial: only keys with a ttl are indexed, so plain writes pay nothing for it.
    "CREATE INDEX IF NOT EXISTS storage_kv_expires_at ON storage_kv (expires_at) WHERE expires_at IS NOT NULL",
)

PING = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
READ = "SELECT value, expires_at FROM storage_kv WHERE key = ?"
EXISTS = "SELECT expires_at FROM storage_kv WHERE key = ?"
UPSERT = (
    "INSERT INTO storage_kv (key, expires_at, value) VALUES (?, ?, ?) "
    "ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at, value = excluded.value"
)
DELETE = "DELETE FROM storage_kv WHERE key = ? RETURNING expires_at"
# Bounded, so a purge never holds the write lock for long.
PURGE = "DELETE FROM storage_kv WHERE key IN (SELECT key FROM storage_kv WHERE expires_at <= ? LIMIT ?)"
# FULL syncs the WAL on every commit (durable on return); NORMAL syncs only at
# checkpoints: a commit is atomic and visible at once, and may be lost in a power cut.
SYNC = {Consistency.STRONG: "PRAGMA synchronous = FULL", Consistency.EVENTUAL: "PRAGMA synchronous = NORMAL"}

_KEYS_PAGES = {
    # (first page, bounded above): lower bound, [upper bound,] now, limit
    (True, True): "SELECT key FROM storage_kv WHERE key >= ? AND key < ? "
    "AND (expires_at IS NULL OR expires_at > ?) ORDER BY key LIMIT ?",
    (True, False): "SELECT key FROM storage_kv WHERE key >= ? "
    "AND (expires_at IS NULL OR expires_at > ?) ORDER BY key LIMIT ?",
    (False, True): "SELECT key FROM storage_kv WHERE key > ? AND key < ? "
    "AND (expires_at IS NULL OR expires_at > ?) ORDER BY key LIMIT ?",
    (False, False): "SELECT key FROM storage_kv WHERE key > ? "
    "AND (expires_at IS NULL OR expires_at > ?) ORDER BY key LIMIT ?",
}


@cache
def read_many(count: int) -> str:
    """``SELECT`` of *count* keys at once (callers keep *count* under SQLite's variable limit)."""
    marks = ", ".join("?" * count)
    return f"SELECT key, value, expires_at FROM storage_kv WHERE key IN ({marks})"  # noqa: S608 (only "?"s)


def keys_page(*, first: bool, bounded: bool) -> str:
    """One page of live keys in key order, from the prefix or after the previous page's last key.

    A range on the primary key, never ``LIKE``: exact for any character, and the scan
    stops at the end of the prefix's range instead of reading the rest of the table.
    """
    return _KEYS_PAGES[first, bounded]
