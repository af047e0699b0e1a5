"""The declared API for backend authors: everything a backend needs, in one module.

A backend distribution imports only from ``storage_core`` and ``storage_core.backend``;
every other module inside ``storage_core`` is internal and may change without notice.
The bundled backends (``storage_local``, ``storage_redis``) follow the same rule, and a
test holds them to it, so this module is always enough to write one.
"""

from __future__ import annotations

from storage_core.capabilities import Capability
from storage_core.consistency import Consistency
from storage_core.coordination import Change, ChangeKind, Fence, Lease, Outcome, RawChange
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
from storage_core.hookspecs import RegisterBackend
from storage_core.options import check_fields, file_path, parse_options, seal_secret_fields, secret
from storage_core.redact import Secret, redact_url
from storage_core.retry import ExponentialBackoff, RetryPolicy
from storage_core.storage import Entry, Storage
from storage_core.versions import content_version

__all__ = [
    "AuthenticationFailed",
    "BackendNotFound",
    "Capability",
    "Change",
    "ChangeKind",
    "ConfigError",
    "ConnectionFailed",
    "Consistency",
    "ConsistencyError",
    "CursorExpired",
    "Entry",
    "ExponentialBackoff",
    "Fence",
    "InvalidArgument",
    "InvalidKey",
    "KeyNotFound",
    "Lease",
    "LeaseLost",
    "NotSupported",
    "Outcome",
    "PluginError",
    "RawChange",
    "ReadOnly",
    "RegisterBackend",
    "RetryPolicy",
    "Secret",
    "SerializationError",
    "Storage",
    "StorageError",
    "VersionConflict",
    "check_fields",
    "content_version",
    "file_path",
    "parse_options",
    "redact_url",
    "seal_secret_fields",
    "secret",
]
