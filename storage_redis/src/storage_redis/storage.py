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
            write's own connection), else ``ConsistencyError``: the write *is*
            on the primary and is not rolled back. With ``wait_aof: true``
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
from storage_redis.config import SCHEMES, SECTION, RedisConfig
from storage_redis.errors import (
    PoolExhausted,
    is_auth_error,
    is_pool_exhausted,
    is_retryable,
    maybe_applied,
    server_state,
    tls_problem,
)
from storage_redis.scripts import CAS, SET_MANY_PX, Script
from storage_redis.topology import Client, ConnectionSource, connection_source

__all__ = ["RedisStorage"]

log = logging.getLogger("storage_redis")

T = TypeVar("T")
_STRONG = Consistency.STRONG
# Keys per MGET: bounds one reply's size; more keys go as several MGETs in one pipeline.
_MGET_CHUNK = 10_000
_GLOB_SPECIAL = str.maketrans({c: "\\" + c for c in "*?[]\\"})
# Redis quotes the first arguments of a command it does not know, a value among them.
_ARGS_QUOTED = ", with args beginning with:"


def _ttl_ms(ttl: float) -> int:
    # Rounded up, so a key never expires before its ttl; round() first drops float noise.
    return max(1, math.ceil(round(ttl * 1000, 6)))


