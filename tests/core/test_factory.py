"""open_storage: from a file, a mapping, a config or a URL to an initialized store."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from storage_core import (
    BackendNotFound,
    ConfigError,
    Consistency,
    StorageError,
    load_config,
    open_storage,
)


def test_no_config_opens_the_embedded_default_under_the_state_directory(in_tmp_dir: Path) -> None:
    with open_storage() as store:
        assert store.name == "local"
        store.write("k", {"v": 1})
        assert store.read("k") == {"v": 1}
    state = Path(os.environ["XDG_STATE_HOME"]) / "storage-core" / "state.db"
    assert state.is_file()


def test_a_file_selects_backend_namespace_and_default_consistency(in_tmp_dir: Path) -> None:
    (in_tmp_dir / "agent.yaml").write_text(
        f"storage:\n  consistency: eventual\n  namespace: fleet-a\n  local:\n    path: {in_tmp_dir / 's.db'}\n",
        encoding="utf-8",
    )
    with open_storage("agent.yaml") as store:
        assert (store.namespace, store.default_consistency) == ("fleet-a", Consistency.EVENTUAL)
        store.write("task_queue", [1])
    with open_storage({"backend": "local", "local": {"path": str(in_tmp_dir / "s.db")}}) as raw:
        assert list(raw.keys()) == ["fleet-a:task_queue"]


def test_keyword_overrides_beat_the_config(tmp_path: Path) -> None:
    config = load_config({"namespace": "a", "local": {"path": str(tmp_path / "s.db")}})
    with open_storage(config, namespace="b", consistency="eventual") as store:
        assert (store.namespace, store.default_consistency) == ("b", Consistency.EVENTUAL)


def test_a_url_opens_the_backend_that_declares_its_scheme(tmp_path: Path) -> None:
    with open_storage(f"local://{tmp_path / 'u.db'}", namespace="n") as store:
        store.write("k", True)
        assert store.namespace == "n"
    assert (tmp_path / "u.db").is_file()


def test_an_unknown_scheme_is_backend_not_found() -> None:
    with pytest.raises(BackendNotFound, match="scheme 'mongodb'"):
        open_storage("mongodb://h/db")


def test_an_unknown_backend_name_lists_the_installed_ones() -> None:
    with pytest.raises(BackendNotFound, match=r"no storage backend named 'dynamo'.*installed: .*local"):
        open_storage({"backend": "dynamo"})


def test_a_bad_backend_option_names_the_file_and_field(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text("storage:\n  local:\n    pth: /tmp/x.db\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        open_storage(path)
    assert str(info.value).startswith(f"{path}: storage.local: unknown field 'pth'")


def test_a_bad_url_names_the_url(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=re.escape("local://relative.db")):
        open_storage("local://relative.db")


def test_configure_is_refused_while_open(tmp_path: Path) -> None:
    with (
        open_storage({"local": {"path": str(tmp_path / "s.db")}}) as store,
        pytest.raises(StorageError, match=r"before initialize\(\)"),
    ):
        store.configure(namespace="late")


@pytest.mark.parametrize(
    ("namespace", "message"),
    [("a:b", "must not contain ':'"), ("n" * 257, "the limit is 256"), (3, "must be a str"), ("\ud800", "lone")],
)
def test_a_namespace_override_is_checked_like_the_config(tmp_path: Path, namespace: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        open_storage({"local": {"path": str(tmp_path / "s.db")}}, namespace=namespace)  # type: ignore[arg-type]


def test_a_malformed_url_is_a_config_error_naming_it_without_the_password() -> None:
    with pytest.raises(ConfigError) as info:
        open_storage("local://:s3cret@[::1/x.db")
    assert "s3cret" not in str(info.value)
    assert str(info.value).startswith("local://:***@[::1/x.db")
