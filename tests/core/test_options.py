"""Backends parse their sections the same way, so every backend reports mistakes alike."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from storage_core import ConfigError
from storage_core.options import parse_options, secret


@dataclass(frozen=True)
class ExampleConfig:
    url: str = secret()
    retries: int = 3
    delay: float = 0.1
    tls: bool = False
    ca_file: str | None = None


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
        ({"url": "u", "retrys": 1}, "storage.example", "unknown field 'retrys'; expected one of: ca_file, delay"),
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
