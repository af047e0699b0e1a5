"""``storage backends``: the installed backends, as a table, and the broken plugins among them."""

from __future__ import annotations

import argparse

from storage_core.cli._args import Commands, add_command
from storage_core.cli._errors import EXIT_ERROR, EXIT_OK, CommandError
from storage_core.cli._output import note, out
from storage_core.errors import PluginError
from storage_core.registry import available_backends, get_registry


def register(commands: Commands) -> None:
    add_command(
        commands,
        "backends",
        run,
        "List the installed backends: name, distribution, version, URL schemes; and the broken plugins "
        "(exit status 1), each with what is wrong and how to fix it.",
        examples=["storage backends"],
    )


def run(args: argparse.Namespace) -> int:
    backends = available_backends()
    # The command one runs to find a broken plugin: each backend's class is imported here,
    # so one registered by reference that cannot be imported shows up too.
    problems: dict[str, str] = {}
    rows = [("NAME", "DISTRIBUTION", "VERSION", "URL SCHEMES")]
    for info in sorted(backends.values(), key=lambda info: info.name):
        try:
            _ = info.cls
        except PluginError as exc:
            problems[info.name] = str(exc)
        schemes = "BROKEN (see stderr)" if info.name in problems else ", ".join(info.url_schemes) or "-"
        rows.append((info.name, info.distribution, info.version, schemes))
    for name, broken in sorted(get_registry().broken.items()):
        if name not in problems:
            problems[name] = str(broken.error)
            rows.append((broken.name, broken.distribution, broken.version or "-", "BROKEN (see stderr)"))
    if len(rows) == 1:  # storage-core ships `local`, so this is a broken install
        raise CommandError("no storage backends are installed; reinstall storage-core")
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        out("  ".join([*(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)), row[3]]))
    for message in problems.values():
        note(f"broken: {message}")
    return EXIT_ERROR if problems else EXIT_OK
