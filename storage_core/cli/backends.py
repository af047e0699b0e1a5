"""``storage backends``: the installed backends, as a table."""

from __future__ import annotations

import argparse

from storage_core.cli._args import Commands, add_command
from storage_core.cli._errors import EXIT_OK, CommandError
from storage_core.cli._output import out
from storage_core.registry import available_backends


def register(commands: Commands) -> None:
    add_command(
        commands,
        "backends",
        run,
        "List the installed backends: name, distribution, version, URL schemes.",
        examples=["storage backends"],
    )


def run(args: argparse.Namespace) -> int:
    backends = available_backends()
    if not backends:  # storage-core ships `local`, so this is a broken install
        raise CommandError("no storage backends are installed; reinstall storage-core")
    rows = [("NAME", "DISTRIBUTION", "VERSION", "URL SCHEMES")]
    rows += [
        (info.name, info.distribution, info.version, ", ".join(info.url_schemes) or "-")
        for info in sorted(backends.values(), key=lambda info: info.name)
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        out("  ".join([*(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)), row[3]]))
    return EXIT_OK
