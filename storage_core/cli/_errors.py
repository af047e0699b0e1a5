"""How a failure reaches the user: one line on stderr, exit status 1, a traceback only with --debug."""

from __future__ import annotations

import sys
import traceback

from storage_core.cli._output import PROG, one_line, scrub
from storage_core.cli._store import config_hint
from storage_core.errors import StorageError

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2  # what argparse uses
EXIT_INTERRUPTED = 130  # 128 + SIGINT: what a shell shows for Ctrl-C
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: what `yes | head -1` shows for yes

_DEBUG_HINT = "rerun with --debug to see the traceback"


class CommandError(Exception):
    """A failure reported as one line on stderr with exit status 1, no traceback."""

    def __init__(self, message: str, *, unexpected: bool = False) -> None:
        super().__init__(message)
        self.unexpected = unexpected


def report(exc: Exception, *, debug: bool) -> int:
    """Print *exc* as one line (after its traceback with --debug); return the exit status."""
    if isinstance(exc, CommandError):
        message, unexpected = str(exc), exc.unexpected
    elif isinstance(exc, StorageError):  # its message says what failed and what to do
        message, unexpected = f"{exc}{config_hint(exc)}", False
    else:
        message, unexpected = describe_unexpected(exc), True
    if debug:
        sys.stderr.write(scrub("".join(traceback.format_exception(exc))))
    elif unexpected:
        message = f"{message} ({_DEBUG_HINT})"
    sys.stderr.write(f"{PROG}: error: {scrub(one_line(message))}\n")
    return EXIT_ERROR


def describe_unexpected(exc: BaseException) -> str:
    return f"unexpected {type(exc).__name__}: {exc}"