class RedisStorage(Storage):
    """Storage on a Redis server, shared by every agent that points at it.

    Constructing does no I/O; ``initialize()`` builds the blocking connection pool and
    PINGs the server. *sleep* is what the retry policy waits with (tests inject one).
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
        self._wait: tuple[Any, ...] | None = None
        if config.wait_aof:
            self._wait = ("WAITAOF", 1, config.wait_replicas, config.wait_timeout_ms)
        elif config.wait_replicas:
            self._wait = ("WAIT", config.wait_replicas, config.wait_timeout_ms)
        self._client: Client
        self._aof_checked = False

    # -- construction -------------------------------------------------------------------

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Self:
        """Build from the ``storage.redis`` section of the config. No I/O."""
        return cls(parse_options(RedisConfig, options, section=SECTION))

    @classmethod
    def from_url(cls, url: str) -> Self:
        """Build from a ``redis://``, ``rediss://`` or ``unix://`` URL. No I/O."""
        return cls(RedisConfig(url=url))

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
        """
        return self._call(lambda _attempt: operation())

    def _call(self, operation: Callable[[int], T], key: str | None = None) -> T:
        try:
            return self._policy.call(operation)
        except StorageError:
            raise
        except Exception as exc:
            error = self._translate(exc, key)
            if error is exc:
                raise
            raise error from exc

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
        self._aof_checked = False

    def _close(self) -> None:
        self._source.close()

    def _ping(self) -> None:
        client = self._client
        self._call(lambda _: client.execute_command("PING"))
        if self._config.wait_aof and not self._aof_checked:
            self._check_waitaof()  # once per initialize(), not on every ping()
            self._aof_checked = True

    def _check_waitaof(self) -> None:
        client = self._client
        info: dict[str, Any] = self._call(lambda _: client.execute_command("INFO"))
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

    def _send(self, args: Sequence[Any], wait: bool) -> tuple[Any, Any]:
        """Run one command; with *wait*, followed by WAIT on the same connection."""
        client = self._client
        if not wait:
            return client.execute_command(*args), None
        assert self._wait is not None
        # One non-transactional pipeline: WAIT covers the writes of its own connection only,
        # and inside MULTI it would not block.
        with client.pipeline(transaction=False) as pipe:
            pipe.execute_command(*args)
            pipe.execute_command(*self._wait)
            result, acks = pipe.execute()
        return result, acks

    def _send_script(self, script: Script, args: Sequence[Any], wait: bool) -> tuple[Any, Any]:
        try:
            return self._send(args, wait)
        except rx.NoScriptError:
            self._client.execute_command("SCRIPT", "LOAD", script.source)
            return self._send(args, wait)

    def _confirm(self, acks: Any, key: str | None) -> None:
        """Raise ConsistencyError when WAIT/WAITAOF counted fewer acknowledgements than asked."""
        config = self._config
        local, replicas = acks if config.wait_aof else (1, acks)
        missing = []
        if local < 1:
            missing.append("the primary did not confirm its AOF fsync")
        if replicas < config.wait_replicas:
            missing.append(f"only {replicas} of {config.wait_replicas} replicas acknowledged it")
        if not missing:
            return
        what = f"the write to key {key!r}" if key is not None else "the batch write"
        raise ConsistencyError(
            f"{what} is applied on the primary ({self._where}) and will not be rolled back, but "
            f"{' and '.join(missing)} within {config.wait_timeout_ms} ms; check the replicas "
            "(INFO replication) and the server's disk, or lower wait_replicas/raise wait_timeout_ms"
        )

    def _write(self, key: str, data: bytes, ttl: float | None, consistency: Consistency) -> None:
        args: tuple[Any, ...] = ("SET", key, data) if ttl is None else ("SET", key, data, "PX", _ttl_ms(ttl))
        if consistency is _STRONG and self._wait is not None:
            _, acks = self._call(lambda _: self._send(args, True), key)
            self._confirm(acks, key)
        else:
            client = self._client
            self._call(lambda _: client.execute_command(*args), key)

    def _write_if(
        self, key: str, data: bytes, expected: str | None, ttl: float | None, consistency: Consistency
    ) -> bool:
        wait = consistency is _STRONG and self._wait is not None
        mode, version = ("absent", "") if expected is None else ("version", expected)
        px = "" if ttl is None else _ttl_ms(ttl)
        lost_reply = False

        def attempt(_: int) -> tuple[Any, Any]:
            nonlocal lost_reply
            args = ("EVALSHA", CAS.sha, 1, key, data, mode, version, px, "1" if lost_reply else "0")
            try:
                return self._send_script(CAS, args, wait)
            except Exception as exc:
                # The earlier attempt may have been applied with its reply lost: then the retry
                # must count finding our own bytes as success, not as a conflict.
                lost_reply = lost_reply or maybe_applied(exc)
                raise

        result, acks = self._call(attempt, key)
        if not result:
            return False
        if wait:
            self._confirm(acks, key)
        return True

    def _delete(self, key: str, consistency: Consistency) -> bool:
        wait = consistency is _STRONG and self._wait is not None
        args = ("DEL", key)
        removed, acks = self._call(lambda _: self._send(args, wait), key)
        if removed and wait:
            self._confirm(acks, key)
        return bool(removed)

    def _write_many(self, items: Sequence[tuple[str, bytes]], ttl: float | None, consistency: Consistency) -> None:
        # One command, so one round trip and all or none: MSET, or a script of SET ... PX.
        wait = consistency is _STRONG and self._wait is not None
        if ttl is None:
            args: list[Any] = ["MSET", *chain.from_iterable(items)]
            if not wait:
                client = self._client
                self._call(lambda _: client.execute_command(*args))
                return
            _, acks = self._call(lambda _: self._send(args, True))
        else:
            args = ["EVALSHA", SET_MANY_PX.sha, len(items)]
            args.extend(key for key, _ in items)
            args.extend(data for _, data in items)
            args.append(_ttl_ms(ttl))
            _, acks = self._call(lambda _: self._send_script(SET_MANY_PX, args, wait))
        if wait:
            self._confirm(acks, None)

    # -- reads --------------------------------------------------------------------------

    def _read(self, key: str) -> bytes | None:
        client = self._client
        data: bytes | None = self._call(lambda _: client.execute_command("GET", key), key)
        return data

    def _exists(self, key: str) -> bool:
        client = self._client
        return bool(self._call(lambda _: client.execute_command("EXISTS", key), key))

    def _read_many(self, keys: Sequence[str]) -> Sequence[bytes | None]:
        client = self._client
        if len(keys) <= _MGET_CHUNK:
            found: list[bytes | None] = self._call(lambda _: client.execute_command("MGET", *keys))
            return found
        chunks = [keys[i : i + _MGET_CHUNK] for i in range(0, len(keys), _MGET_CHUNK)]

        def attempt(_: int) -> list[bytes | None]:
            with client.pipeline(transaction=False) as pipe:
                for chunk in chunks:
                    pipe.execute_command("MGET", *chunk)
                return [data for reply in pipe.execute() for data in reply]

        return self._call(attempt)

    def _iter_keys(self, prefix: str) -> Iterator[str]:
        client = self._client
        pattern = prefix.translate(_GLOB_SPECIAL) + "*"
        count = self._config.scan_count
        cursor = 0

        def page(_: int) -> tuple[int, list[bytes]]:
            reply: tuple[int, list[bytes]] = client.execute_command("SCAN", cursor, "MATCH", pattern, "COUNT", count)
            return reply

        while True:
            self._require_open()  # a listing outliving close() must not reopen the pool
            cursor, batch = self._call(page)
            for raw in batch:
                try:
                    key = raw.decode()
                except UnicodeDecodeError:
                    continue  # not a key storage-core could have written
                if key.startswith(prefix):
                    yield key
            if not cursor:
                return
