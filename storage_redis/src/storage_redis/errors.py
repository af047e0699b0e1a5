"""What a redis-py error means to us: retry it, refuse it, or report it as what it is.

Order matters (see REDIS-NOTES): redis-py's authentication errors and its pool's
"No connection available." are subclasses of its ``ConnectionError``, so they are
recognised before anything that would retry a connection error.
"""

from __future__ import annotations

import ssl

from redis import exceptions as rx

from storage_core.errors import ConnectionFailed

__all__ = ["PoolExhausted", "is_auth_error", "is_pool_exhausted", "is_retryable", "is_tls_error", "maybe_applied"]


class PoolExhausted(ConnectionFailed):
    """Every pooled connection stayed busy for ``pool_timeout``: the pool is too small, not the server down."""


_AUTH_TYPES: tuple[type[BaseException], ...] = (
    rx.AuthenticationError,
    rx.AuthorizationError,
    rx.NoPermissionError,
    rx.AuthenticationWrongNumberOfArgsError,
)
# Error codes that arrive as a plain ResponseError in some paths (inside scripts, say).
_AUTH_CODES = ("NOAUTH", "WRONGPASS", "NOPERM")
# An ACL refusal met inside a Lua script comes back as a plain script error.
_AUTH_IN_SCRIPT = ("The user executing the script can't",)
# Server states that pass: a dataset loading, a busy script, a failover in progress.
_TRANSIENT_TYPES: tuple[type[BaseException], ...] = (
    rx.BusyLoadingError,
    rx.ReadOnlyError,
    rx.TryAgainError,
    rx.ClusterDownError,
)
_RETRYABLE_TYPES: tuple[type[BaseException], ...] = (rx.ConnectionError, rx.TimeoutError, *_TRANSIENT_TYPES)
_TRANSIENT_CODES = ("LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN", "READONLY")
_POOL_EMPTY = "No connection available."
# The non-blocking pools' error; redis-py added the class after 5.0.
_MAX_CONNECTIONS: tuple[type[BaseException], ...] = tuple(
    cls for cls in [getattr(rx, "MaxConnectionsError", None)] if isinstance(cls, type)
)


def _code(exc: BaseException) -> str:
    text = str(exc)
    return text.split(" ", 1)[0] if text else ""


def is_auth_error(exc: BaseException) -> bool:
    """The server refused our credentials or permissions: never retried."""
    if isinstance(exc, _AUTH_TYPES):
        return True
    if not isinstance(exc, rx.ResponseError):
        return False
    return _code(exc) in _AUTH_CODES or str(exc).startswith(_AUTH_IN_SCRIPT)


def is_pool_exhausted(exc: BaseException) -> bool:
    """The blocking pool had no free connection within its timeout."""
    if isinstance(exc, _MAX_CONNECTIONS):
        return True
    return type(exc) is rx.ConnectionError and str(exc) == _POOL_EMPTY


def is_tls_error(exc: BaseException) -> bool:
    """The server's certificate was refused: a configuration problem that retrying cannot cure."""
    if isinstance(exc.__context__, ssl.SSLCertVerificationError):
        return True
    return isinstance(exc, rx.ConnectionError) and "CERTIFICATE_VERIFY_FAILED" in str(exc)


def is_retryable(exc: BaseException) -> bool:
    """A lost or refused connection, a timeout, or a server state that passes."""
    if is_auth_error(exc) or is_pool_exhausted(exc) or is_tls_error(exc):
        return False
    if isinstance(exc, _RETRYABLE_TYPES):
        return True
    return isinstance(exc, rx.ResponseError) and _code(exc) in _TRANSIENT_CODES


def maybe_applied(exc: BaseException) -> bool:
    """Whether the command may have reached the server before *exc* (its reply lost).

    False only when the failure was in connecting, before anything was sent.
    """
    text = str(exc)
    before_send = " connecting to " in text or text.startswith(("Timeout connecting", "Error connecting"))
    return not (before_send or is_pool_exhausted(exc) or is_auth_error(exc))
