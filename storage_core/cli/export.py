"""``storage export [PREFIX] [-o FILE]``: the store's keys, values and expiries as JSON Lines."""

from __future__ import annotations

import argparse
import sys
from typing import BinaryIO

from storage_core.cli import _records
from storage_core.cli._args import Commands, add_command
from storage_core.cli._batches import chunks
from storage_core.cli._errors import EXIT_OK
from storage_core.cli._files import complete_or_nothing
from storage_core.cli._output import note
from storage_core.cli._store import open_store
from storage_core.storage import Storage


def register(commands: Commands) -> None:
    parser = add_command(
        commands,
        "export",
        run,
        "Write every key starting with PREFIX as JSON Lines. "
        'One {"key": ..., "value": ..., "ttl": ...} per line (ttl is the seconds left, or null), '
        "read in batches, in constant memory; a key that expires meanwhile is left out.",
        examples=["storage export -o backup.jsonl", "storage export agent: | gzip > agent.jsonl.gz"],
    )
    parser.add_argument("prefix", metavar="PREFIX", nargs="?", default="", help="only keys starting with it")
    parser.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="write to FILE (created owner-only, appearing only once complete) instead of stdout",
    )


def run(args: argparse.Namespace) -> int:
    with open_store(args, read_only=True) as store:
        if args.output is None:
            count = export(store, args.prefix, sys.stdout.buffer)
        else:
            with complete_or_nothing(args.output) as file:
                count = export(store, args.prefix, file)
    note(f"exported {count} keys" + ("" if args.output is None else f" to {args.output}"))
    return EXIT_OK


def export(store: Storage, prefix: str, out: BinaryIO) -> int:
    """Write the records of the keys under *prefix* to *out*; return how many."""
    count = 0
    for batch in chunks(store.keys(prefix)):
        found = store.read_many_with_ttl(batch)
        out.write(b"".join(_records.dump(key, *found[key]) for key in batch if key in found))
        count += len(found)
    return count
