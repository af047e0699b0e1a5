"""Files on disk: owner-only modes whatever the umask, and clear errors for unusable paths."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage_core import ConfigError, ConnectionFailed, StorageError, open_storage
from storage_local import LocalStorage

from .conftest import MakeStore


@pytest.fixture(params=[0o000, 0o022, 0o077], ids=["umask000", "umask022", "umask077"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def mode(path: Path) -> int:
    return os.stat(path).st_mode & 0o777


def listing(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_new_files_and_folders_are_owner_only(tmp_path: Path, umask: int, make_store: MakeStore) -> None:
    db = tmp_path / "new" / "deeper" / "state.db"
    store = make_store(db)
    store.write("k", {"v": 1})  # the -wal file now holds a frame
    for name in ("state.db", "state.db-wal", "state.db-shm"):
        assert mode(db.parent / name) == 0o600, name
    assert mode(tmp_path / "new") == 0o700
    assert mode(tmp_path / "new" / "deeper") == 0o700


def test_an_existing_folder_keeps_its_mode(tmp_path: Path, make_store: MakeStore) -> None:
    (tmp_path / "shared").mkdir()
    os.chmod(tmp_path / "shared", 0o750)  # noqa: S103 - an operator opened it up on purpose
    make_store(tmp_path / "shared" / "state.db").write("k", 1)
    assert mode(tmp_path / "shared") == 0o750
    assert mode(tmp_path / "shared" / "state.db") == 0o600


def test_a_key_is_data_never_a_path(tmp_path: Path, store: LocalStorage) -> None:
    before = listing(tmp_path)
    hostile = ["../../etc/passwd", "/etc/passwd", "..", "a/../../b", "C:\\x", "~root", "%2e%2e/x", "\x00x", "*"]
    for key in hostile:
        store.write(key, {"key": key})
    assert {k: store.read(k) for k in hostile} == {k: {"key": k} for k in hostile}
    assert sorted(store.keys()) == sorted(hostile)
    assert listing(tmp_path) == before  # no file appeared, in the folder or above it
    assert listing(tmp_path) <= {"state.db", "state.db-wal", "state.db-shm"}


@pytest.mark.parametrize("below", ["state.db", "sub/state.db"])
def test_path_under_a_regular_file_says_what_to_do(tmp_path: Path, below: str) -> None:
    # Like /etc/hostname/state.db: fails for root too, where a chmod would not.
    (tmp_path / "plain").write_text("not a folder")
    store = LocalStorage.from_options({"path": str(tmp_path / "plain" / below)})
    with pytest.raises(ConnectionFailed) as caught:
        store.initialize()
    assert str(caught.value) == (
        f"cannot create the folder {tmp_path}/plain for the database {tmp_path}/plain/{below}: "
        "a file of that name is in the way; set storage.local.path to a file in a folder this user can write, "
        "or fix the folder's permissions"
    )
    assert listing(tmp_path) == {"plain"}
    assert (tmp_path / "plain").read_text() == "not a folder"


@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("/proc/self/storage-core-test/state.db", "cannot create the folder /proc/self/storage-core-test for"),
        ("/proc/self/storage-core-test.db", "cannot create the database file /proc/self/storage-core-test.db:"),
    ],
)
def test_path_where_nobody_can_create_files(path: str, says: str) -> None:
    store = LocalStorage.from_options({"path": path})
    with pytest.raises(ConnectionFailed) as caught:
        store.initialize()
    assert says in str(caught.value)
    assert "No such file or directory; set storage.local.path to a file in a folder this user can write" in str(
        caught.value
    )


def test_path_that_is_a_folder_says_what_to_do(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    store = LocalStorage.from_options({"path": str(tmp_path / "data")})
    with pytest.raises(ConnectionFailed) as caught:
        store.initialize()
    assert str(caught.value) == (
        f"the database path {tmp_path}/data is a folder: set storage.local.path to a file inside it, "
        f"such as {tmp_path}/data/state.db"
    )
    assert listing(tmp_path) == {"data"}


def test_a_file_that_is_not_a_database_is_left_alone(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    content = b"These are my notes, not a database. " * 100
    notes.write_bytes(content)
    store = LocalStorage.from_options({"path": str(notes)})
    with pytest.raises(ConnectionFailed) as caught:
        store.initialize()
    assert f"{notes} is not an SQLite database" in str(caught.value)
    assert "set storage.local.path to a new file" in str(caught.value)
    assert notes.read_bytes() == content
    assert listing(tmp_path) == {"notes.txt"}
    with pytest.raises(StorageError, match="not initialized"):
        store.read("k")


def test_an_empty_existing_file_becomes_a_database(tmp_path: Path, make_store: MakeStore) -> None:
    (tmp_path / "empty.db").touch()
    store = make_store(tmp_path / "empty.db")
    store.write("k", 1)
    assert store.read("k") == 1


def test_a_foreign_sqlite_database_gains_only_our_table(tmp_path: Path, make_store: MakeStore) -> None:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE kv (key TEXT, value TEXT)")
        conn.execute("INSERT INTO kv VALUES ('k', 'theirs')")
    conn.close()
    make_store(path).write("k", "ours")
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT value FROM kv").fetchall() == [("theirs",)]
        names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        conn.close()
    assert names == {"kv", "storage_kv"}


def test_corrupt_database_says_restore(tmp_path: Path, make_store: MakeStore) -> None:
    path = tmp_path / "state.db"
    store = make_store(path)
    store.write_many({f"key{i:05}": "x" * 200 for i in range(2000)})
    store.close()
    with open(path, "r+b") as f:  # wreck every page but the header page
        f.seek(4096)
        f.write(b"\xde\xad\xbe\xef" * ((os.path.getsize(path) - 4096) // 4))

    def open_and_list() -> None:
        with LocalStorage.from_options({"path": str(path)}) as wrecked:
            list(wrecked.keys())

    with pytest.raises(StorageError, match=f"the database {path} is corrupt .*restore it from a backup"):
        open_and_list()


def test_bad_config_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        open_storage({"backend": "local", "local": {"path": str(tmp_path / "x.db"), "timeout": "soon"}})
    assert listing(tmp_path) == set()


def test_a_folder_made_meanwhile_by_another_process_is_fine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_store: MakeStore
) -> None:
    real_mkdir = os.mkdir

    def another_process_wins(path: str, mode: int = 0o777) -> None:
        real_mkdir(path, 0o755)  # the other process got there first, with its own mode
        real_mkdir(path, mode)  # ours then finds it made: FileExistsError

    monkeypatch.setattr(os, "mkdir", another_process_wins)
    store = make_store(tmp_path / "racy" / "state.db")
    monkeypatch.undo()
    store.write("k", 1)
    assert store.read("k") == 1
    assert mode(tmp_path / "racy") == 0o755  # not ours to change


def test_a_path_with_uri_characters_is_taken_literally(tmp_path: Path, make_store: MakeStore) -> None:
    folder = tmp_path / "odd ?name#1 %41&mode=ro"
    make_store(folder / "state.db").write("k", 1)
    assert listing(folder) == {"state.db", "state.db-wal", "state.db-shm"}
