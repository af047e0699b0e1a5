"""The embedded default backend of storage-core: one SQLite file, no server."""

from storage_local.backend import LocalStorage
from storage_local.config import LocalConfig, default_path

__all__ = ["LocalConfig", "LocalStorage", "default_path"]
