"""Fixtures for the local backend's tests: real SQLite files under ``tmp_path``."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from storage_local import LocalStorage

MakeStore = Callable[..., LocalStorage]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Where the test's database goes; nothing exists there yet."""
    return tmp_path / "state.db"


@pytest.fixture
def make_store(db_path: Path) -> Iterator[MakeStore]:
    """``make_store(path=db_path, **options)``: an initialized store, closed after the test."""
    opened: list[LocalStorage] = []

    def make(path: Path | str | None = None, **options: object) -> LocalStorage:
        store = LocalStorage.from_options({"path": str(path or db_path), **options})
        store.initialize()
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def store(make_store: MakeStore) -> LocalStorage:
    """An initialized store on ``db_path``."""
    return make_store()


@pytest.fixture
def raw(db_path: Path, store: LocalStorage) -> Iterator[sqlite3.Connection]:
    """A plain sqlite3 connection to the store's file, as another program would open it."""
    conn = sqlite3.connect(db_path, isolation_level=None)
    yield conn
    conn.close()


@pytest.fixture
def open_fds(db_path: Path) -> Callable[[], int]:
    """``open_fds()``: how many file descriptors of this process point at the database files."""
    names = {str(db_path), f"{db_path}-wal", f"{db_path}-shm"}

    def count() -> int:
        found = 0
        for fd in os.listdir("/proc/self/fd"):
            try:
                found += os.readlink(f"/proc/self/fd/{fd}") in names
            except OSError:  # the fd of listdir itself, closed by now
                continue
        return found

    return count
