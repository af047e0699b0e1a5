"""Output files that are either complete or absent: a failed export never leaves half a backup."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import BinaryIO

from storage_core.cli._errors import CommandError


@contextlib.contextmanager
def complete_or_nothing(path: str) -> Iterator[BinaryIO]:
    """A file that appears at *path* only once the block succeeds, replacing what was there.

    Written beside *path* under a temporary name (owner-only, as ``mkstemp`` creates it:
    an export holds the store's data), synced, then renamed over *path* in one step.
    """
    import tempfile  # noqa: PLC0415 - only export -o needs it; the CLI's start-up should not pay

    folder = os.path.dirname(os.path.abspath(path))
    try:
        fd, temporary = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".partial")
    except OSError as exc:
        raise CommandError(f"cannot write {path}: {exc.strerror}; check the folder exists and is writable") from None
    try:
        with os.fdopen(fd, "wb") as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
