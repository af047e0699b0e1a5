"""The README's command-line section names every command and every flag that exists."""

from __future__ import annotations

import argparse
from pathlib import Path

from storage_core import cli
from storage_core.cli._store import CONFIG_ENV

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
SECTION = README.split("## The command line", 1)[1].split("\n## ", 1)[0]


def _flags(parser: argparse.ArgumentParser) -> set[str]:
    """The flags a user is shown: not -h/--help, and not a hidden one (help=SUPPRESS, for tests)."""
    return {
        flag
        for action in parser._actions
        if action.help != argparse.SUPPRESS
        for flag in action.option_strings
        if flag not in ("-h", "--help")
    }


def test_every_command_and_flag_is_in_the_readme() -> None:
    parser = cli._build_parser()
    missing = sorted(flag for flag in _flags(parser) if flag not in SECTION)
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in commands.choices.items():
        if f"] {name}" not in SECTION:
            missing.append(name)
        missing += sorted(f"{name} {flag}" for flag in _flags(sub) if flag not in SECTION)
    assert missing == []


def test_the_environment_variable_is_in_the_readme() -> None:
    assert f"${CONFIG_ENV}" in SECTION
