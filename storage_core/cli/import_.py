"""``storage import [FILE|-]``: load JSON Lines written by ``storage export``."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from typing import BinaryIO

from storage_core.cli import _records
from storage_core.cli._args import Commands, add_command, add_consistency_option
from storage_core.cli._batches import BATCH, write_batch
from storage_core.cli._errors import EXIT_ERROR, EXIT_OK, CommandError
from storage_core.cli._output import note
from storage_core.cli._store import open_store
from storage_core.storage import Storage


def register(commands: Commands) -> None:
    parser = add_command(
        commands,
        "import",
        run,
        "Write the keys of a JSON Lines file (the format of storage export) into the store, in batches. "
        "Each line is checked completely before anything is written for it; a malformed line is "
        "skipped and reported with its number and what is wrong. Prints how many keys were imported "
        "and lines skipped; exits 1 if any line was skipped.",
        examples=["storage import backup.jsonl", "gunzip -c agent.jsonl.gz | storage -c agent.yaml import -"],
    )
    parser.add_argument("file", metavar="FILE", nargs="?", default="-", help="the file to read; - (default) is stdin")
    add_consistency_option(parser)


def run(args: argparse.Namespace) -> int:
    with _opened(args.file) as source, open_store(args) as store:
        imported, skipped = load(
            store, source, name="stdin" if args.file == "-" else args.file, consistency=args.consistency
        )
    note(f"imported {imported} keys, skipped {skipped} malformed lines")
    return EXIT_ERROR if skipped else EXIT_OK


def load(store: Storage, source: BinaryIO, *, name: str, consistency: str | None = None) -> tuple[int, int]:
    """Import every well-formed line of *source*; return (keys written, lines skipped)."""
    imported = skipped = 0
    pending: list[tuple[str, object, float | None]] = []
    for number, line in enumerate(source, start=1):
        if not line.strip():  # a blank line (often the last) holds no record
            continue
        try:
            record = _records.parse(line)
        except _records.BadRecord as problem:
            note(f"{name}, line {number}: skipped: {problem}")
            skipped += 1
            continue
        pending.append((record.key, record.value, record.ttl))
        if len(pending) == BATCH:
            imported += write_batch(store, pending, consistency=consistency)
            pending.clear()
    if pending:
        imported += write_batch(store, pending, consistency=consistency)
    return imported, skipped


@contextlib.contextmanager
def _opened(path: str) -> Iterator[BinaryIO]:
    if path == "-":
        yield sys.stdin.buffer
        return
    try:
        file = open(path, "rb")  # noqa: SIM115 - closed below, after the import
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror}") from None
    with file:
        yield file
