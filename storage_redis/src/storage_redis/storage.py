"""``RedisStorage``: the storage-core primitives on Redis, with one retry policy.

Values are stored as plain JSON strings (``redis-cli GET`` shows them) with ``SET`` and
read with ``GET``; a version is the SHA-1 of the stored bytes, which a Lua script
computes on the server (``redis.sha1hex``) for compare-and-set, so no metadata sits
beside a value.

What each consistency level buys here:

==========  ===================================================================
level       a write returns when
==========  ===================================================================
EVENTUAL    the primary applied it (in memory; on disk per the server's own
            ``appendonly``/``appendfsync`` settings). No ``WAIT``.
STRONG      the same, and with ``wait_replicas: N`` also ``N`` replicas
            acknowledged it within ``wait_timeout_ms`` (``WAIT``, sent on the
            write's own connection, and only after a write that changed
            something), else ``ConsistencyError``: the write *is* on the
            primary and is not rolled back. With ``wait_aof: true``
            (Redis >= 7.2) the primary's AOF was also fsynced (``WAITAOF``).
            Without ``wait_replicas``/``wait_aof`` it is the same as EVENTUAL.
==========  ===================================================================

Redis's own documentation warns that ``WAIT`` does not make Redis strongly consistent:
a failover can still lose an acknowledged write that no surviving replica has. Reads go
to the primary at every level.

Every operation runs under storage-core's :class:`~storage_core.retry.RetryPolicy`;
redis-py's own retries are off (see :meth:`RedisConfig.connection_kwargs`).
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from itertools import chain
from typing import Any, ClassVar, Self, TypeVar

from redis import exceptions as rx

from storage_core.consistency import Consistency
from storage_core.errors import (
    AuthenticationFailed,
    ConfigError,
    ConnectionFailed,
    ConsistencyError,
    SerializationError,
    StorageError,
)
from storage_core.options import parse_options
from storage_core.retry import ExponentialBackoff, RetryPolicy
from storage_core.storage import Storage
from storage_redis.cluster import ClusterSource, slots_of
from storage_redis.config import SCHEMES, SECTION, RedisConfig, section_options
from storage_redis.errors import (
    OutcomeUnknown,
    PoolExhausted,
    is_auth_error,
    is_pool_exhausted,
    is_retryable,
    maybe_applied,
    server_state,
    tls_problem,
)
from storage_redis.scripts import CAS, SCRIPTS, SET_MANY_PX, Script
from storage_redis.topology import Client, Connection, ConnectionSource, connection_source

__all__ = ["RedisStorage"]

log = logging.getLogger("storage_redis")

T = TypeVar("T")
_STRONG = Consistency.STRONG
# Keys per MGET: bounds one reply's size; more keys go as several MGETs in one pipeline.
_MGET_CHUNK = 10_000
# SCAN's MATCH with these escaped matches the prefix literally, so no key needs checking again.
_GLOB_SPECIAL = str.maketrans({c: "\\" + c for c in "*?[]\\"})
# Redis quotes the first arguments of a command it does not know, a value among them.
_ARGS_QUOTED = ", with args beginning with:"


def _ttl_ms(ttl: float) -> int:
    # Rounded up, so a key never expires before its ttl; round() first drops float noise.
    return max(1, math.ceil(round(ttl * 1000, 6)))


def _run(execute: Callable[..., Any], args: Sequence[Any], script: Script | None) -> Any:
    """``execute(*args)``, loading *script* first if the server has forgotten it (restarted, flushed)."""
    if script is None:
        return execute(*args)
    try:
        return execute(*args)
    except rx.NoScriptError:
        execute("SCRIPT", "LOAD", script.source)
        return execute(*args)


def _on(connection: Connection) -> Callable[..., Any]:
    """Run a command on this very connection: send it, read its reply."""

    def execute(*args: Any) -> Any:
        connection.send_command(*args)
        return connection.read_response()

    return execute


def _confirmation(connection: Connection) -> Any:
    """The reply to the WAIT sent on *connection*, or the error in its place.

    Returned, not raised: the write before the WAIT is applied either way, so it must be
    reported as unconfirmed, never retried.
    """
    try:
        return connection.read_response()
    except Exception as exc:
        if not isinstance(exc, rx.ResponseError):
            connection.disconnect()  # a reply may be half read: this socket must not be reused
        return exc


class RedisStorage(Storage):
    """Storage on a Redis server, shared by every agent that points at it.

    Constructing does no I/O; ``initialize()`` builds the blocking connection pool,
    PINGs the server and loads the Lua scripts. *sleep* is what the retry policy waits
    with (tests inject one).
    """

    name: ClassVar[str] = "redis"
    url_schemes: ClassVar[tuple[str, ...]] = SCHEMES

    def __init__(self, config: RedisConfig, *, sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__()
        if not isinstance(config, RedisConfig):
            raise TypeError(f"RedisStorage needs a RedisConfig, got {type(config).__name__}")
        self._config = config
        self._source: ConnectionSource = connection_source(config)
        self._where = self._source.describe()
        self._secrets = config.secrets()
        self._tls = config.scheme == "rediss"
        self._policy = RetryPolicy(
            retries=config.max_retries,
            backoff=ExponentialBackoff(base=config.retry_delay_ms / 1000, cap=config.retry_max_delay_ms / 1000),
            retryable=functools.partial(is_retryable, tls=self._tls),
            sleep=sleep,
            on_retry=self._log_retry,
        )
        self._wait: tuple[Any, ...] = ()
        if config.wait_aof:
            self._wait = ("WAITAOF", 1, config.wait_replicas, config.wait_timeout_ms)
        elif config.wait_replicas:
            self._wait = ("WAIT", config.wait_replicas, config.wait_timeout_ms)
        # Whether a STRONG write waits at all; an EVENTUAL one never does.
        self._strong_waits = bool(self._wait)
        # None while closed: an operation that finds another client (or none) was cut off by close().
        self._client: Client | None = None
        # Where reads go: the primary, or with read_from_replicas at EVENTUAL, a replica.
        self._reader: Client | None = None
        # A cluster spreads a batch over its primaries: see _write_many_per_node.
        self._cluster = self._source if isinstance(self._source, ClusterSource) else None
        self._checked = False

    # -- construction -------------------------------------------------------------------

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Self:
        """Build from the ``storage.redis`` section of the config. No I/O."""
        return cls(parse_options(RedisConfig, section_options(options), section=SECTION))

    @property
    def config(self) -> RedisConfig:
        """The options this store was built with."""
        return self._config

    # -- the retry policy -----------------------------------------------------------------

    def with_retry(self, operation: Callable[[], T]) -> T:
        """Run *operation* under the backend's retry policy, translating redis-py's errors.

        Raises:
            ConnectionFailed: the server stayed unreachable (or in a state that passes,
                such as loading its data) through ``max_retries`` retries (logged as
                ``Redis connection failed after N retries``).
            PoolExhausted: no pooled connection came free within ``pool_timeout``.
            AuthenticationFailed: credentials or permissions refused; never retried.
            StorageError: the store was closed while the operation waited to retry.
        """
        return self._call(lambda _client: operation())

    def _call(self, operation: Callable[[Client], T], key: str | None = None, client: Client | None = None) -> T:
        """Run ``operation(client)`` under the retry policy, on the store's client of the moment.

        Each attempt first checks that the store still has that client: a store closed
        (and perhaps reopened) during a backoff is not reconnected by a retry.
        """
        if client is None:
            client = self._client

        def attempt(failures: int) -> T:
            if self._client is None or (client is not self._client and client is not self._reader):
                raise self._abandoned(failures)
            return operation(client)  # type: ignore[arg-type]  # None only where the template already refused

        try:
            return self._policy.call(attempt)
        except StorageError:
            raise
        except Exception as exc:
            error = self._translate(exc, key)
            if error is exc:
                raise
            raise error from exc

    def _abandoned(self, failures: int) -> StorageError:
        after = f" after {failures} failed attempt(s)" if failures else ""
        return StorageError(
            f"{self!r} was closed while an operation on it was under way{after}; the operation was "
            "abandoned (a write may or may not have been applied): initialize() the store again and retry"
        )

    def _translate(self, exc: Exception, key: str | None) -> Exception:
        where, text = self._where, self._scrub(str(exc))
        if is_auth_error(exc):
            return AuthenticationFailed(
                f"Redis at {where} refused the credentials or permissions ({text}); check username and "
                "password in storage.redis (or the url), and the ACL rules of that user; not retried"
            )
        if is_pool_exhausted(exc):
            return PoolExhausted(
                f"the connection pool for Redis at {where} is exhausted: all {self._config.max_connections} "
                f"connections stayed busy for pool_timeout={self._config.pool_timeout} s; raise "
                "max_connections or pool_timeout in storage.redis (the server itself may be fine)"
            )
        problem = tls_problem(exc, tls=self._tls)
        if problem is not None:
            return self._tls_failed(problem, text)
        if is_retryable(exc, tls=self._tls):
            return self._exhausted(exc, text)
        if isinstance(exc, rx.RedisError):
            return self._refused(exc, text, key)
        return exc

    def _tls_failed(self, problem: BaseException, text: str) -> ConnectionFailed:
        if isinstance(problem, FileNotFoundError):
            return ConnectionFailed(
                f"a TLS file for Redis at {self._where} could not be read ({text}); check the paths in "
                "ssl_ca_certs, ssl_certfile and ssl_keyfile; not retried"
            )
        return ConnectionFailed(
            f"the TLS handshake with Redis at {self._where} failed ({text}); check ssl_ca_certs (the CA that "
            "signed the server's certificate), ssl_check_hostname, and ssl_certfile/ssl_keyfile (a server "
            "with tls-auth-clients needs a client certificate); not retried"
        )

    def _exhausted(self, exc: Exception, text: str) -> ConnectionFailed:
        """The retries ran out: say whether the server was silent or answered with a state."""
        retries = self._config.max_retries
        log.error("Redis connection failed after %d retries", retries)
        state = server_state(exc)
        if state is not None:
            what, advice = state
            return ConnectionFailed(
                f"Redis at {self._where} answered, but it {what} through {retries} retries ({text}); {advice}"
            )
        hint = ""
        if self._tls and self._config.ssl_certfile is None and "EOF" in text:
            hint = "; over TLS, a server that requires client certificates hangs up like this: set ssl_certfile"
        return ConnectionFailed(
            f"Redis at {self._where} could not be reached after {retries} retries ({type(exc).__name__}: {text}); "
            "check that the server runs and is reachable, or raise max_retries/retry_delay_ms "
            f"(or socket_timeout) in storage.redis{hint}"
        )

    def _refused(self, exc: rx.RedisError, text: str, key: str | None) -> StorageError:
        """The server (or the client library) gave an error that a retry would only repeat."""
        if not isinstance(exc, rx.ResponseError):
            return StorageError(f"Redis at {self._where} failed: {type(exc).__name__}: {text}")
        if text.startswith("CROSSSLOT"):
            return StorageError(
                f"Redis Cluster at {self._where} refused an operation over keys in different hash slots ({text}): "
                "one atomic command reaches one slot only; set namespace_hash_tag: true in storage.redis so that "
                "a namespace's keys share a slot, or work on one key at a time"
            )
        if text.startswith("WRONGTYPE") and key is not None:
            return SerializationError(
                f"the value stored at key {key!r} is not a Redis string, so not JSON written through "
                "storage-core; delete it or use another key"
            )
        if isinstance(exc, rx.OutOfMemoryError):
            return StorageError(
                f"Redis at {self._where} is out of memory and refused the write ({text}); raise its "
                "maxmemory, let it evict (maxmemory-policy), or delete keys"
            )
        return StorageError(f"Redis at {self._where} refused the command: {text}")

    def _scrub(self, text: str) -> str:
        text = text.split(_ARGS_QUOTED, 1)[0]
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _log_retry(self, exc: BaseException, failures: int, delay: float) -> None:
        log.warning(
            "Redis operation on %s failed (%s: %s); retry %d of %d in %.3f s",
            self._where,
            type(exc).__name__,
            self._scrub(str(exc)),
            failures,
            self._config.max_retries,
            delay,
        )

    # -- lifecycle ----------------------------------------------------------------------

    def _connect(self) -> None:
        self._source.open()
        self._client = self._source.primary()
        eventual = self._config.read_from_replicas and self.default_consistency is Consistency.EVENTUAL
        self._reader = self._source.replica() if eventual else self._client
        self._checked = False

    def _close(self) -> None:
        self._client = self._reader = None
        self._source.close()

    def _namespace_prefix(self, namespace: str) -> str:
        if self._config.namespace_hash_tag:
            return f"{{{namespace}}}:"  # {fleet-a}: only the part in braces picks the cluster slot
        return super()._namespace_prefix(namespace)

    def _ping(self) -> None:
        self._call(lambda client: client.execute_command("PING"))
        if not self._checked:  # once per initialize(), not on every ping()
            self._load_scripts()
            if self._config.wait_aof:
                self._check_waitaof()
            self._checked = True

    def _load_scripts(self) -> None:
        """Load the scripts up front, so a write rarely meets NOSCRIPT (it still may: a restart forgets them)."""

        def load(client: Client) -> None:
            for primary in self._source.primaries(client):  # a cluster's scripts live per node
                with primary.pipeline(transaction=False) as pipe:
                    for script in SCRIPTS:
                        pipe.execute_command("SCRIPT", "LOAD", script.source)
                    # A user without SCRIPT LOAD rights (a reader, say) is refused here: left to
                    # the first write that needs the script, which then says so.
                    pipe.execute(raise_on_error=False)

        self._call(load)

    def _check_waitaof(self) -> None:
        info: dict[str, Any] = self._call(lambda client: client.execute_command("INFO"))
        version = tuple(int(p) for p in str(info.get("redis_version", "0")).split(".")[:2] if p.isdigit())
        if version < (7, 2):
            raise ConfigError(
                f"wait_aof needs Redis 7.2 or newer (WAITAOF); the server at {self._where} is "
                f"{info.get('redis_version', 'older')}: set wait_aof: false, and for local durability run the "
                "server with appendonly yes and appendfsync always",
                field=f"{SECTION}.wait_aof",
            )
        if not info.get("aof_enabled"):
            raise ConfigError(
                f"wait_aof needs the server at {self._where} to run with appendonly yes",
                field=f"{SECTION}.wait_aof",
            )

    def _describe(self) -> str:
        return self._where

    # -- writes -------------------------------------------------------------------------

    def _send_write(
        self,
        args: Sequence[Any],
        key: str | None,
        consistency: Consistency,
        script: Script | None = None,
        *,
        conditional: bool = False,
    ) -> Any:
        """Run one write command under the retry policy and return its reply.

        At STRONG with ``wait_replicas``/``wait_aof``, confirm it with WAIT/WAITAOF when it
        wrote something (*key* None: a batch; *conditional*: it may write nothing).
        """
        wait = self._strong_waits and consistency is _STRONG
        result, acks = self._call(
            lambda client: self._write_once(client, args, wait, script, conditional=conditional, key=key), key
        )
        if acks is not None:
            self._confirm(acks, key)
        return result

    def _write_once(
        self,
        client: Client,
        args: Sequence[Any],
        wait: bool,
        script: Script | None,
        *,
        conditional: bool,
        key: str | None,
    ) -> tuple[Any, Any]:
        """One attempt: the write's reply, and the reply of the WAIT that followed it (None if none did).

        WAIT covers the writes of its own connection only (and blocks only outside MULTI),
        so with *wait* one pooled connection is held for both. A write that always writes
        when it succeeds (SET, MSET) goes with its WAIT in one round trip; a *conditional*
        one, or a script that may meet NOSCRIPT, is sent first, and WAIT follows only if it
        changed something: a lost race waits for nothing.
        """
        if not wait:
            return _run(client.execute_command, args, script), None
        if key is None:  # a batch: one server holds every key (a cluster's batches go per node)
            return self._write_waited(client, args, script, conditional)
        # On a cluster, the write and its WAIT go to the primary that owns the key.
        return self._source.route(client, key, lambda node: self._write_waited(node, args, script, conditional))

    def _write_waited(
        self, client: Client, args: Sequence[Any], script: Script | None, conditional: bool
    ) -> tuple[Any, Any]:
        """The write and its WAIT on one connection of *client*'s pool."""
        pool = client.connection_pool
        connection = pool.get_connection()
        try:
            if script is None and not conditional:
                connection.send_packed_command(connection.pack_commands([args, self._wait]))
                try:
                    result = connection.read_response()
                except rx.ResponseError:
                    _confirmation(connection)  # read past the WAIT's reply, to keep the connection in step
                    raise
                return result, _confirmation(connection)
            result = _run(_on(connection), args, script)
            if not result:
                return result, None
            connection.send_command(*self._wait)
            return result, _confirmation(connection)
        except rx.ResponseError:
            raise  # a whole reply was read: the connection is in step
        except BaseException:
            connection.disconnect()  # a reply may be half read: this socket must not be reused
            raise
        finally:
            pool.release(connection)

    def _confirm(self, acks: Any, key: str | None) -> None:
        """Raise ConsistencyError when WAIT/WAITAOF failed or counted fewer acknowledgements than asked."""
        config = self._config
        what = f"the write to key {key!r}" if key is not None else "the batch write"
        applied = f"{what} is applied on the primary ({self._where}) and will not be rolled back, but"
        if isinstance(acks, Exception):
            raise ConsistencyError(
                f"{applied} not confirmed: {self._wait[0]} failed ({type(acks).__name__}: {self._scrub(str(acks))}); "
                "check the replicas (INFO replication) and, with wait_aof, that the server still runs with "
                "appendonly yes (INFO persistence)"
            ) from acks
        local, replicas = acks if config.wait_aof else (1, acks)
        missing = []
        if local < 1:
            missing.append("the primary did not confirm its AOF fsync")
        if replicas < config.wait_replicas:
            missing.append(f"only {replicas} of {config.wait_replicas} replicas acknowledged it")
        if not missing:
            return
        raise ConsistencyError(
            f"{applied} {' and '.join(missing)} within {config.wait_timeout_ms} ms; check the replicas "
            "(INFO replication) and the server's disk, or lower wait_replicas/raise wait_timeout_ms"
        )

    def _write(self, key: str, data: bytes, ttl: float | None, consistency: Consistency) -> None:
        args: tuple[Any, ...] = ("SET", key, data) if ttl is None else ("SET", key, data, "PX", _ttl_ms(ttl))
        self._send_write(args, key, consistency)

    def _write_if(
        self, key: str, data: bytes, expected: str | None, ttl: float | None, consistency: Consistency
    ) -> bool:
        wait = self._strong_waits and consistency is _STRONG
        mode, version = ("absent", "") if expected is None else ("version", expected)
        px = "" if ttl is None else _ttl_ms(ttl)
        lost_reply = False

        def attempt(client: Client) -> tuple[Any, Any]:
            nonlocal lost_reply
            args = ("EVALSHA", CAS.sha, 1, key, data, mode, version, px, "1" if lost_reply else "0")
            try:
                return self._write_once(client, args, wait, CAS, conditional=True, key=key)
            except Exception as exc:
                # The earlier attempt may have been applied with its reply lost: then the retry
                # must count finding our own bytes as success, not as a conflict.
                lost_reply = lost_reply or maybe_applied(exc)
                raise

        result, acks = self._call(attempt, key)
        if not result:
            if lost_reply:
                # Neither the expected version nor our bytes: our write was never applied, or
                # was applied and then overwritten. A False here would make update() run fn
                # again, maybe applying it twice.
                raise OutcomeUnknown(
                    f"the connection to Redis at {self._where} broke after the conditional write to key {key!r} "
                    "was sent, and the key has changed since: the write may or may not have been applied; "
                    "read the key before retrying"
                )
            return False
        if acks is not None:
            self._confirm(acks, key)
        return True

    def _delete(self, key: str, consistency: Consistency) -> bool:
        return bool(self._send_write(("DEL", key), key, consistency, conditional=True))

    def _write_many(self, items: Sequence[tuple[str, bytes]], ttl: float | None, consistency: Consistency) -> None:
        if self._cluster is not None:
            self._write_many_per_node(self._cluster, items, ttl, consistency)
            return
        # One command, so one round trip and all or none: MSET, or a script of SET ... PX.
        if ttl is None:
            self._send_write(["MSET", *chain.from_iterable(items)], None, consistency)
            return
        args: list[Any] = ["EVALSHA", SET_MANY_PX.sha, len(items)]
        args.extend(key for key, _ in items)
        args.extend(data for _, data in items)
        args.append(_ttl_ms(ttl))
        self._send_write(args, None, consistency, SET_MANY_PX)

    def _write_many_per_node(
        self, cluster: ClusterSource, items: Sequence[tuple[str, bytes]], ttl: float | None, consistency: Consistency
    ) -> None:
        """Cluster: one MSET (or SET ... PX script) per slot, each node's in one round trip.

        All or none per slot only: a batch over several slots is not atomic (with
        ``namespace_hash_tag`` a namespace is one slot, so its batches are). At STRONG each
        node's commands end with a WAIT on the same connection, and every node must confirm.
        """
        values = dict(items)
        groups: list[tuple[str, Sequence[Any]]] = []
        for keys in slots_of(values).values():
            if ttl is None:
                groups.append((keys[0], ["MSET", *chain.from_iterable((k, values[k]) for k in keys)]))
            else:
                args = ["EVALSHA", SET_MANY_PX.sha, len(keys), *keys, *(values[k] for k in keys), _ttl_ms(ttl)]
                groups.append((keys[0], args))
        wait = self._wait if self._strong_waits and consistency is _STRONG else None

        def reload(node: Client) -> None:
            node.execute_command("SCRIPT", "LOAD", SET_MANY_PX.source)

        _, confirmations = self._call(lambda client: cluster.per_node(client, groups, wait, on_noscript=reload))
        for acks in confirmations:
            self._confirm(acks, None)

    # -- reads --------------------------------------------------------------------------

    def _read(self, key: str) -> bytes | None:
        data: bytes | None = self._call(lambda client: client.execute_command("GET", key), key, self._reader)
        return data

    def _exists(self, key: str) -> bool:
        return bool(self._call(lambda client: client.execute_command("EXISTS", key), key, self._reader))

    def _read_many(self, keys: Sequence[str]) -> Sequence[bytes | None]:
        # A cluster's MGET is one per slot already, pipelined per node (ClusterClient).
        if self._cluster is not None or len(keys) <= _MGET_CHUNK:
            found: list[bytes | None] = self._call(
                lambda client: client.execute_command("MGET", *keys), client=self._reader
            )
            return found
        chunks = [keys[i : i + _MGET_CHUNK] for i in range(0, len(keys), _MGET_CHUNK)]

        def attempt(client: Client) -> list[bytes | None]:
            with client.pipeline(transaction=False) as pipe:
                for chunk in chunks:
                    pipe.execute_command("MGET", *chunk)
                # Not raise_on_error: redis-py would prefix the error with the command and its arguments.
                replies = pipe.execute(raise_on_error=False)
            for reply in replies:
                if isinstance(reply, Exception):
                    raise reply
            return [data for reply in replies for data in reply]

        return self._call(attempt, client=self._reader)

    def _iter_keys(self, prefix: str) -> Iterator[str]:
        client = self._client
        pattern = prefix.translate(_GLOB_SPECIAL) + "*"
        # A cluster's keys are spread over its primaries: each is scanned in turn (a prefix
        # that opens with a hash tag lives on one of them).
        primaries: list[Client] = self._call(lambda client: self._source.primaries(client, prefix))
        for primary in primaries:
            yield from self._scan(client, primary, pattern)

    def _scan(self, client: Client | None, primary: Client, pattern: str) -> Iterator[str]:
        """The keys matching *pattern* on *primary*, page by page, while the store holds *client*."""
        count = self._config.scan_count
        cursor = 0
        while True:
            if self._client is not client:  # closed, or closed and opened again, since the listing began
                raise StorageError(f"{self!r} was closed while listing keys; list them again once it is initialized")
            scan = functools.partial(primary.execute_command, "SCAN", cursor, "MATCH", pattern, "COUNT", count)
            # Called before the loop moves on, so the lambda sees this page's scan.
            reply: tuple[int, list[bytes]] = self._call(lambda _client: scan(), client=client)  # noqa: B023
            cursor, batch = reply
            for raw in batch:
                try:
                    yield raw.decode()
                except UnicodeDecodeError:
                    continue  # not a key storage-core could have written
            if not cursor:
                return
