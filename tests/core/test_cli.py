"""The ``storage`` command: in-process through ``main(argv)``, and once as the real console script.

Every test runs from an empty temporary directory with ``XDG_STATE_HOME`` pointed at a
temporary one (conftest), so none touches the user's home or a stray ./agent.yaml.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest

from storage_core import PluginError, Storage, StorageError, cli, open_storage
from storage_core.cli import _store, main
from storage_core.cli import backends as backends_command


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()


Run = Callable[..., Result]


@pytest.fixture
def run(in_tmp_dir: Path, capsys: pytest.CaptureFixture[str]) -> Run:
    """Call ``main`` with these arguments; return its exit status and what it printed."""

    def invoke(*argv: str) -> Result:
        capsys.readouterr()
        code = main(list(argv))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return invoke


@pytest.fixture
def url(tmp_path: Path) -> str:
    """A local store in its own SQLite file, as a URL."""
    return f"local://{tmp_path / 'state.db'}"


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    """An agent.yaml (under another name) selecting a local store in tmp_path."""
    path = tmp_path / "test-agent.yaml"
    path.write_text(f"storage:\n  backend: local\n  local:\n    path: {tmp_path / 'file.db'}\n", encoding="utf-8")
    return path


def assert_one_error_line(result: Result, *fragments: str) -> str:
    """The failure is exactly one ``storage: error:`` line on stderr, with no traceback."""
    assert result.code == 1, result
    lines = result.err.splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("storage: error: "), lines[0]
    assert "Traceback" not in result.err
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# -- top level ----------------------------------------------------------------------------


def test_version_names_the_distribution_version(run: Run) -> None:
    result = run("--version")
    assert (result.code, result.out.strip()) == (0, f"storage (storage-core) {metadata.version('storage-core')}")


def test_help_documents_the_exit_codes_and_the_environment_variable(run: Run) -> None:
    result = run("--help")
    assert result.code == 0
    for text in ("backends", "doctor", "get", "put", "delete", "keys", "STORAGE_CONFIG", "130", "141"):
        assert text in result.out


def command_names() -> list[str]:
    parser = cli._build_parser()
    (commands,) = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    return list(commands.choices)


@pytest.mark.parametrize("command", command_names())
def test_every_command_help_shows_an_example_and_the_exit_status(run: Run, command: str) -> None:
    result = run(command, "--help")
    assert result.code == 0
    examples = result.out.split("examples:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert examples, result.out
    assert all(f"storage {command}" in line or "storage -c " in line for line in examples), examples
    assert "exit status:" in result.out


def test_delete_help_documents_its_exit_status(run: Run) -> None:
    assert "--missing-ok" in run("delete", "--help").out


@pytest.mark.parametrize(
    "argv",
    [
        (),
        ("frobnicate",),
        ("get",),
        ("put", "k"),
        ("put", "k", "1", "--ttl", "0"),
        ("put", "k", "1", "--ttl", "nan"),
        ("put", "k", "1", "--ttl", "inf"),
        ("put", "k", "1", "--ttl", "soon"),
        ("put", "k", "1", "--consistency", "linearizable"),
        ("keys", "--limit", "-1"),
        ("keys", "--limit", "ten"),
        ("-c", "", "keys"),
    ],
)
def test_usage_errors_exit_2_like_argparse(run: Run, argv: tuple[str, ...]) -> None:
    result = run(*argv)
    assert result.code == 2
    assert result.out == ""
    assert "error:" in result.err
    assert "Traceback" not in result.err


# -- backends -----------------------------------------------------------------------------


def test_backends_prints_a_table_of_the_installed_backends(run: Run) -> None:
    result = run("backends")
    assert result.code == 0
    header, *rows = result.lines
    assert header.split() == ["NAME", "DISTRIBUTION", "VERSION", "URL", "SCHEMES"]
    local = next(row for row in rows if row.startswith("local "))
    assert local.split() == ["local", "storage-core", metadata.version("storage-core"), "local"]
    assert result.err == ""


def test_backends_with_nothing_installed_is_an_error(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backends_command, "available_backends", dict)
    assert_one_error_line(run("backends"), "no storage backends are installed")


# -- doctor -------------------------------------------------------------------------------


def test_doctor_checks_the_embedded_default_step_by_step(run: Run) -> None:
    result = run("doctor")
    assert result.code == 0, result.err
    steps = [line.split()[:4] for line in result.lines[:-1]]
    assert [(step[0], step[1], step[3]) for step in steps] == [
        (name, "ok", "ms") for name in ("config", "open", "ping", "write", "read", "delete")
    ]
    assert all(float(step[2]) >= 0 for step in steps)
    assert "embedded default (backend local" in result.lines[0]
    assert os.environ["XDG_STATE_HOME"] in result.lines[1]  # where the store is
    assert "key storage-doctor:" in result.lines[3]
    assert result.lines[-1] == "ok: all 6 checks passed"
    assert result.err == ""
    with open_storage() as store:
        assert list(store.keys()) == []  # the scratch key is gone


def test_doctor_names_the_config_file_and_its_settings(run: Run, tmp_path: Path) -> None:
    (tmp_path / "agent.yaml").write_text(
        f"storage:\n  namespace: fleet-a\n  consistency: eventual\n  local:\n    path: {tmp_path / 'a.db'}\n",
        encoding="utf-8",
    )
    result = run("doctor")  # ./agent.yaml is picked up without -c
    assert result.code == 0, result.err
    assert "agent.yaml (backend local, consistency eventual, namespace fleet-a)" in result.lines[0]
    assert (tmp_path / "a.db").is_file()


def test_doctor_with_a_url_shows_it(run: Run, url: str) -> None:
    result = run("-c", url, "doctor")
    assert result.code == 0, result.err
    assert f"URL {url}" in result.lines[0]


def test_doctor_fails_at_open_when_the_database_cannot_be_created(run: Run, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("a regular file, not a folder", encoding="utf-8")
    result = run("-c", f"local://{tmp_path / 'file' / 'x.db'}", "doctor")
    assert_one_error_line(result, "doctor: open failed: ")
    assert result.lines[-1].split()[:2] == ["open", "FAIL"]


def test_doctor_fails_on_a_closed_redis_port_without_showing_the_password(run: Run) -> None:
    result = run("-c", f"redis://:hunter2@127.0.0.1:{closed_port()}/0", "doctor")
    line = assert_one_error_line(result)
    # With storage-redis installed the open fails; without it the registry says how to install it.
    assert "doctor: open failed" in line or "storage-core[redis]" in line
    assert "hunter2" not in result.out + result.err


def test_doctor_removes_the_scratch_key_when_a_check_fails(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Storage, "read", lambda self, key: {"not": "what was written"})
    result = run("doctor")
    assert_one_error_line(result, "doctor: read failed: read back a different value than was written")
    assert result.lines[-1].split()[:2] == ["read", "FAIL"]
    with open_storage() as store:  # keys() does not go through the patched read
        assert list(store.keys()) == []


def test_doctor_warns_when_even_the_cleanup_fails(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: Storage, key: str, **kwargs: object) -> bool:
        raise StorageError("the store is read-only now")

    monkeypatch.setattr(Storage, "delete", refuse)
    result = run("doctor")
    assert result.code == 1
    warning, error = result.err.splitlines()
    assert warning.startswith("storage: warning: could not delete the scratch key storage-doctor:")
    assert "expires in 300 s" in warning
    assert error == "storage: error: doctor: delete failed: the store is read-only now"


@pytest.mark.parametrize(
    ("method", "result", "message"),
    [("delete", False, "the scratch key was already gone"), ("exists", True, "the scratch key is still there")],
)
def test_doctor_checks_that_delete_really_deleted(
    run: Run, monkeypatch: pytest.MonkeyPatch, method: str, result: bool, message: str
) -> None:
    monkeypatch.setattr(Storage, method, lambda self, *args, **kwargs: result)
    assert_one_error_line(run("doctor"), f"doctor: delete failed: {message}")


def test_doctor_reports_an_unexpected_error_with_the_step_and_a_hint(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(self: Storage) -> None:
        raise RuntimeError("the disk caught fire")

    monkeypatch.setattr(Storage, "ping", boom)
    assert_one_error_line(
        run("doctor"), "doctor: ping failed: unexpected RuntimeError: the disk caught fire (rerun with --debug"
    )


def test_doctor_fails_at_config_for_a_bad_file(run: Run) -> None:
    result = run("-c", "missing.yaml", "doctor")
    assert_one_error_line(result, "doctor: config failed: missing.yaml: config file not found")
    assert result.lines[-1].split()[:2] == ["config", "FAIL"]


# -- get / put / delete / keys ------------------------------------------------------------


def test_a_round_trip_through_a_config_file(run: Run, config_file: Path) -> None:
    c = ("-c", str(config_file))
    assert run(*c, "put", "task_queue", '{"tasks": [1, "two", null, 3.5, true]}').code == 0
    assert run(*c, "put", "task_done", "42", "--consistency", "eventual").code == 0
    got = run(*c, "get", "task_queue")
    assert (got.code, got.out, got.err) == (0, '{"tasks":[1,"two",null,3.5,true]}\n', "")
    assert sorted(run(*c, "keys").lines) == ["task_done", "task_queue"]
    assert run(*c, "keys", "task_q").lines == ["task_queue"]
    deleted = run(*c, "delete", "task_queue")
    assert (deleted.code, deleted.out, deleted.err) == (0, "", "storage: deleted key 'task_queue'\n")
    assert run(*c, "keys").lines == ["task_done"]
    with open_storage(str(config_file)) as store:
        assert store.read("task_done") == 42


def test_a_round_trip_through_a_url_and_options_after_the_command(run: Run, url: str) -> None:
    assert run("put", "k", '"v"', "-c", url).code == 0
    assert run("get", "k", "--config", url).out == '"v"\n'
    with open_storage(url) as store:
        assert store.read("k") == "v"


def test_an_option_before_the_command_is_not_reset_by_the_subcommand(run: Run, url: str) -> None:
    assert run("-c", url, "--debug", "put", "k", "1").code == 0
    with open_storage(url) as store:
        assert store.read("k") == 1


def test_storage_config_is_the_default_for_c(run: Run, url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORAGE_CONFIG", url)
    assert run("put", "k", "[1]").code == 0
    with open_storage(url) as store:
        assert store.read("k") == [1]


def test_c_beats_storage_config(run: Run, url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORAGE_CONFIG", "nowhere.yaml")
    assert run("-c", url, "put", "k", "1").code == 0


def test_without_c_the_embedded_default_is_used(run: Run) -> None:
    assert run("put", "k", '{"a": 1}').code == 0
    assert (Path(os.environ["XDG_STATE_HOME"]) / "storage-core" / "state.db").is_file()
    with open_storage() as store:
        assert store.read("k") == {"a": 1}


def test_get_pretty_indents(run: Run, url: str) -> None:
    run("-c", url, "put", "k", '{"a": [1, 2], "é": "ü"}')
    assert run("-c", url, "get", "k", "--pretty").out == '{\n  "a": [\n    1,\n    2\n  ],\n  "é": "ü"\n}\n'


def test_get_of_a_missing_key_exits_1_and_prints_nothing_on_stdout(run: Run, url: str) -> None:
    run("-c", url, "put", "other", "1")
    result = run("-c", url, "get", "nope")
    assert_one_error_line(result, "key 'nope' not found")
    assert result.out == ""


def test_put_reads_the_value_from_stdin_with_a_dash(run: Run, url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO('{"big": "vàlue"}\n'.encode())))
    assert run("-c", url, "put", "k", "-").code == 0
    assert run("-c", url, "get", "k").out == '{"big":"vàlue"}\n'


def test_put_takes_a_negative_number_after_a_double_dash(run: Run, url: str) -> None:
    assert run("-c", url, "put", "k", "--", "-1.5e3").code == 0
    assert run("-c", url, "get", "k").out == "-1500.0\n"


def test_put_with_ttl_expires(run: Run, url: str) -> None:
    assert run("-c", url, "put", "brief", "1", "--ttl", "0.05").code == 0
    assert run("-c", url, "put", "stays", "1", "--ttl", "3600").code == 0
    time.sleep(0.2)
    assert_one_error_line(run("-c", url, "get", "brief"), "key 'brief' not found")
    assert run("-c", url, "get", "stays").out == "1\n"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("hello", "the value is not valid JSON (unexpected character"),
        ("{'a': 1}", "quote it for the shell"),
        ('{"a": 1,}', "trailing comma"),
        ("", "empty document"),
        ("NaN", "NaN and Infinity are not JSON values"),
        ('{"x": Infinity}', "NaN and Infinity are not JSON values"),
        ("1e400", "not valid JSON (number is infinity"),
        ("123456789012345678901234567890", "the integer 123456789012345678901234567890 does not fit in 64 bits"),
        ("[18446744073709551616]", "does not fit in 64 bits"),
        ("-9223372036854775809", "does not fit in 64 bits"),
    ],
)
def test_put_refuses_what_is_not_exact_json_and_writes_nothing(run: Run, url: str, text: str, fragment: str) -> None:
    assert_one_error_line(run("-c", url, "put", "k", "--", text), fragment)
    with open_storage(url) as store:
        assert list(store.keys()) == []


@pytest.mark.parametrize(
    ("text", "literal"), [("[1e400]", "1e400"), ("[0.5, -1e400]", "-1e400"), ('{"a": [1, 2.5E+999]}', "2.5E+999")]
)
def test_put_says_a_number_is_out_of_range_not_to_quote_it(run: Run, url: str, text: str, literal: str) -> None:
    line = assert_one_error_line(
        run("-c", url, "put", "big", "--", text), f"number out of range for JSON (a 64-bit float): {literal};"
    )
    assert "quote it" not in line


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[" * 2000 + "]" * 2000, "depth limit exceeded"),
        ('["\udcff"]', "surrogates not allowed"),  # what Python makes of an argument that is not UTF-8
    ],
)
def test_put_gives_no_quoting_hint_for_what_quoting_cannot_fix(run: Run, url: str, text: str, fragment: str) -> None:
    line = assert_one_error_line(run("-c", url, "put", "k", "--", text), fragment)
    assert line.endswith(")"), line


def test_put_gives_no_quoting_hint_for_stdin_that_is_not_utf8(
    run: Run, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b'["\xff"]')))
    line = assert_one_error_line(run("-c", url, "put", "k", "-"), "not valid UTF-8")
    assert "quote it" not in line


@pytest.mark.parametrize("text", ["18446744073709551615", "-9223372036854775808", '"12345678901234567890123"'])
def test_put_keeps_64_bit_integers_and_long_digit_strings_exact(run: Run, url: str, text: str) -> None:
    assert run("-c", url, "put", "k", "--", text).code == 0
    assert run("-c", url, "get", "k").out == f"{text}\n"


@pytest.mark.parametrize("command", [("get", ""), ("put", "", "1"), ("delete", ""), ("get", "k" * 1025)])
def test_an_invalid_key_is_one_clear_line(run: Run, url: str, command: tuple[str, ...]) -> None:
    line = assert_one_error_line(run("-c", url, *command))
    assert "non-empty" in line or "the limit is 1024" in line


def test_delete_of_an_absent_key_exits_1_unless_missing_ok(run: Run, url: str) -> None:
    assert_one_error_line(run("-c", url, "delete", "nope"), "key 'nope' not found")
    for flag in ("-f", "--missing-ok"):
        result = run("-c", url, "delete", "nope", flag)
        assert (result.code, result.out, result.err) == (0, "", "storage: key 'nope' was not there\n")


def test_delete_of_a_present_key_with_missing_ok_still_says_so(run: Run, url: str) -> None:
    run("-c", url, "put", "k", "1")
    result = run("-c", url, "delete", "k", "-f", "--consistency", "eventual")
    assert (result.code, result.err) == (0, "storage: deleted key 'k'\n")


def test_keys_limit_and_json(run: Run, url: str) -> None:
    with open_storage(url) as store:
        store.write_many({f"k{i:03}": i for i in range(50)} | {"line\nbreak": 0})
    limited = run("-c", url, "keys", "k", "--limit", "3").lines
    assert len(limited) == 3
    assert all(key.startswith("k") for key in limited)
    assert run("-c", url, "keys", "--limit", "0").out == ""
    assert len(run("-c", url, "keys", "k").lines) == 50
    assert run("-c", url, "keys", "line", "--json").out == '"line\\nbreak"\n'


def test_keys_of_an_empty_store_prints_nothing(run: Run, url: str) -> None:
    run("-c", url, "put", "k", "1")
    run("-c", url, "delete", "k")
    result = run("-c", url, "keys")
    assert (result.code, result.out, result.err) == (0, "", "")


def test_keys_closes_the_backend_iterator_before_the_store(run: Run, url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    closed: list[str] = []

    def keys(self: Storage, prefix: str = "") -> Iterator[str]:
        try:
            yield from ("a", "b", "c")
        finally:
            closed.append("iterator")

    real_close = Storage.close

    def close(self: Storage) -> None:
        closed.append("store")
        real_close(self)

    run("-c", url, "put", "k", "1")
    monkeypatch.setattr(Storage, "keys", keys)
    monkeypatch.setattr(Storage, "close", close)
    assert run("-c", url, "keys", "--limit", "1").lines == ["a"]
    assert closed[:2] == ["iterator", "store"]


# -- configuration errors -----------------------------------------------------------------


def test_a_missing_config_file_is_one_line_naming_it(run: Run) -> None:
    assert_one_error_line(run("-c", "nowhere.yaml", "get", "k"), "nowhere.yaml", "config file not found")


def test_a_python_tag_in_yaml_is_refused_and_never_run(run: Run, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    (tmp_path / "evil.yaml").write_text(f"storage: !!python/object/apply:os.system ['touch {marker}']\n")
    assert_one_error_line(run("-c", "evil.yaml", "keys"), "evil.yaml", "no Python tags")
    assert not marker.exists()


def test_an_unknown_field_names_the_file_and_the_field(run: Run, tmp_path: Path) -> None:
    (tmp_path / "agent.yaml").write_text("storage:\n  backend: local\n  colour: blue\n", encoding="utf-8")
    assert_one_error_line(run("keys"), "agent.yaml: storage: unknown field 'colour'")


def test_an_unknown_backend_lists_the_installed_ones(run: Run, tmp_path: Path) -> None:
    (tmp_path / "agent.yaml").write_text("storage:\n  backend: dynamo\n", encoding="utf-8")
    assert_one_error_line(run("get", "k"), "no storage backend named 'dynamo'", "installed: ", "local")


def test_an_unknown_url_scheme_lists_the_installed_schemes(run: Run) -> None:
    assert_one_error_line(run("-c", "mongodb://db/agent", "keys"), "scheme 'mongodb'", "installed: ", "local")


# -- failures, --debug, signals, pipes ----------------------------------------------------


def test_debug_shows_the_traceback_then_the_error_line(run: Run) -> None:
    result = run("--debug", "-c", "nowhere.yaml", "get", "k")
    assert result.code == 1
    assert result.err.startswith("Traceback (most recent call last):")
    assert "ConfigError" in result.err
    assert result.err.splitlines()[-1].startswith("storage: error: nowhere.yaml: config file not found")


def test_an_unexpected_error_is_one_line_with_a_hint(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(source: object, **options: object) -> Storage:
        raise RuntimeError("a bug\nspanning lines, near redis://admin:s3cret@db.internal:6379/0")

    monkeypatch.setattr(_store, "open_storage", boom)
    result = run("get", "k")
    line = assert_one_error_line(result, "unexpected RuntimeError: a bug spanning lines", "rerun with --debug")
    assert "redis://admin:***@db.internal:6379/0" in line
    debug = run("--debug", "get", "k")
    assert "Traceback" in debug.err
    assert "rerun with --debug" not in debug.err
    assert "s3cret" not in result.err + debug.err


def test_debug_shows_log_records_and_without_it_they_stay_quiet(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    real_open = open_storage

    def logging_open(source: object, **options: object) -> Storage:
        logging.getLogger("storage_test").warning("retrying redis://u:pw@h:1/0")
        return real_open(source)  # type: ignore[arg-type]  # writable: the embedded default is not there yet

    monkeypatch.setattr(_store, "open_storage", logging_open)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    assert run("keys").err == ""
    assert "storage: WARNING storage_test: retrying redis://u:***@h:1/0\n" in run("keys", "--debug").err
    assert (root.handlers, root.level) == (handlers, level)  # main leaves logging as it found it


def test_ctrl_c_exits_130_quietly(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(source: object, **options: object) -> Storage:
        raise KeyboardInterrupt

    monkeypatch.setattr(_store, "open_storage", interrupted)
    result = run("keys")
    assert (result.code, result.out, result.err) == (130, "", "")


def test_a_closed_stdout_exits_141_and_is_pointed_at_devnull(
    run: Run, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    read_end, write_end = os.pipe()

    class ClosedPipe(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

        def fileno(self) -> int:
            return write_end

    run("-c", url, "put", "k", "1")
    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    try:
        assert main(["-c", url, "keys"]) == 141
        os.write(write_end, b"the interpreter's last flush")  # lands in /dev/null
        assert os.read(read_end, 100) == b""  # the pipe lost its only writer
    finally:
        os.close(read_end)
        os.close(write_end)


def test_a_broken_plugin_is_one_line(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> object:
        raise PluginError("the storage plugin 'memo' from storage-memo failed to import")

    monkeypatch.setattr(backends_command, "available_backends", broken)
    assert_one_error_line(run("backends"), "the storage plugin 'memo' from storage-memo failed to import")


def test_ctrl_c_during_doctor_still_removes_the_scratch_key(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(self: Storage, key: str) -> object:
        raise KeyboardInterrupt

    monkeypatch.setattr(Storage, "read", interrupted)
    result = run("doctor")
    assert (result.code, result.err) == (130, "")
    with open_storage() as store:
        assert list(store.keys()) == []


def test_keys_accepts_a_plain_iterator_from_a_backend(run: Run, url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    run("-c", url, "put", "k", "1")
    monkeypatch.setattr(Storage, "keys", lambda self, prefix="": iter(["x", "y"]))
    assert run("-c", url, "keys").lines == ["x", "y"]


# -- the installed console script ---------------------------------------------------------


def storage_script() -> str:
    """The ``storage`` console script of this interpreter's environment."""
    script = Path(sys.executable).parent / "storage"
    found = str(script) if script.exists() else shutil.which("storage")
    assert found, "the storage console script is not installed: pip install -e ."
    return found


