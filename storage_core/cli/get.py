"""``storage get KEY``: print a value as JSON."""

from __future__ import annotations

import argparse
from typing import Any

import orjson

from storage_core.capabilities import Capability
from storage_core.cli._args import KEY_HELP, Commands, add_command
from storage_core.cli._errors import EXIT_OK
from storage_core.cli._output import note, out_utf8
from storage_core.cli._store import open_store
from storage_core.storage import Storage, check_key


def register(commands: Commands) -> None:
    parser = add_command(
        commands,
        "get",
        run,
        "Print the value of KEY as JSON; exit 1 if the key is absent.",
        examples=[
            "storage get agent:state --pretty",
            "storage get agent:state --entry",
            "storage -c redis://localhost:6379/0 get agent:state",
        ],
    )
    parser.add_argument("key", metavar="KEY", help=KEY_HELP)
    parser.add_argument("--pretty", action="store_true", help="indent the JSON (2 spaces)")
    parser.add_argument(
        "--entry",
        action="store_true",
        help='print {"value": ..., "version": ..., "ttl": seconds left or null}; the version is what '
        "put --if-version takes",
    )


def run(args: argparse.Namespace) -> int:
    key = check_key(args.key)
    with open_store(args, read_only=True) as store:
        printed = _entry(store, key) if args.entry else store.read(key)
    out_utf8(orjson.dumps(printed, option=orjson.OPT_INDENT_2 if args.pretty else 0))
    return EXIT_OK


def _entry(store: Storage, key: str) -> dict[str, Any]:
    entry = store.read_entry(key)
    found: dict[str, Any] = {"value": entry.value, "version": entry.version}
    if store.supports(Capability.READ_TTL):
        found["ttl"] = store.ttl(key)
    else:
        note(f"the {store.name} backend cannot report expiries: no ttl shown")
    return found
