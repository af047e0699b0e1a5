"""Which store a command works on: -c, else $STORAGE_CONFIG, else ./agent.yaml or the default.

The store is opened with ``open_storage`` exactly as an agent opens it, so the CLI sees
what the agent sees.
"""

from __future__ import annotations

import argparse
import os

from storage_core.errors import ConfigError
from storage_core.factory import is_url, open_storage
from storage_core.storage import Storage

CONFIG_ENV = "STORAGE_CONFIG"
"""Environment variable holding the default for ``-c/--config``."""


def config_source(args: argparse.Namespace) -> str | None:
    """-c, else $STORAGE_CONFIG, else None (./agent.yaml or the embedded default)."""
    config: str | None = args.config
    return config or os.environ.get(CONFIG_ENV) or None


def open_store(args: argparse.Namespace, *, read_only: bool = False) -> Storage:
    """The store the config names, initialized; callers close it with ``with``.

    A command that only reads passes *read_only*: it then creates nothing (a missing
    local file is "no store at PATH", not a new empty database) and cannot write.
    """
    return open_storage(config_source(args), read_only=True if read_only else None)


def config_hint(exc: BaseException) -> str:
    """What the command line adds to a "config file not found": the flag the Python API has not."""
    if isinstance(exc, ConfigError) and exc.field is None and exc.message.startswith("config file not found"):
        source = exc.source or ""
        if not is_url(source) and not os.path.exists(source):
            return f"; pass an existing file with -c/--config (or ${CONFIG_ENV}), or neither"
    return ""
