"""stdout for data only, stderr for one-line diagnostics, and no password in either."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
from collections.abc import Iterator

from storage_core.redact import redact_url

PROG = "storage"

# Anything shaped like a URL in a message is passed through redact_url before printing.
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
_NEWLINES = re.compile(r"\s*\n\s*")


def out(line: str) -> None:
    """One line of data on stdout."""
    sys.stdout.write(line + "\n")


def out_utf8(data: bytes) -> None:
    """One line of data on stdout as UTF-8 whatever the locale, as JSON consumers expect."""
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None:  # stdout replaced by a text-only stream
        sys.stdout.write(data.decode() + "\n")
    else:
        buffer.write(data + b"\n")


def note(message: str) -> None:
    """One line of diagnostics on stderr."""
    sys.stderr.write(f"{PROG}: {scrub(message)}\n")


def one_line(text: str) -> str:
    return _NEWLINES.sub(" ", text.strip())


def scrub(text: str) -> str:
    """*text* with the password of every URL in it replaced by ``***``."""
    return _URL.sub(lambda match: redact_url(match.group(0)), text)


def discard_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    with contextlib.suppress(OSError, ValueError):  # no real file behind stdout: nothing to do
        fd = sys.stdout.fileno()
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, fd)
        os.close(devnull)


@contextlib.contextmanager
def logging_to_stderr(debug: bool) -> Iterator[None]:
    """With --debug, every log record goes to stderr; without it, none.

    Without it the error line already says what failed: a backend's log line about the
    same failure would only repeat it. A handler on the root logger (even a null one)
    also keeps Python's last-resort handler from printing records unformatted.
    """
    root = logging.getLogger()
    handler: logging.Handler
    if debug:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_Formatter("%(levelname)s %(name)s: %(message)s"))
    else:
        handler = logging.NullHandler()
    previous = root.level
    root.addHandler(handler)
    if debug:
        root.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"{PROG}: {scrub(super().format(record))}"
