"""storage-core: one small synchronous API for agent state, with pluggable backends.

Public: this package's ``__all__``, ``storage_core.backend`` (for backend authors) and
``storage_core.testing`` (the conformance suite). Every other module is internal.
"""

from storage_core.capabilities import Capability
from storage_core.config import StorageConfig, load_config
from storage_core.consistency import Consistency
from storage_core.coordination import Change, Lease
from storage_core.errors import (
    AuthenticationFailed,
    BackendNotFound,
    ConfigError,
    ConnectionFailed,
    ConsistencyError,
    CursorExpired,
    InvalidArgument,
    InvalidKey,
    KeyNotFound,
    LeaseLost,
    NotSupported,
    PluginError,
    ReadOnly,
    SerializationError,
    StorageError,
    VersionConflict,
)
from storage_core.factory import open_storage
from storage_core.hookspecs import hookimpl
from storage_core.registry import BackendInfo, available_backends
from storage_core.storage import Entry, Storage

__all__ = [
    "AuthenticationFailed",
    "BackendInfo",
    "BackendNotFound",
    "Capability",
    "Change",
    "ConfigError",
    "ConnectionFailed",
    "Consistency",
    "ConsistencyError",
    "CursorExpired",
    "Entry",
    "InvalidArgument",
    "InvalidKey",
    "KeyNotFound",
    "Lease",
    "LeaseLost",
    "NotSupported",
    "PluginError",
    "ReadOnly",
    "SerializationError",
    "Storage",
    "StorageConfig",
    "StorageError",
    "VersionConflict",
    "available_backends",
    "hookimpl",
    "load_config",
    "open_storage",
]
