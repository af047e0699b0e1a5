"""What a redis-py error means to us: retry it, refuse it, or report it as what it is.

The classifiers (``is_retryable`` and its kin) tell the retry policy what to retry;
:func:`translate` then turns what is left into a storage-core error, by the first row of
one table that matches, in the manner of ``storage_local.sqlite_errors``.

Order matters (see REDIS-NOTES): redis-py's authentication errors and its pool's
"No connection available." are subclasses of its ``ConnectionError``, so they are
recognised before anything that would retry a connection error.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from redis import exceptions as rx

from storage_core.backend import (
    AuthenticationFailed,
    ConnectionFailed,
    SerializationError,
    StorageError,
)
from storage_redis.config import RedisConfig
from storage_redis.tls import TLSHandshakeTimedOut

__all__ = [
    "MessageContext",
    "OutcomeUnknown",
    "PoolExhausted",
    "is_auth_error",
    "is_pool_exhausted",
    "is_retryable",
    "maybe_applied",
    "server_state",
    "speaks_no_tls",
    "tls_problem",
    "translate",
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
# What OpenSSL says when the bytes that came back are no TLS record: a plain-text reply.
_NOT_TLS_REASONS = ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG", "UNKNOWN_PROTOCOL")


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
        if isinstance(cause, (FileNotFoundError, TLSHandshakeTimedOut)):
            return cause
    return None


def speaks_no_tls(exc: BaseException, *, tls: bool) -> bool:
    """The server answered TCP but not TLS: silent through the handshake, or a reply that is no TLS record.

    What a ``rediss://`` URL pointed at a plain port meets; retrying cannot change it.
    """
    problem = tls_problem(exc, tls=tls)
    if isinstance(problem, TLSHandshakeTimedOut):
        return True
    return isinstance(problem, ssl.SSLError) and getattr(problem, "reason", None) in _NOT_TLS_REASONS


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
    # Sentinel: redis-py's word for READONLY from a demoted primary, which refused the command.
    before_send = before_send or text == "The previous master is now a slave"
    return not (before_send or is_pool_exhausted(exc) or is_auth_error(exc))


# -- translation: one table, first match wins ----------------------------------------------

# Redis quotes the first arguments of a command it does not know, a value among them.
_ARGS_QUOTED = ", with args beginning with:"


@dataclass(frozen=True, slots=True)
class MessageContext:
    """What a message about one store may say (where it is, its limits) and the secrets it must not."""

    server: str
    retries: int
    max_connections: int
    pool_timeout: float
    tls: bool
    client_certificate: bool
    secrets: tuple[str, ...] = ()

    @classmethod
    def of(cls, config: RedisConfig, server: str) -> MessageContext:
        return cls(
            server=server,
            retries=config.max_retries,
            max_connections=config.max_connections,
            pool_timeout=config.pool_timeout,
            tls=config.scheme == "rediss",
            client_certificate=config.ssl_certfile is not None,
            secrets=config.secrets(),
        )

    def scrub(self, text: str) -> str:
        """*text* without any secret, and without the arguments Redis echoes back (a value may be one)."""
        text = text.split(_ARGS_QUOTED, 1)[0]
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text


# A row matches when its test returns the extra fields its message needs (None: no match).
_Test = Callable[[BaseException, MessageContext, str | None], Mapping[str, str] | None]
_NONE: Mapping[str, str] = {}


def _when(matches: Callable[[BaseException], bool]) -> _Test:
    return lambda exc, context, key: _NONE if matches(exc) else None


def _kind(kind: type[BaseException]) -> _Test:
    return _when(lambda exc: isinstance(exc, kind))


def _tls_file(exc: BaseException, context: MessageContext, key: str | None) -> Mapping[str, str] | None:
    return _NONE if isinstance(tls_problem(exc, tls=context.tls), FileNotFoundError) else None


def _plain_server(exc: BaseException, context: MessageContext, key: str | None) -> Mapping[str, str] | None:
    return _NONE if speaks_no_tls(exc, tls=context.tls) else None


def _tls_handshake(exc: BaseException, context: MessageContext, key: str | None) -> Mapping[str, str] | None:
    return _NONE if tls_problem(exc, tls=context.tls) is not None else None


def _state_persisted(exc: BaseException, context: MessageContext, key: str | None) -> Mapping[str, str] | None:
    state = server_state(exc) if is_retryable(exc, tls=context.tls) else None
    return None if state is None else {"what": state[0], "advice": state[1]}


def _unreachable(exc: BaseException, context: MessageContext, key: str | None) -> Mapping[str, str] | None:
    if not is_retryable(exc, tls=context.tls):
        return None
    hint = ""
    text = str(exc)
    # A server that hangs up mid-handshake shows as an EOF, or as a reset when our bytes
    # were still unread on its side: which one is a matter of timing.
    hung_up = "EOF" in text or "reset by peer" in text
    if context.tls and not context.client_certificate and hung_up:
        hint = "; over TLS, a server that requires client certificates hangs up like this: set ssl_certfile"
    return {"hint": hint}


def _wrong_type(exc: BaseException, context: MessageContext, key: str | None) -> Mapping[str, str] | None:
    wrong = isinstance(exc, rx.ResponseError) and str(exc).startswith("WRONGTYPE") and key is not None
    return _NONE if wrong else None


def _cross_slot(exc: BaseException, context: MessageContext, key: str | None) -> Mapping[str, str] | None:
    # The server's CROSSSLOT (redis-py drops the code), or redis-py's own refusal before sending.
    crossing = isinstance(exc, rx.ClusterCrossSlotError) or "must map to the same key slot" in str(exc)
    return _NONE if crossing else None


_RULES: tuple[tuple[_Test, type[StorageError], str], ...] = (
    (
        _when(is_auth_error),
        AuthenticationFailed,
        "Redis at {where} refused the credentials or permissions ({text}); check username and password in "
        "storage.redis (or the url), and the ACL rules of that user; not retried",
    ),
    (
        _when(is_pool_exhausted),
        PoolExhausted,
        "the connection pool for Redis at {where} is exhausted: all {max_connections} connections stayed busy "
        "for pool_timeout={pool_timeout} s; raise max_connections or pool_timeout in storage.redis (the server "
        "itself may be fine)",
    ),
    (
        _tls_file,
        ConnectionFailed,
        "a TLS file for Redis at {where} could not be read ({text}); check the paths in ssl_ca_certs, "
        "ssl_certfile and ssl_keyfile; not retried",
    ),
    (
        _plain_server,
        ConnectionFailed,
        "Redis at {where} accepted the TCP connection but not the TLS handshake ({text}): the server may not "
        "speak TLS; use a redis:// URL for a plain port, or point url at the server's tls-port; not retried",
    ),
    (
        _tls_handshake,
        ConnectionFailed,
        "the TLS handshake with Redis at {where} failed ({text}); check ssl_ca_certs (the CA that signed the "
        "server's certificate), ssl_check_hostname, and ssl_certfile/ssl_keyfile (a server with "
        "tls-auth-clients needs a client certificate); not retried",
    ),
    (
        _state_persisted,
        ConnectionFailed,
        "Redis at {where} answered, but it {what} through {retries} retries ({text}); {advice}",
    ),
    (
        _unreachable,
        ConnectionFailed,
        "Redis at {where} could not be reached after {retries} retries ({type}: {text}); check that the server "
        "runs and is reachable, or raise max_retries/retry_delay_ms (or socket_timeout) in storage.redis{hint}",
    ),
    (
        _wrong_type,
        SerializationError,
        "the value stored at key {key!r} is not a Redis string, so not JSON written through storage-core; "
        "delete it or use another key",
    ),
    (
        _kind(rx.OutOfMemoryError),
        StorageError,
        "Redis at {where} is out of memory and refused the write ({text}); raise its maxmemory, let it evict "
        "(maxmemory-policy), or delete keys",
    ),
    (
        _cross_slot,
        StorageError,
        "Redis Cluster at {where} refused an operation over keys in different hash slots ({text}): one atomic "
        "command reaches one slot only; set namespace_hash_tag: true in storage.redis so that a namespace's keys "
        "share a slot, or work on one key at a time",
    ),
    (_kind(rx.ResponseError), StorageError, "Redis at {where} refused the command: {text}"),
    (_kind(rx.RedisError), StorageError, "Redis at {where} failed: {type}: {text}"),
)


def translate(exc: Exception, context: MessageContext, key: str | None = None) -> Exception:
    """The storage-core error for *exc*, met on the store *context* describes; *exc* itself if not redis-py's.

    Called once the retry policy has given up, so a retryable error means the retries ran out.
    """
    for test, kind, message in _RULES:
        extra = test(exc, context, key)
        if extra is not None:
            fields = {
                "where": context.server,
                "text": context.scrub(str(exc)),
                "type": type(exc).__name__,
                "key": key,
                "retries": context.retries,
                "max_connections": context.max_connections,
                "pool_timeout": context.pool_timeout,
            }
            return kind(message.format(**fields, **extra))
    return exc
