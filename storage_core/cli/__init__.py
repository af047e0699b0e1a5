"""The ``storage`` command: look at and edit a store from a shell or a script.

stdout carries only data (values, keys, the backends table, the doctor's report) so it
can be piped; diagnostics go to stderr as one line, ``storage: error: ...``, and a
traceback only with ``--debug``.

One module per command, each with ``register(commands)`` adding its subparser and
``run(args)`` doing the work; shared helpers live in the ``_`` modules. Command modules
import only what every command may pay for at start-up: anything heavy (rich, a backend's
client library) is imported inside the function that needs it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib import metadata

from storage_core.cli import backends, bench, delete, demo, doctor, export, get, import_, keys, migrate, put, ttl
from storage_core.cli._args import Handler, add_common_options
from storage_core.cli._errors import EXIT_BROKEN_PIPE, EXIT_INTERRUPTED, EXIT_USAGE, report
from storage_core.cli._output import PROG, discard_stdout, logging_to_stderr
from storage_core.cli._store import CONFIG_ENV
from storage_core.config import DEFAULT_CONFIG_FILE

__all__ = ["CONFIG_ENV", "main"]

# In the order `storage --help` lists them.
_COMMANDS = (demo, backends, doctor, get, put, delete, keys, ttl, export, import_, migrate, bench)

_EPILOG = f"""\
config:
  -c/--config takes an agent.yaml file or a URL (local:///abs/path/state.db,
  redis://[user:pass@]host:port/db, ...). Without it: ${CONFIG_ENV} if set, else
  ./{DEFAULT_CONFIG_FILE} if present, else the embedded default (a local SQLite file).
  get, keys, ttl and export open the store read-only: they create nothing, and a missing
  local file is "no store at PATH".

output:
  stdout carries only data, so it can be piped; messages go to stderr. Colour and
  live progress only when stderr is a terminal; NO_COLOR is honoured.

exit status:
  0    success
  1    failure: a config, connection or data error, the key was not found
       (get, ttl; delete without --missing-ok), put --if-version found it changed,
       a demo check failed, migrate's verify found a difference, or import
       skipped a malformed line
  2    usage error: bad arguments
  130  interrupted (Ctrl-C)
  141  stdout was closed early, e.g. piped into head
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status (the console script exits with it)."""
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors: argparse has printed
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    with logging_to_stderr(args.debug):
        return _dispatch(args)


def _dispatch(args: argparse.Namespace) -> int:
    handler: Handler = args.handler
    try:
        code = handler(args)
        sys.stdout.flush()  # a closed pipe surfaces here, not at interpreter exit
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        discard_stdout()
        return EXIT_BROKEN_PIPE
    except Exception as exc:
        return report(exc, debug=args.debug)
    return code


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Inspect and edit an agent's storage (the store agent.yaml configures).",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s (storage-core) {_version()}")
    add_common_options(parser, top_level=True)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", dest="command", required=True)
    for command in _COMMANDS:
        command.register(commands)
    return parser


def _version() -> str:
    try:
        return metadata.version("storage-core")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "unknown"
