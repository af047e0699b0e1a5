"""Creates the database file owner-only before SQLite ever opens it.

SQLite creates a file with ``0644 & ~umask``; we create it ourselves with ``0600``
(fixed with ``fchmod``, so the umask cannot loosen or tighten it), and SQLite gives
the ``-wal`` and ``-shm`` files it creates later the mode of the database file.
Folders we create are ``0700``; folders that already exist are left as they are.
"""

from __future__ import annotations

import os
from urllib.parse import quote

from storage_core.backend import ConnectionFailed

__all__ = ["DIR_MODE", "FILE_MODE", "prepare_database_file", "read_only_uri"]

FILE_MODE = 0o600
DIR_MODE = 0o700
_FIX = "set storage.local.path to a file in a folder this user can write, or fix the folder's permissions"


def prepare_database_file(path: str) -> bool:
    """Make sure *path* can be opened by SQLite; return whether it was created now.

    Raises:
        ConnectionFailed: naming the path, when a folder or the file cannot be created,
            or the path is a folder.
    """
    _make_dirs(os.path.dirname(path), path)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
    except FileExistsError:
        if os.path.isdir(path):
            raise ConnectionFailed(
                f"the database path {path} is a folder: set storage.local.path to a file inside it, "
                f"such as {os.path.join(path, 'state.db')}"
            ) from None
        return False
    except OSError as exc:
        raise ConnectionFailed(f"cannot create the database file {path}: {exc.strerror}; {_FIX}") from exc
    try:
        os.fchmod(fd, FILE_MODE)
        os.fsync(fd)
    finally:
        os.close(fd)
    _sync_dir(os.path.dirname(path))
    return True


def _make_dirs(folder: str, path: str) -> None:
    """Create *folder* and its missing parents, each ``0700``."""
    if not folder or os.path.isdir(folder):
        return
    parent = os.path.dirname(folder)
    _make_dirs(parent, path)  # ends at "/", which exists
    try:
        os.mkdir(folder, DIR_MODE)
    except FileExistsError:
        if os.path.isdir(folder):  # another process made it meanwhile
            return
        raise ConnectionFailed(
            f"cannot create the folder {folder} for the database {path}: a file of that name is in the way; {_FIX}"
        ) from None
    except OSError as exc:
        raise ConnectionFailed(
            f"cannot create the folder {folder} for the database {path}: {exc.strerror}; {_FIX}"
        ) from exc
    os.chmod(folder, DIR_MODE)
    _sync_dir(parent)


def _sync_dir(folder: str) -> None:
    """Make a new directory entry durable, so a STRONG write's file survives a power cut."""
    fd = os.open(folder or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_only_uri(path: str) -> str:
    """The SQLite URI that opens the existing database *path* for reading only; creates nothing.

    ``mode=ro`` refuses every write and never creates the database. A WAL database
    also needs its ``-shm`` (and ``-wal``) files: in a folder this process may write
    SQLite creates them if missing, so a reader beside a live writer stays exact. In a
    folder nobody can write (a read-only mount, ``chattr +i``) no writer can exist
    either, having nowhere to put its ``-wal``: the file is then opened ``immutable``,
    which needs none of them.

    Raises:
        ConnectionFailed: "no store at PATH" when there is no database file there.
    """
    if os.path.isdir(path):
        raise ConnectionFailed(
            f"the database path {path} is a folder, not a store: point storage.local.path at its file"
        )
    if not os.path.isfile(path):
        raise ConnectionFailed(
            f"no store at {path}: a read-only open creates nothing; check storage.local.path "
            "(or open it without read_only to create it)"
        )
    uri = f"file:{quote(path)}?mode=ro"
    folder = os.path.dirname(path) or "."
    if not os.path.exists(f"{path}-wal") and not os.access(folder, os.W_OK):
        uri += "&immutable=1"
    return uri
