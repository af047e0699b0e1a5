"""``storage ttl KEY``: the seconds left before a key expires."""

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
        "ttl",
        run,
        "Print the seconds left before KEY expires, or null when it never does; exit 1 if the key is absent.",
        examples=["storage ttl agent:heartbeat", "storage -c redis://localhost:6379/0 ttl agent:lease"],
    )
    parser.add_argument("key", metavar="KEY", help=KEY_HELP)


def run(args: argparse.Namespace) -> int:
    key = check_key(args.key)
    with open_store(args, read_only=True) as store:
        left = store.ttl(key)
    out_utf8(orjson.dumps(None if left is None else round(left, 3)))
    return EXIT_OK
