"""The CLI as an operator uses it: read commands touch nothing, exact JSON, versions and expiries, doctor."""

from __future__ import annotations

import textwrap
from pathlib import Path

import orjson
import pytest
from test_cli import Result, Run, assert_one_error_line

from storage_core import open_storage
from storage_core.cli import main
from storage_local import LocalStorage


@pytest.fixture
def run(in_tmp_dir: Path, capsys: pytest.CaptureFixture[str]) -> Run:
    """Call ``main`` with these arguments; return its exit status and what it printed."""

    def invoke(*argv: str) -> Result:
        capsys.readouterr()
        code = main(list(argv))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return invoke


def tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize("command", [("get", "k"), ("get", "k", "--entry"), ("keys",), ("ttl", "k"), ("export",)])
def test_a_read_command_on_a_missing_store_creates_nothing(run: Run, tmp_path: Path, command: tuple[str, ...]) -> None:
    path = tmp_path / "no" / "such" / "state.db"
    before = tree(tmp_path)
    result = run("-c", f"local://{path}", *command)
    assert_one_error_line(result, f"no store at {path}")
    assert result.out == ""
    assert tree(tmp_path) == before


def test_a_read_command_on_the_missing_embedded_default_creates_nothing(run: Run, in_tmp_dir: Path) -> None:
    result = run("keys")
    assert_one_error_line(result, "no store at ", "storage-core/state.db")
    assert run("put", "k", "1").code == 0  # a write creates it, as before
    assert run("keys").lines == ["k"]


def test_read_commands_never_write(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    url = f"local://{path}"
    run("-c", url, "put", "k", '{"a": 1}')
    with open_storage(url) as store:  # leaves no -wal behind once closed
        store.ping()
    mtime = path.stat().st_mtime_ns
    assert run("-c", url, "get", "k").out == '{"a":1}\n'
    assert run("-c", url, "keys").lines == ["k"]
    assert path.stat().st_mtime_ns == mtime


@pytest.mark.parametrize(
    ("value", "key"),
    [('{"a": 1, "a": 2}', "a"), ('{"x": {"b": 1, "c": 2, "b": 3}}', "b"), ('[1, {"k": 0, "k": 0}]', "k")],
)
def test_put_refuses_a_key_given_twice_naming_it(run: Run, tmp_path: Path, value: str, key: str) -> None:
    url = f"local://{tmp_path / 'state.db'}"
    run("-c", url, "put", "other", "0")
    assert_one_error_line(run("-c", url, "put", "v", value), f"the key {key!r} is given twice in one JSON object")
    assert run("-c", url, "keys").lines == ["other"], "nothing written"


def test_put_accepts_the_same_key_in_different_objects(run: Run, tmp_path: Path) -> None:
    url = f"local://{tmp_path / 'state.db'}"
    assert run("-c", url, "put", "v", '[{"a": 1}, {"a": 2}]').code == 0
    assert run("-c", url, "get", "v").out == '[{"a":1},{"a":2}]\n'


def _entry(result: Result) -> dict[str, object]:
    assert result.code == 0, result
    found: dict[str, object] = orjson.loads(result.out)
    return found


def test_get_entry_prints_value_version_and_ttl(run: Run, tmp_path: Path) -> None:
    url = f"local://{tmp_path / 'state.db'}"
    run("-c", url, "put", "lease", '{"owner": "w1"}', "--ttl", "60")
    run("-c", url, "put", "plain", "[1]")
    lease = _entry(run("-c", url, "get", "lease", "--entry"))
    with open_storage(url) as store:
        assert lease["version"] == store.read_entry("lease").version
    assert lease["value"] == {"owner": "w1"}
    assert isinstance(lease["ttl"], float)
    assert 50 < lease["ttl"] <= 60
    assert _entry(run("-c", url, "get", "plain", "--entry")) == {
        "value": [1],
        "version": _entry(run("-c", url, "get", "plain", "--entry"))["version"],
        "ttl": None,
    }
    assert_one_error_line(run("-c", url, "get", "absent", "--entry"), "key 'absent' not found")


def test_put_if_version_writes_only_over_that_version(run: Run, tmp_path: Path) -> None:
    url = f"local://{tmp_path / 'state.db'}"
    run("-c", url, "put", "k", '{"step": 1}')
    version = str(_entry(run("-c", url, "get", "k", "--entry"))["version"])
    assert run("-c", url, "put", "k", '{"step": 2}', "--if-version", version).code == 0
    stale = run("-c", url, "put", "k", '{"step": 3}', "--if-version", version)
    assert_one_error_line(stale, "key 'k' changed", "read_entry() it again")
    assert run("-c", url, "get", "k").out == '{"step":2}\n'
    assert run("-c", url, "put", "k", "1", "--if-version", "").code == 2


def test_ttl_prints_seconds_left_or_null(run: Run, tmp_path: Path) -> None:
    url = f"local://{tmp_path / 'state.db'}"
    run("-c", url, "put", "beat", "1", "--ttl", "30")
    run("-c", url, "put", "plain", "1")
    left = run("-c", url, "ttl", "beat")
    assert left.code == 0
    assert 25 < float(left.out) <= 30
    assert run("-c", url, "ttl", "plain").out == "null\n"
    assert_one_error_line(run("-c", url, "ttl", "absent"), "key 'absent' not found")


def test_doctor_checks_the_backend_section_in_its_config_step(run: Run, tmp_path: Path) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text("storage:\n  local:\n    pth: state.db\n", encoding="utf-8")
    result = run("-c", str(config), "doctor")
    assert result.code == 1
    assert result.lines[0].startswith("config  FAIL")
    assert len(result.lines) == 1, "nothing opened"
    assert "doctor: config failed:" in result.err
    assert "storage.local: unknown field 'pth' (did you mean 'path'?)" in result.err


def test_doctor_shows_the_resolved_local_path(run: Run, tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    config = etc / "agent.yaml"
    config.write_text(textwrap.dedent("storage:\n  local:\n    path: data/state.db\n"), encoding="utf-8")
    result = run("-c", str(config), "doctor")
    assert result.code == 0, result
    assert result.lines[0].startswith("config  ok")
    assert result.lines[0].endswith(f"-> local:{etc / 'data' / 'state.db'}")


@pytest.mark.parametrize("command", [("get", "k"), ("doctor",)])
def test_a_missing_config_file_gets_the_command_lines_hint(run: Run, command: tuple[str, ...]) -> None:
    result = run("-c", "nowhere.yaml", *command)
    line = result.err.splitlines()[-1]
    assert "nowhere.yaml: config file not found" in line
    assert "pass an existing file with -c/--config (or $STORAGE_CONFIG), or neither" in line


def test_get_entry_on_a_backend_without_expiries_says_so(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"local://{tmp_path / 'state.db'}"
    run("-c", url, "put", "k", "1")
    monkeypatch.setattr(LocalStorage, "capabilities", frozenset())
    result = run("-c", url, "get", "k", "--entry")
    assert set(_entry(result)) == {"value", "version"}
    assert "the local backend cannot report expiries: no ttl shown" in result.err
