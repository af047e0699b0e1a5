"""The error tree every backend raises: one root, shallow, one line each."""

from __future__ import annotations


class StorageError(Exception):
    """Root of every error storage-core raises on purpose."""


class ConnectionFailed(StorageError):
    """The store could not be reached, after the configured retries."""


class AuthenticationFailed(StorageError):
    """The store refused our credentials or permissions; retrying cannot help."""


class KeyNotFound(StorageError, KeyError):
    """The key is absent (or expired)."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key

    def __str__(self) -> str:
        # KeyError.__str__ would print the repr of the whole args tuple.
        return f"key {self.key!r} not found"


class InvalidKey(StorageError, ValueError):
    """The key is not a non-empty str of at most 1024 UTF-8 bytes."""


class InvalidArgument(StorageError, ValueError):
    """An argument is not one the call accepts: a ttl, consistency, namespace or if_version, say."""


class SerializationError(StorageError, ValueError):
    """A value cannot be stored as exact JSON, or a stored value is not JSON."""


class ConfigError(StorageError, ValueError):
    """The configuration is invalid; says which file, which field and what was expected."""

    def __init__(self, message: str, *, field: str | None = None, source: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.source = source

    def with_source(self, source: str) -> ConfigError:
        """Return the same error naming the file it came from (kept if already set)."""
        if self.source is None:
            self.source = source
        return self

    def __str__(self) -> str:
        where = ": ".join(part for part in (self.source, self.field) if part)
        return f"{where}: {self.message}" if where else self.message


class BackendNotFound(StorageError, LookupError):
    """No installed backend has the requested name or URL scheme."""


class PluginError(StorageError):
    """A plugin broke the registration contract (duplicate name, bad class, nothing registered)."""


class VersionConflict(StorageError):
    """A conditional write found the key changed since the version it was given."""


class ConsistencyError(StorageError):
    """A write was applied but the requested consistency could not be confirmed."""


class ReadOnly(StorageError):
    """A write was refused, before any I/O, because the store was opened read-only."""


class NotSupported(StorageError):
    """The backend lacks an optional capability the call needs (see ``Storage.capabilities``)."""


class LeaseLost(StorageError):
    """The lease is no longer current (expired, released or taken over): nothing was written."""


class CursorExpired(StorageError):
    """A change-feed cursor is older than the retained history, so changes after it are gone."""