def test_the_console_script_runs_a_round_trip(tmp_path: Path, url: str) -> None:
    def storage(*argv: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [storage_script(), "-c", url, *argv],
            check=False,
            input=stdin,
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=60,
        )

    assert storage("put", "agent", "-", stdin='{"state": "idle"}').returncode == 0
    got = storage("get", "agent")
    assert (got.returncode, got.stdout, got.stderr) == (0, '{"state":"idle"}\n', "")
    missing = storage("get", "nope")
    assert (missing.returncode, missing.stdout, missing.stderr) == (1, "", "storage: error: key 'nope' not found\n")
    usage = storage("get")
    assert usage.returncode == 2
    doctor = storage("doctor")
    assert doctor.returncode == 0, doctor.stderr
    assert doctor.stdout.splitlines()[-1] == "ok: all 6 checks passed"


def test_the_console_script_survives_a_closed_pipe(tmp_path: Path, url: str) -> None:
    with open_storage(url) as store:
        store.write_many({f"agent-{i:06}": i for i in range(20_000)})  # far more than a pipe buffer holds
    with subprocess.Popen(
        [storage_script(), "-c", url, "keys"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path
    ) as proc:
        assert proc.stdout is not None
        assert proc.stderr is not None
        assert proc.stdout.readline() == b"agent-000000\n"
        proc.stdout.close()  # what `| head -1` does
        err = proc.stderr.read()
        code = proc.wait(timeout=60)
    assert (code, err) == (141, b"")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_the_console_script_exits_130_on_ctrl_c(tmp_path: Path, url: str) -> None:
    with open_storage(url) as store:
        store.write_many({f"agent-{i:06}": i for i in range(20_000)})
    with subprocess.Popen(
        [storage_script(), "-c", url, "keys"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path
    ) as proc:
        assert proc.stdout is not None
        proc.stdout.readline()  # it is in the loop now, blocked on the full pipe
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert (proc.returncode, err) == (130, b"")


def test_python_m_runs_the_same_command_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "storage_core.cli", "--version"],
        check=False,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert (done.returncode, done.stdout.strip()) == (0, f"storage (storage-core) {metadata.version('storage-core')}")


def test_get_on_the_embedded_default_imports_nothing_it_does_not_use(tmp_path: Path) -> None:
    """Start-up: no progress/table library, no other backend, nothing only another command needs."""
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")}
    # An existing store: get opens read-only, and a missing one would stop before the read.
    subprocess.run([sys.executable, "-m", "storage_core.cli", "put", "other", "1"], check=True, cwd=tmp_path, env=env)
    probe = (
        "import sys\n"
        "from storage_core.cli import main\n"
        "code = main(['get', 'k'])\n"
        "unwanted = {'rich', 'redis', 'hiredis', 'storage_redis', 'multiprocessing', 'yaml'}\n"
        # Coverage, measuring this child under `make test`, imports multiprocessing itself.
        "if 'coverage' in sys.modules: unwanted.discard('multiprocessing')\n"
        "print(code, *sorted(name for name in sys.modules if name.split('.')[0] in unwanted))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        check=False,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
    )
    assert done.stderr == "storage: error: key 'k' not found\n"
    # storage_redis.plugin is the registry's reference to the backend, not the backend (storage_redis.storage).
    assert done.stdout.split() == [
        "1",
        *(["storage_redis", "storage_redis.plugin"] if "storage_redis" in done.stdout else []),
    ]
