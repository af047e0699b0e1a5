"""``storage export`` and ``storage import``: JSON Lines out, checked JSON Lines in, exact round trips."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import Result, storage

from storage_core import Storage, open_storage
from storage_core.cli import main

VALUES: dict[str, Any] = {
    "plain": {"state": "idle", "steps": [1, 2.5, None, True, False]},
    "unicode:ключ 🗝": "vàlue ✓",
    "line\nbreak": "a key with a newline",
    "big-ints": [2**63 - 1, -(2**63), 2**64 - 1],
    "float": 0.1,
    "empty": {},
    "string": "",
    "deep": [[[[{"a": [[]]}]]]],
}


@pytest.fixture
def source(tmp_path: Path) -> Iterator[Storage]:
    with open_storage(f"local://{tmp_path / 'source.db'}") as store:
        store.write_many(VALUES)
        store.write("expiring", {"left": "a while"}, ttl=600)
        store.write("other:kept", 1)
        yield store


def url_of(store: Storage) -> str:
    return f"local://{store.path}"  # type: ignore[attr-defined]


def records(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def test_a_round_trip_reproduces_the_store_exactly(source: Storage, tmp_path: Path) -> None:
    backup = tmp_path / "backup.jsonl"
    exported = storage("-c", url_of(source), "export", "-o", str(backup), cwd=tmp_path)
    assert (exported.code, exported.out, exported.notes) == (0, "", [f"storage: exported 10 keys to {backup}"])
    target = f"local://{tmp_path / 'target.db'}"
    imported = storage("-c", target, "import", str(backup), cwd=tmp_path)
    assert (imported.code, imported.notes) == (0, ["storage: imported 10 keys, skipped 0 malformed lines"])
    with open_storage(target) as copy:
        keys = sorted(source.keys())
        assert sorted(copy.keys()) == keys
        assert copy.read_many(keys) == source.read_many(keys)
        assert copy.ttl("plain") is None
        left = copy.ttl("expiring")
        assert left is not None
        assert 590 < left <= 600
    again = storage("-c", target, "export", cwd=tmp_path)
    without_ttl = [{**record, "ttl": record["ttl"] is None} for record in records(again.out)]
    assert without_ttl == [{**record, "ttl": record["ttl"] is None} for record in records(backup.read_text())]


def test_export_writes_one_record_per_key_in_key_order(source: Storage, tmp_path: Path) -> None:
    result = storage("-c", url_of(source), "export", cwd=tmp_path)
    assert result.code == 0
    lines = records(result.out)
    assert [line["key"] for line in lines] == sorted(source.keys())
    assert all(set(line) == {"key", "value", "ttl"} for line in lines)
    by_key = {line["key"]: line for line in lines}
    assert by_key["plain"] == {"key": "plain", "value": VALUES["plain"], "ttl": None}
    assert 590 < by_key["expiring"]["ttl"] <= 600
    assert result.notes == ["storage: exported 10 keys"]  # stdout holds only the data


def test_export_takes_a_prefix(source: Storage, tmp_path: Path) -> None:
    result = storage("-c", url_of(source), "export", "other:", cwd=tmp_path)
    assert records(result.out) == [{"key": "other:kept", "value": 1, "ttl": None}]


def test_export_leaves_out_a_key_that_expires_meanwhile(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    url = f"local://{tmp_path / 'x.db'}"
    with open_storage(url) as store:
        store.write_many({"a": 1, "b": 2})
    real = Storage.read_many_with_ttl

    def one_expired(self: Storage, keys: Any) -> dict[str, tuple[Any, float | None]]:
        found = real(self, keys)
        del found["a"]
        return found

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Storage, "read_many_with_ttl", one_expired)
        assert main(["-c", url, "export"]) == 0
    captured = capsysbinary.readouterr()
    assert records(captured.out.decode()) == [{"key": "b", "value": 2, "ttl": None}]
    assert captured.err == b"storage: exported 1 keys\n"


def test_export_reads_in_bounded_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"local://{tmp_path / 'many.db'}"
    with open_storage(url) as store:
        store.write_many({f"k{i:05}": i for i in range(1234)})
    sizes: list[int] = []
    real = Storage.read_many_with_ttl

    def counting(self: Storage, keys: Any) -> dict[str, tuple[Any, float | None]]:
        sizes.append(len(keys))
        return real(self, keys)

    monkeypatch.setattr(Storage, "read_many_with_ttl", counting)
    assert main(["-c", url, "export", "-o", str(tmp_path / "out.jsonl")]) == 0
    assert sizes == [500, 500, 234]
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 1234


def test_a_failed_export_leaves_the_previous_file_untouched(
    source: Storage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    backup = tmp_path / "backup.jsonl"
    backup.write_text("the previous backup\n")

    def broken(self: Storage, keys: Any) -> dict[str, tuple[Any, float | None]]:
        raise OSError("disk on fire")

    monkeypatch.setattr(Storage, "read_many_with_ttl", broken)
    assert main(["-c", url_of(source), "export", "-o", str(backup)]) == 1
    assert "disk on fire" in capsys.readouterr().err
    assert backup.read_text() == "the previous backup\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["backup.jsonl", "source.db", "source.db-shm", "source.db-wal"]


def test_an_export_file_is_owner_only(source: Storage, tmp_path: Path) -> None:
    backup = tmp_path / "backup.jsonl"
    assert storage("-c", url_of(source), "export", "-o", str(backup), cwd=tmp_path).code == 0
    assert backup.stat().st_mode & 0o777 == 0o600


def test_export_into_a_missing_folder_is_one_line(source: Storage, tmp_path: Path) -> None:
    result = storage("-c", url_of(source), "export", "-o", str(tmp_path / "no" / "such.jsonl"), cwd=tmp_path)
    assert result.code == 1
    assert result.notes == [
        f"storage: error: cannot write {tmp_path / 'no' / 'such.jsonl'}: No such file or directory; "
        "check the folder exists and is writable"
    ]


MALFORMED = [
    ("not json", "not valid JSON"),
    ("[1, 2]", 'expected an object {"key": ..., "value": ..., "ttl": ...}, got a JSON array'),
    ("null", "got a JSON null"),
    ('{"key": "a", "valeu": 1}', "unknown field 'valeu' (did you mean 'value'?)"),
    ('{"value": 1}', "the field 'key' is missing"),
    ('{"key": "a"}', "the field 'value' is missing"),
    ('{"key": "", "value": 1}', "keys must be non-empty"),
    ('{"key": 7, "value": 1}', "keys must be str, got int"),
    ('{"key": "a", "value": 1, "ttl": -1}', "ttl must be a number of seconds above 0"),
    ('{"key": "a", "value": 1, "ttl": "soon"}', "ttl must be a number of seconds above 0"),
    ('{"key": "a", "value": 1, "ttl": true}', "ttl must be a number of seconds above 0"),
    ('{"key": "a", "value": 123456789012345678901234}', "does not fit in 64 bits"),
]


@pytest.mark.parametrize(("line", "problem"), MALFORMED, ids=[problem for _, problem in MALFORMED])
def test_a_malformed_line_is_skipped_with_its_number_and_what_is_wrong(tmp_path: Path, line: str, problem: str) -> None:
    target = f"local://{tmp_path / 'target.db'}"
    text = f'{{"key": "before", "value": 1, "ttl": null}}\n{line}\n{{"key": "after", "value": 2}}\n'
    result = storage("-c", target, "import", "-", stdin=text, cwd=tmp_path)
    assert result.code == 1
    assert len(result.notes) == 2, result.err
    assert result.notes[0].startswith("storage: stdin, line 2: skipped: ")
    assert problem in result.notes[0]
    assert result.notes[1] == "storage: imported 2 keys, skipped 1 malformed lines"
    with open_storage(target) as store:
        assert sorted(store.keys()) == ["after", "before"]  # nothing of the bad line


def test_import_names_the_file_and_skips_blank_lines(tmp_path: Path) -> None:
    dump = tmp_path / "dump.jsonl"
    dump.write_text('\n{"key": "a", "value": 1, "ttl": 30}\n  \n{"key": "b", "value": [}\n\n')
    result = storage("-c", f"local://{tmp_path / 't.db'}", "import", str(dump), cwd=tmp_path)
    assert result.code == 1
    assert result.notes[0].startswith(f"storage: {dump}, line 4: skipped: not valid JSON")
    assert result.notes[1] == "storage: imported 1 keys, skipped 1 malformed lines"


def test_the_last_line_for_a_key_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lines = [f'{{"key": "k{i % 3}", "value": {i}, "ttl": {"null" if i % 2 else 60}}}' for i in range(1001)]
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO("\n".join(lines).encode())))
    url = f"local://{tmp_path / 't.db'}"
    assert main(["-c", url, "import"]) == 0
    with open_storage(url) as store:
        assert store.read_many(["k0", "k1", "k2"]) == {"k0": 999, "k1": 1000, "k2": 998}
        assert store.ttl("k0") is None
        assert store.ttl("k1") is not None


def test_import_of_a_missing_file_is_one_line(tmp_path: Path) -> None:
    result = storage("import", "nope.jsonl", cwd=tmp_path, env={"XDG_STATE_HOME": str(tmp_path)})
    assert (result.code, result.notes) == (1, ["storage: error: cannot read nope.jsonl: No such file or directory"])


def test_import_of_nothing_imports_nothing(tmp_path: Path) -> None:
    result: Result = storage("-c", f"local://{tmp_path / 't.db'}", "import", stdin="", cwd=tmp_path)
    assert (result.code, result.notes) == (0, ["storage: imported 0 keys, skipped 0 malformed lines"])
