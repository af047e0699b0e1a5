"""The documents users read stay true: pinned names, the example config, the README."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

import storage_core
from storage_core import StorageError, available_backends, errors, hookspecs, load_config
from storage_core.known_backends import FIRST_PARTY

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")

PINNED = [
    "open_storage",
    "load_config",
    "available_backends",
    "Storage",
    "Entry",
    "Consistency",
    "hookimpl",
    "StorageError",
    "ConnectionFailed",
    "KeyNotFound",
    "InvalidKey",
    "SerializationError",
    "ConfigError",
    "BackendNotFound",
    "VersionConflict",
    "ConsistencyError",
    "AuthenticationFailed",
]


@pytest.mark.parametrize("name", PINNED)
def test_every_pinned_name_is_public(name: str) -> None:
    assert name in storage_core.__all__
    assert getattr(storage_core, name) is not None


def test_everything_public_exists() -> None:
    assert sorted(storage_core.__all__) == sorted(set(storage_core.__all__))
    for name in storage_core.__all__:
        assert hasattr(storage_core, name), name


def test_every_error_is_exported_and_documented() -> None:
    classes = [c for _, c in inspect.getmembers(errors, inspect.isclass) if issubclass(c, StorageError)]
    for cls in classes:
        assert cls.__name__ in storage_core.__all__
        assert f"`{cls.__name__}`" in README, f"{cls.__name__} is not documented in README.md"
        assert cls.__doc__, f"{cls.__name__} has no docstring"


def test_every_hook_is_documented() -> None:
    hooks = [n for n, f in inspect.getmembers(hookspecs, inspect.isfunction) if n.startswith("storage_")]
    assert hooks == ["storage_register_backends"]
    for hook in hooks:
        assert hook in README


def test_the_consistency_table_covers_every_bundled_backend() -> None:
    table = README.split("## Consistency", 1)[1].split("\n## ", 1)[0]
    bundled = [name for name, info in available_backends().items() if info.distribution in FIRST_PARTY]
    assert {"local", "redis"} <= set(bundled)
    for name in bundled:  # not examples/storage-memory, a third-party plugin documented on its own
        assert re.search(rf"^\| `{name}` \|", table, re.MULTILINE), f"no consistency row for {name}"


def test_the_quick_start_targets_exist() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for target in re.findall(r"^make (\w+)", README, re.MULTILINE):
        assert re.search(rf"^{target}:", makefile, re.MULTILINE), f"README says `make {target}`"
    assert "make test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_every_cli_command_is_documented() -> None:
    for command in ("backends", "doctor", "get", "put", "delete", "keys"):
        assert re.search(rf"^storage \[-c [^\]]*\] {command}\b", README, re.MULTILINE), command


def test_the_example_config_is_valid_for_every_backend_it_shows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_PASSWORD", "example-secret")
    config = load_config(ROOT / "config" / "agent.example.yaml")
    for name, options in config.sections.items():
        backend = available_backends()[name].cls
        backend.from_options(options)  # raises ConfigError on any unknown or bad field
