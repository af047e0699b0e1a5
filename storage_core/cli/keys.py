"""``storage keys [PREFIX]``: stream key names, one per line."""

from __future__ import annotations

import argparse
import itertools

import orjson

from storage_core.cli._args import Commands, add_command, count
from storage_core.cli._errors import EXIT_OK
from storage_core.cli._output import out_utf8
from storage_core.cli._store import open_store


def register(commands: Commands) -> None:
    parser = add_command(
        commands,
        "keys",
        run,
        "Stream the keys that start with PREFIX (all keys without it), one per line.",
        examples=["storage keys agent: --limit 10", "storage keys --json | jq -r ."],
    )
    parser.add_argument("prefix", metavar="PREFIX", nargs="?", default="")
    parser.add_argument("--limit", type=count, metavar="N", help="stop after N keys")
    parser.add_argument(
        "--json", action="store_true", help="print each key as a JSON string (unambiguous when a key holds a newline)"
    )


def run(args: argparse.Namespace) -> int:
    with open_store(args, read_only=True) as store:
        keys = store.keys(args.prefix)
        try:
            for key in itertools.islice(keys, args.limit):
                out_utf8(orjson.dumps(key) if args.json else key.encode())
        finally:
            # Stop the backend's paging (and free its cursor) before the store closes.
            close = getattr(keys, "close", None)
            if callable(close):
                close()
    return EXIT_OK
