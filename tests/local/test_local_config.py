"""Options, URLs, the embedded default path, and registration as a plugin."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from storage_core import ConfigError, available_backends, load_config, open_storage
from storage_core.factory import build_backend
from storage_local import LocalConfig, LocalStorage, default_path
from storage_local.plugin import storage_register_backends


def test_defaults_follow_xdg_state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    config = LocalConfig()
    assert config.path == str(tmp_path / "xdg" / "storage-core" / "state.db")
    assert config.timeout == 5.0


@pytest.mark.parametrize("xdg", [None, "", "relative/state"])
def test_default_falls_back_to_local_state_in_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, xdg: str | None
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    if xdg is None:
        monkeypatch.delenv("XDG_STATE_HOME")
    else:
        monkeypatch.setenv("XDG_STATE_HOME", xdg)  # the XDG spec says a relative one is ignored
    assert default_path() == str(tmp_path / ".local" / "state" / "storage-core" / "state.db")


def test_embedded_default_store_creates_its_folders_owner_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    with LocalStorage() as store:
        store.write("k", 1)
    assert (tmp_path / "xdg" / "storage-core" / "state.db").is_file()
    assert os.stat(tmp_path / "xdg").st_mode & 0o777 == 0o700
    assert os.stat(tmp_path / "xdg" / "storage-core").st_mode & 0o777 == 0o700


def test_from_options_parses_types(tmp_path: Path) -> None:
    store = LocalStorage.from_options({"path": str(tmp_path / "x.db"), "timeout": "2.5"})
    assert store.config == LocalConfig(path=str(tmp_path / "x.db"), timeout=2.5)
    assert store.path == str(tmp_path / "x.db")


def test_constructing_does_no_io(tmp_path: Path) -> None:
    store = LocalStorage.from_options({"path": str(tmp_path / "a" / "b" / "state.db")})
    assert repr(store) == f"<LocalStorage local:{tmp_path}/a/b/state.db>"
    assert not (tmp_path / "a").exists()


def test_relative_path_is_relative_to_cwd_at_construction(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = LocalStorage.from_options({"path": "data/state.db"})
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    with store:
        store.write("k", 1)
    assert store.path == str(tmp_path / "data" / "state.db")
    assert (tmp_path / "data" / "state.db").is_file()
    assert not (tmp_path / "elsewhere" / "data").exists()


def test_a_relative_path_in_a_config_file_is_relative_to_its_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    etc = tmp_path / "etc" / "agent"
    etc.mkdir(parents=True)
    (etc / "agent.yaml").write_text("storage:\n  local:\n    path: data/state.db\n", encoding="utf-8")
    (tmp_path / "cron").mkdir()
    for cwd in (etc, tmp_path / "cron", tmp_path):  # started by hand, by cron, by a service manager
        monkeypatch.chdir(cwd)
        with open_storage("../etc/agent/agent.yaml" if cwd == tmp_path / "cron" else etc / "agent.yaml") as store:
            assert isinstance(store, LocalStorage)
            assert store.path == str(etc / "data" / "state.db")
            store.update("opened", lambda n: n + 1, default=0)
    with open_storage(f"local://{etc}/data/state.db") as store:
        assert store.read("opened") == 3
    assert not (tmp_path / "cron" / "data").exists()
    assert not (tmp_path / "data").exists()


def test_an_absolute_or_home_path_in_a_config_file_stays_as_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    config = tmp_path / "agent.yaml"
    config.write_text(f"storage:\n  local:\n    path: {tmp_path}/abs.db\n", encoding="utf-8")
    assert open_storage_unopened(config).path == str(tmp_path / "abs.db")
    config.write_text("storage:\n  local:\n    path: ~/h.db\n", encoding="utf-8")
    assert open_storage_unopened(config).path == str(tmp_path / "home" / "h.db")


def open_storage_unopened(config: Path) -> LocalStorage:
    store = build_backend(load_config(config))
    assert isinstance(store, LocalStorage)
    return store


def test_home_is_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert LocalStorage.from_options({"path": "~/s.db"}).path == str(tmp_path / "s.db")


@pytest.mark.parametrize(
    ("options", "field", "says"),
    [
        ({"timeout": "soon"}, "storage.local.timeout", "expected a number"),
        ({"timeout": [1]}, "storage.local.timeout", "expected a number"),
        ({"timeout": True}, "storage.local.timeout", "expected a number"),
        ({"timeout": -1}, "storage.local.timeout", "seconds >= 0"),
        ({"timeout": "nan"}, "storage.local.timeout", "finite"),
        ({"pth": "/tmp/x.db"}, "storage.local", "'pth' (did you mean 'path'?); expected one of: path, timeout"),
        ({"path": ""}, "storage.local.path", "path of a database file"),
        ({"path": 3}, "storage.local.path", "expected a string"),
        ({"path": "a\x00b"}, "storage.local.path", "NUL"),
        ({"path": "data/"}, "storage.local.path", "add the database file's name, such as data/state.db"),
    ],
)
def test_bad_options_name_the_field(options: dict[str, object], field: str, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        LocalStorage.from_options(options)
    assert caught.value.field == field
    assert says in str(caught.value)


def test_bad_option_in_a_config_file_names_the_file(tmp_path: Path) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text("storage:\n  backend: local\n  local:\n    path: ./x.db\n    timout: 3\n")
    with pytest.raises(ConfigError) as caught:
        open_storage(config)
    assert str(caught.value).startswith(f"{config}: storage.local: unknown field 'timout'")
    assert not (tmp_path / "x.db").exists()


def test_from_url(tmp_path: Path) -> None:
    store = LocalStorage.from_url(f"local://{tmp_path}/my%20dir/state.db?timeout=0.5")
    assert store.path == f"{tmp_path}/my dir/state.db"
    assert store.config.timeout == 0.5


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("local://relative/state.db", "reads as a host name"),
        ("local:relative/state.db", "got the path 'relative/state.db'"),
        ("local://", "got the path ''"),
        ("local:///", "names a folder"),
        ("file:///x/state.db", "got the scheme 'file'"),
        ("local:///x/state.db?timeout=never", "expected a number"),
        ("local:///x/state.db?colour=red", "unknown field 'colour'"),
        ("local:///x/state.db?path=/y.db", "not in ?path="),
    ],
)
def test_bad_urls_are_refused(url: str, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        LocalStorage.from_url(url)
    assert says in str(caught.value)


def test_a_url_to_a_folder_is_refused_when_opened(tmp_path: Path) -> None:
    # "local:///" is no file; a URL naming an existing folder is caught when it opens.
    with pytest.raises(Exception, match="is a folder"):
        open_storage(f"local://{tmp_path}")


def test_registered_through_the_entry_point() -> None:
    info = available_backends()["local"]
    assert info.cls is LocalStorage
    assert info.distribution == "storage-core"
    assert info.url_schemes == ("local",)


def test_plugin_hook_registers_the_class_by_reference() -> None:
    calls: list[tuple[tuple[object, ...], dict[str, object]]] = []
    storage_register_backends(register=lambda *args, **kwargs: calls.append((args, kwargs)))
    assert calls == [(("local", "storage_local.backend:LocalStorage"), {"url_schemes": LocalStorage.url_schemes})]


def test_open_storage_by_url_and_by_config(tmp_path: Path) -> None:
    with open_storage(f"local://{tmp_path}/u.db", namespace="ns") as store:
        assert isinstance(store, LocalStorage)
        assert repr(store) == f"<LocalStorage local:{tmp_path}/u.db namespace='ns'>"
        store.write("k", {"from": "url"})
    with open_storage({"backend": "local", "local": {"path": f"{tmp_path}/u.db"}}, namespace="ns") as store:
        assert store.read("k") == {"from": "url"}


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"timeout": "5"}, "storage.local.timeout: expected a number, got str '5'"),
        ({"timeout": True}, "storage.local.timeout: expected a number, got bool True"),
        ({"path": Path("/tmp/x.db")}, "storage.local.path: expected a string, got PosixPath"),
    ],
)
def test_a_config_built_directly_checks_the_type_of_each_field(kwargs: dict[str, Any], says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        LocalConfig(**kwargs)
    assert str(caught.value).startswith(says)
