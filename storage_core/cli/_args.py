"""Argument types and options shared by several commands, and how a command is declared."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sequence
from typing import TypeAlias

from storage_core.cli._store import CONFIG_ENV
from storage_core.config import DEFAULT_CONFIG_FILE

Handler = Callable[[argparse.Namespace], int]
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

KEY_HELP = "a non-empty string, at most 1024 bytes of UTF-8"


def add_command(
    commands: Commands, name: str, handler: Handler, summary: str, *, examples: Sequence[str]
) -> argparse.ArgumentParser:
    """A subcommand accepting the common options, run by *handler*, with *examples* in its --help."""
    epilog = "examples:\n" + "".join(f"  {example}\n" for example in examples)
    epilog += "\nexit status: 0 success, 1 failure, 2 usage error, 130 interrupted (storage --help has them all)"
    sub = commands.add_parser(
        name, help=summary, description=summary, epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_common_options(sub, top_level=False)
    sub.set_defaults(handler=handler)
    return sub


def add_common_options(parser: argparse.ArgumentParser, *, top_level: bool) -> None:
    """-c and --debug, accepted before and after the command.

    On a subcommand they default to SUPPRESS, so an option given before the command is
    not overwritten by the subcommand's default.
    """
    parser.add_argument(
        "-c",
        "--config",
        metavar="FILE|URL",
        type=_nonempty,
        default=None if top_level else argparse.SUPPRESS,
        help=f"agent.yaml or a store URL (default: ${CONFIG_ENV}, else ./{DEFAULT_CONFIG_FILE}, "
        "else the embedded default)",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        default=False if top_level else argparse.SUPPRESS,
        help="show log messages, and the traceback of an error",
    )


def add_consistency_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--consistency", choices=("strong", "eventual"), help="override the config's default for this write"
    )


def _nonempty(text: str) -> str:
    if not text:
        raise argparse.ArgumentTypeError("expected a config file path or a URL, got an empty string")
    return text


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return value
