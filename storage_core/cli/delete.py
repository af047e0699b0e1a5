"""``storage delete KEY``: remove a key, saying whether it was there."""

from __future__ import annotations

import argparse

from storage_core.cli._args import KEY_HELP, Commands, add_command, add_consistency_option
from storage_core.cli._errors import EXIT_OK
from storage_core.cli._output import note
from storage_core.cli._store import open_store
from storage_core.errors import KeyNotFound
from storage_core.storage import check_key


def register(commands: Commands) -> None:
    parser = add_command(
        commands,
        "delete",
        run,
        "Delete KEY; say on stderr whether it was there. Exit 0 if it was, 1 if it was absent "
        "(like rm), or 0 either way with --missing-ok (like rm -f).",
        examples=["storage delete agent:state", "storage delete agent:state --missing-ok"],
    )
    parser.add_argument("key", metavar="KEY", help=KEY_HELP)
    parser.add_argument("-f", "--missing-ok", action="store_true", help="exit 0 even when the key was absent")
    add_consistency_option(parser)


def run(args: argparse.Namespace) -> int:
    key = check_key(args.key)
    with open_store(args) as store:
        removed = store.delete(key, consistency=args.consistency)
    if removed:
        note(f"deleted key {key!r}")
    elif args.missing_ok:
        note(f"key {key!r} was not there")
    else:
        raise KeyNotFound(key)
    return EXIT_OK
