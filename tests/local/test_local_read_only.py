"""Read-only local stores: nothing created, SQLite's read-only mode, and a folder nobody may write."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage_core import ConfigError, ConnectionFailed, ReadOnly, load_config, open_storage
from storage_local import LocalStorage


def tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.fixture
def store_file(tmp_path: Path) -> Path:
    path = tmp_path / "backup" / "state.db"
    with open_storage(f"local://{path}") as store:
        store.write_many({"a": 1, "b": {"c": [2]}})
    return path


@pytest.mark.parametrize("how", ["argument", "config", "url", "environment"])
def test_a_missing_store_is_not_created(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    path = tmp_path / "no" / "such" / "folder" / "state.db"
    config = tmp_path / "agent.yaml"
    config.write_text(f"storage:\n  read_only: ${{RO:-true}}\n  local:\n    path: {path}\n", encoding="utf-8")
    monkeypatch.setenv("RO", "yes")
    sources = {
        "argument": lambda: open_storage({"local": {"path": str(path)}}, read_only=True),
        "config": lambda: open_storage(config),
        "url": lambda: open_storage(f"local://{path}?timeout=1&read_only=true"),
        "environment": lambda: open_storage(load_config(config)),
    }
    with pytest.raises(ConnectionFailed, match=f"^no store at {path}: a read-only open creates nothing"):
        sources[how]()
    assert tree(tmp_path) == ["agent.yaml"]


def test_a_folder_is_not_a_store(tmp_path: Path) -> None:
    (tmp_path / "folder.db").mkdir()
    with pytest.raises(ConnectionFailed, match="is a folder"):
        open_storage(f"local://{tmp_path}/folder.db", read_only=True)


def test_an_existing_store_reads_and_refuses_writes_before_sqlite(store_file: Path) -> None:
    with open_storage(f"local://{store_file}?read_only=true") as store:
        assert isinstance(store, LocalStorage)
        assert store.read_only
        assert store.read_many(["a", "b"]) == {"a": 1, "b": {"c": [2]}}
        with pytest.raises(ReadOnly, match=r"^write\(\) refused: <LocalStorage local:.* read-only> was opened"):
            store.write("a", 2)
        # The backend enforces it too: SQLite's mode=ro refuses a primitive no public method sent.
        with pytest.raises(ReadOnly, match="SQLite refused a write"):
            store._write("a", b"2", None, store.default_consistency)
        with pytest.raises(ReadOnly):
            store._delete("a", store.default_consistency)
    with open_storage(f"local://{store_file}") as writable:
        assert writable.read("a") == 1


def test_read_only_false_in_a_url_or_argument_is_writable(store_file: Path) -> None:
    with open_storage(f"local://{store_file}?read_only=false") as store:
        store.write("a", 5)
    with open_storage(f"local://{store_file}?read_only=true", read_only=False) as store:
        store.write("a", 6)
    with pytest.raises(ConfigError, match=r"read_only.*expected true or false, got 'perhaps'"):
        open_storage(f"local://{store_file}?read_only=perhaps")


def test_a_reader_beside_a_live_writer_sees_its_commits(store_file: Path) -> None:
    with open_storage(f"local://{store_file}") as writer, open_storage(f"local://{store_file}", read_only=True) as r:
        writer.write("a", 10)
        assert r.read("a") == 10
        writer.write("a", 11)
        assert r.read("a") == 11


@pytest.fixture
def frozen_folder(store_file: Path) -> Iterator[Path]:
    """The store's folder made unwritable even for root: ``chattr +i`` (or, not as root, ``chmod``)."""
    folder = store_file.parent
    if os.geteuid() == 0:
        if shutil.which("chattr") is None:
            pytest.skip("running as root without chattr: no way to make a folder read-only for root")
        frozen = subprocess.run(["chattr", "+i", str(folder), str(store_file)], check=False, capture_output=True)
        if frozen.returncode != 0:
            pytest.skip(f"chattr +i does not work on this file system: {frozen.stderr.decode().strip()}")
        try:
            yield folder
        finally:
            subprocess.run(["chattr", "-i", str(folder), str(store_file)], check=True)
    else:
        folder.chmod(0o555)
        store_file.chmod(0o444)
        try:
            yield folder
        finally:
            folder.chmod(0o700)
            store_file.chmod(0o600)


def test_a_store_in_a_folder_nobody_may_write_can_be_inspected(frozen_folder: Path, store_file: Path) -> None:
    # The folder really is read-only for this user:
    with pytest.raises(OSError, match=r"Operation not permitted|Permission denied"):
        (frozen_folder / "probe").touch()
    with pytest.raises(ConnectionFailed):  # and a writable open cannot work there
        open_storage(f"local://{store_file}").close()
    before = tree(frozen_folder)
    with open_storage(f"local://{store_file}", read_only=True) as store:
        assert store.read("a") == 1
        assert sorted(store.keys()) == ["a", "b"]
        with pytest.raises(ReadOnly):
            store.delete("a")
    assert tree(frozen_folder) == before == ["state.db"]


def test_sqlite_itself_cannot_open_that_folder_without_immutable(frozen_folder: Path, store_file: Path) -> None:
    # Why the backend opens it immutable: plain mode=ro needs a -shm file it cannot create there.
    conn = sqlite3.connect(f"file:{store_file}?mode=ro", uri=True)
    try:
        with pytest.raises(sqlite3.OperationalError):
            conn.execute("SELECT count(*) FROM storage_kv").fetchone()
    finally:
        conn.close()
