"""Backends parse their sections the same way, so every backend reports mistakes alike."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from storage_core import ConfigError
from storage_core.backend import check_fields, parse_options, secret
from storage_core.config import Section
from storage_core.options import file_path, seal_secret_fields
from storage_core.redact import Secret


@dataclass(frozen=True)
class ExampleConfig:
    url: str = secret()
    retries: int = 3
    delay: float = 0.1
    tls: bool = False
    ca_file: str | None = None


@dataclass(frozen=True)
class CheckedConfig(ExampleConfig):
    """Built in code as well as parsed: the same field check either way."""

    def __post_init__(self) -> None:
        check_fields(self, section="storage.example")


def test_fields_are_checked_and_converted() -> None:
    parsed = parse_options(
        ExampleConfig,
        {"url": "redis://h", "retries": "5", "delay": 1, "tls": "yes", "ca_file": None},
        section="storage.example",
    )
    assert parsed == ExampleConfig(url="redis://h", retries=5, delay=1.0, tls=True, ca_file=None)


@pytest.mark.parametrize(
    ("options", "field", "message"),
    [
        ({"url": "u", "retries": "three"}, "storage.example.retries", "expected an integer, got str 'three'"),
        ({"url": "u", "retries": 1.5}, "storage.example.retries", "expected an integer, got float"),
        ({"url": "u", "delay": "soon"}, "storage.example.delay", "expected a number"),
        ({"url": "u", "delay": [1]}, "storage.example.delay", "expected a number, got list"),
        ({"url": "u", "tls": "maybe"}, "storage.example.tls", "expected true or false"),
        ({"url": "u", "ca_file": 3}, "storage.example.ca_file", "expected a string or null"),
        ({"url": None}, "storage.example.url", "expected a string, got nothing"),
        ({"url": "u", "retrys": 1}, "storage.example", "'retrys' (did you mean 'retries'?); expected one of: ca_file"),
        ({}, "storage.example", "missing required field(s): url"),
    ],
)
def test_mistakes_name_the_field(options: dict[str, object], field: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_options(ExampleConfig, options, section="storage.example")
    assert info.value.field == field
    assert message in str(info.value)


def test_a_secret_field_never_echoes_its_value() -> None:
    with pytest.raises(ConfigError) as info:
        parse_options(ExampleConfig, {"url": ["redis://:hunter2@h"]}, section="s")
    assert "hunter2" not in str(info.value)
    assert "expected a string, got list" in str(info.value)


def test_the_section_itself_must_be_a_mapping() -> None:
    with pytest.raises(ConfigError, match="expected a mapping of options, got str"):
        parse_options(ExampleConfig, "redis://h", section="s")  # type: ignore[arg-type]


@dataclass(frozen=True)
class FileConfig:
    path: str = file_path(default="default.db")
    other: str = "other.db"


def test_a_secret_field_is_handed_over_masked_but_whole() -> None:
    parsed = parse_options(ExampleConfig, {"url": "redis://:hunter2@h/0"}, section="storage.example")
    assert isinstance(parsed.url, Secret)
    assert parsed.url == "redis://:hunter2@h/0"
    assert "hunter2" not in repr(parsed)
    assert "hunter2" not in str(parsed)
    assert "redis://:***@h/0" in repr(parsed)


def test_a_sealed_value_is_converted_as_its_text() -> None:
    parsed = parse_options(ExampleConfig, {"url": Secret("u"), "retries": Secret("7")}, section="storage.example")
    assert parsed.retries == 7
    assert type(parsed.retries) is int


def test_a_relative_file_path_is_joined_to_the_sections_folder(tmp_path: Path) -> None:
    section = Section({"path": "data/a.db", "other": "data/b.db"}, base_dir=str(tmp_path))
    parsed = parse_options(FileConfig, section, section="storage.file")
    assert parsed.path == str(tmp_path / "data" / "a.db")
    assert parsed.other == "data/b.db", "only fields marked file_path() are paths"
    assert parse_options(FileConfig, Section({"path": "/abs.db"}, str(tmp_path)), section="s").path == "/abs.db"
    assert parse_options(FileConfig, Section({}, str(tmp_path)), section="s").path == "default.db"
    assert parse_options(FileConfig, {"path": "rel.db"}, section="s").path == "rel.db", "no file: left as given"


def test_seal_secret_fields_masks_a_directly_built_dataclass() -> None:
    @dataclass(frozen=True)
    class Direct:
        token: str = secret()
        name: str = "n"

        def __post_init__(self) -> None:
            seal_secret_fields(self)

    built = Direct("hunter2")
    assert isinstance(built.token, Secret)
    assert "hunter2" not in repr(built)
    assert built.token.reveal() == "hunter2"
    assert type(built.token.reveal()) is str


@pytest.mark.parametrize(
    ("kwargs", "field", "message"),
    [
        ({"retries": "3"}, "storage.example.retries", "expected an integer, got str '3'"),
        ({"retries": True}, "storage.example.retries", "expected an integer, got bool True"),
        ({"delay": "0.5"}, "storage.example.delay", "expected a number, got str '0.5'"),
        ({"tls": 1}, "storage.example.tls", "expected true or false, got int 1"),
        ({"ca_file": 3}, "storage.example.ca_file", "expected a string or null, got int 3"),
        ({"url": b"redis://:hunter2@h"}, "storage.example.url", "expected a string, got bytes"),
    ],
)
def test_a_config_built_in_code_is_checked_field_by_field(kwargs: dict[str, object], field: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        CheckedConfig(**{"url": "u", **kwargs})  # type: ignore[arg-type]
    assert info.value.field == field
    assert str(info.value) == f"{field}: {message}"
    assert "hunter2" not in str(info.value)


def test_an_int_is_a_float_and_none_fits_an_optional_field() -> None:
    config = CheckedConfig(url="u", delay=1, ca_file=None)
    assert config.delay == 1
    assert parse_options(CheckedConfig, {"url": "u", "delay": "2"}, section="storage.example").delay == 2.0
