"""Which store a command works on: -c, else $STORAGE_CONFIG, else ./agent.yaml or the default.

The store is opened with ``open_storage`` exactly as an agent opens it, so the CLI sees
what the agent sees.
"""

from __future__ import annotations

import argparse
import os

from storage_core.factory import open_storage
from storage_core.storage import Storage

CONFIG_ENV = "STORAGE_CONFIG"
"""Environment variable holding the default for ``-c/--config``."""


def config_source(args: argparse.Namespace) -> str | None:
    """-c, else $STORAGE_CONFIG, else None (./agent.yaml or the embedded default)."""
    config: str | None = args.config
    return config or os.environ.get(CONFIG_ENV) or None


def open_store(args: argparse.Namespace) -> Storage:
    """The store the config names, initialized; callers close it with ``with``."""
    return open_storage(config_source(args))
