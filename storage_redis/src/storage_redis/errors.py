"""What a redis-py error means to us: retry it, refuse it, or report it as what it is.

Order matters (see REDIS-NOTES): redis-py's authentication errors and its pool's
"No connection available." are subclasses of its ``ConnectionError``, so they are
recognised before anything that would retry a connection error.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator

from redis import exceptions as rx

from storage_core.backend import ConnectionFailed

__all__ = [
    "OutcomeUnknown",
    "PoolExhausted",
    "is_auth_error",
    "is_pool_exhausted",
    "is_retryable",
    "maybe_applied",
    "server_state",
    "tls_problem",
]


class PoolExhausted(ConnectionFailed):
    """Every pooled connection stayed busy for ``pool_timeout``: the pool is too small, not the server down."""


class OutcomeUnknown(ConnectionFailed):
    """The connection broke after a conditional write was sent, and the key changed since: read it before retrying."""


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
# Server states that pass, each with what it means and what to do when it does not.
# redis-py's parser gives each its own class (and drops the code from the message), except
# BUSY, which stays a plain ResponseError that starts with its code.
_STATES: tuple[tuple[type[BaseException], str, str], ...] = (
    (
        rx.ReadOnlyError,
        "is a read-only replica (READONLY)",
        "point url at the primary (a failover in progress also looks like this until a replica is promoted)",
    ),
    (
        rx.BusyLoadingError,
        "is still loading its dataset into memory (LOADING)",
        "wait until it has loaded, or raise max_retries/retry_delay_ms to wait longer",
    ),
    (
        rx.MasterDownError,  # before ClusterDownError, its base class
        "is a replica that lost its link to the primary (MASTERDOWN)",
        "point url at the primary, or restore the replication link",
    ),
    (rx.TryAgainError, "is moving the key between cluster nodes (TRYAGAIN)", "retry later"),
    (rx.ClusterDownError, "belongs to a cluster that is down (CLUSTERDOWN)", "check the cluster's state"),
)
_BUSY = (
    "is busy running a script or function (BUSY)",
    "end it with SCRIPT KILL or FUNCTION KILL, or raise max_retries/retry_delay_ms to wait longer",
)
_RETRYABLE_TYPES: tuple[type[BaseException], ...] = (
    rx.ConnectionError,
    rx.TimeoutError,
    *(state for state, _, _ in _STATES),
)
_POOL_EMPTY = "No connection available."
# These mean the peer went away mid-handshake, as a restarting server does: retried.
_TLS_TRANSIENT = (ssl.SSLEOFError, ssl.SSLZeroReturnError, ssl.SSLSyscallError)


def _code(exc: BaseException) -> str:
    text = str(exc)
    return text.split(" ", 1)[0] if text else ""


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: BaseException | None = exc
    for _ in range(8):  # redis-py wraps once or twice; a bound keeps a cycle harmless
        if seen is None:
            return
        yield seen
        seen = seen.__cause__ or seen.__context__


def is_auth_error(exc: BaseException) -> bool:
    """The server refused our credentials or permissions: never retried."""
    if isinstance(exc, _AUTH_TYPES):
        return True
    if not isinstance(exc, rx.ResponseError):
        return False
    return _code(exc) in _AUTH_CODES or str(exc).startswith(_AUTH_IN_SCRIPT)


def is_pool_exhausted(exc: BaseException) -> bool:
    """The blocking pool had no free connection within its timeout.

    ``BlockingConnectionPool`` raises a plain ``ConnectionError`` for it; the
    ``MaxConnectionsError`` of the non-blocking pool never comes from it.
    """
    return type(exc) is rx.ConnectionError and str(exc) == _POOL_EMPTY


def tls_problem(exc: BaseException, *, tls: bool) -> BaseException | None:
    """The certificate, key or handshake error under *exc* that retrying cannot cure, if any.

    A missing file counts on a TLS connection only: there it is a certificate or key,
    while on a unix socket it is the socket, which comes back with its server.
    """
    if not tls:
        return None
    for cause in _chain(exc):
        if isinstance(cause, ssl.SSLError) and not isinstance(cause, _TLS_TRANSIENT):
            return cause
        if isinstance(cause, FileNotFoundError):
            return cause
    return None


def server_state(exc: BaseException) -> tuple[str, str] | None:
    """What the server said about itself, and what to do, for a state that passes; else None."""
    for kind, what, advice in _STATES:
        if isinstance(exc, kind):
            return what, advice
    if isinstance(exc, rx.ResponseError) and _code(exc) == "BUSY":
        return _BUSY
    return None


def is_retryable(exc: BaseException, *, tls: bool = False) -> bool:
    """A lost or refused connection, a timeout, or a server state that passes."""
    if is_auth_error(exc) or is_pool_exhausted(exc) or tls_problem(exc, tls=tls):
        return False
    return isinstance(exc, _RETRYABLE_TYPES) or server_state(exc) is not None


def maybe_applied(exc: BaseException) -> bool:
    """Whether the command may have reached the server before *exc* (its reply lost).

    False when the failure was in connecting, before anything was sent, and when the
    server answered with an error: it refused the command (the states that pass refuse
    it before running it).
    """
    if isinstance(exc, (rx.ResponseError, rx.BusyLoadingError)):
        return False
    text = str(exc)
    before_send = " connecting to " in text or text.startswith(("Timeout connecting", "Error connecting"))
    return not (before_send or is_pool_exhausted(exc) or is_auth_error(exc))
