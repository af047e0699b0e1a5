"""The SQL of leases, transactions and the change feed: tables beside ``storage_kv``.

``storage_leases`` keeps one row per lease name ever used, so the token counter never
goes back (a release or an expiry only clears ``expires_at``). ``storage_changes`` is the
feed: ``AUTOINCREMENT`` makes every ``seq`` higher than any before, deleted rows
included, and rows of committed transactions are contiguous, so a gap after a cursor
means pruned history.
"""

from __future__ import annotations

__all__ = [
    "ACQUIRE",
    "CHANGES_AFTER",
    "FEED_HEAD",
    "FENCED_UPSERT",
    "LEASE_CURRENT",
    "LOG_CHANGE",
    "PRUNE",
    "RELEASE",
    "RENEW",
    "SCHEMA",
    "STORE_ID",
    "STORE_ID_INIT",
]

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS storage_meta (name TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS storage_leases ("
    " name TEXT PRIMARY KEY NOT NULL,"
    " token INTEGER NOT NULL,"  # the last token issued for this name
    " expires_at REAL,"  # the host's monotonic clock; NULL: released
    " boot TEXT NOT NULL"  # the boot whose monotonic clock expires_at is in
    ") WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS storage_changes ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " key TEXT NOT NULL,"
    " kind TEXT NOT NULL,"  # 'put' or 'delete'
    " version TEXT"  # content version of a put; NULL for a delete
    ")",
)

STORE_ID_INIT = "INSERT OR IGNORE INTO storage_meta (name, value) VALUES ('store_id', ?)"
STORE_ID = "SELECT value FROM storage_meta WHERE name = 'store_id'"

# One statement each, so each is atomic in autocommit mode: name, ttl-deadline, boot, now.
ACQUIRE = (
    "INSERT INTO storage_leases (name, token, expires_at, boot) VALUES (?1, 1, ?2, ?3) "
    "ON CONFLICT (name) DO UPDATE SET token = token + 1, expires_at = excluded.expires_at, boot = excluded.boot "
    "WHERE expires_at IS NULL OR boot IS NOT excluded.boot OR expires_at <= ?4 "
    "RETURNING token"
)
# name, token, boot, now [, new deadline]
_CURRENT = "name = ?1 AND token = ?2 AND boot = ?3 AND expires_at > ?4"
LEASE_CURRENT = f"SELECT 1 FROM storage_leases WHERE {_CURRENT}"  # noqa: S608 (constants only)
RENEW = f"UPDATE storage_leases SET expires_at = ?5 WHERE {_CURRENT} RETURNING expires_at"  # noqa: S608
RELEASE = f"UPDATE storage_leases SET expires_at = NULL WHERE {_CURRENT} RETURNING token"  # noqa: S608

# A fenced write of one key as one statement: atomic in autocommit mode, and as cheap as a
# plain write. Writes no row (rowcount 0) when the lease is not current.
FENCED_UPSERT = (
    "INSERT INTO storage_kv (key, expires_at, value) SELECT ?1, ?2, ?3 "
    "WHERE EXISTS (SELECT 1 FROM storage_leases WHERE name = ?4 AND token = ?5 AND boot = ?6 AND expires_at > ?7) "
    "ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at, value = excluded.value"
)
LOG_CHANGE = "INSERT INTO storage_changes (key, kind, version) VALUES (?, ?, ?)"
FEED_HEAD = "SELECT seq FROM sqlite_sequence WHERE name = 'storage_changes'"
CHANGES_AFTER = "SELECT seq, key, kind, version FROM storage_changes WHERE seq > ? ORDER BY seq LIMIT ?"
# Keeps the newest ? changes (never all: retention is at least 1).
PRUNE = "DELETE FROM storage_changes WHERE seq <= (SELECT seq FROM sqlite_sequence WHERE name = 'storage_changes') - ?"
