"""``storage put KEY JSON``: store a value."""

from __future__ import annotations

import argparse
import sys

from storage_core.cli._args import KEY_HELP, Commands, add_command, add_consistency_option, seconds
from storage_core.cli._errors import EXIT_OK
from storage_core.cli._json import parse_json
from storage_core.cli._store import open_store
from storage_core.storage import check_key


def register(commands: Commands) -> None:
    parser = add_command(
        commands,
        "put",
        run,
        "Store a JSON value at KEY.",
        examples=[
            "storage put agent:state '{\"step\": 3}' --ttl 3600",
            "echo '[1, 2]' | storage put agent:list -",
            "storage put agent:state '{\"step\": 4}' --if-version $(storage get agent:state --entry | jq -r .version)",
        ],
    )
    parser.add_argument("key", metavar="KEY", help=KEY_HELP)
    parser.add_argument(
        "value",
        metavar="JSON",
        help="""the value as JSON, quoted for the shell: '{"a": 1}', '"text"', 42; - reads it from stdin. """
        "A value starting with - needs -- before it: put KEY -- -1.5e3",
    )
    parser.add_argument("--ttl", type=seconds, metavar="SECONDS", help="expire the key after this many seconds")
    parser.add_argument(
        "--if-version",
        metavar="V",
        type=nonempty_version,
        help="write only if KEY still has version V (from get --entry); else exit 1 and change nothing",
    )
    add_consistency_option(parser)


def run(args: argparse.Namespace) -> int:
    key = check_key(args.key)
    value = parse_json(sys.stdin.buffer.read() if args.value == "-" else args.value)
    with open_store(args) as store:
        store.write(key, value, ttl=args.ttl, consistency=args.consistency, if_version=args.if_version)
    return EXIT_OK


def nonempty_version(text: str) -> str:
    if not text:
        raise argparse.ArgumentTypeError("expected a version from storage get --entry, got an empty string")
    return text
