"""``storage get KEY``: print a value as JSON."""

from __future__ import annotations

import argparse

import orjson

from storage_core.cli._args import KEY_HELP, Commands, add_command
from storage_core.cli._errors import EXIT_OK
from storage_core.cli._output import out_utf8
from storage_core.cli._store import open_store
from storage_core.storage import check_key


def register(commands: Commands) -> None:
    parser = add_command(
        commands,
        "get",
        run,
        "Print the value of KEY as JSON; exit 1 if the key is absent.",
        examples=["storage get agent:state --pretty", "storage -c redis://localhost:6379/0 get agent:state"],
    )
    parser.add_argument("key", metavar="KEY", help=KEY_HELP)
    parser.add_argument("--pretty", action="store_true", help="indent the JSON (2 spaces)")


def run(args: argparse.Namespace) -> int:
    key = check_key(args.key)
    with open_store(args) as store:
        value = store.read(key)
    out_utf8(orjson.dumps(value, option=orjson.OPT_INDENT_2 if args.pretty else 0))
    return EXIT_OK
