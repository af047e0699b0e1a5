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

Every operation runs under storage-core's :class:`~storage_core.backend.RetryPolicy`;
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

from storage_core.backend import (
    Capability,
    ConfigError,
    Consistency,
    ExponentialBackoff,
    ReadOnly,
    RetryPolicy,
    Storage,
    StorageError,
    parse_options,
)
from storage_redis.cluster import ClusterSource, slots_of
from storage_redis.config import SCHEMES, SECTION, RedisConfig, section_options
from storage_redis.confirm import Confirmation, LostReply
from storage_redis.coordination import RedisCoordination
from storage_redis.errors import MessageContext, is_retryable, translate
from storage_redis.scripts import CAS, SCRIPTS, SET_MANY_PX, Script
from storage_redis.topology import Client, ConnectionSource, connection_source

__all__ = ["RedisStorage"]

log = logging.getLogger("storage_redis")

T = TypeVar("T")
# COUNT of a listing's first SCAN page; later pages double up to scan_count.
_FIRST_SCAN_COUNT = 64
# Keys per MGET: bounds one reply's size; more keys go as several MGETs in one pipeline.
_MGET_CHUNK = 10_000
# SCAN's MATCH with these escaped matches the prefix literally, so no key needs checking again.
_GLOB_SPECIAL = str.maketrans({c: "\\" + c for c in "*?[]\\"})


def _ttl_ms(ttl: float) -> int:
    # Rounded up, so a key never expires before its ttl; round() first drops float noise.
    return max(1, math.ceil(round(ttl * 1000, 6)))


def _with_ttl(data: bytes | None, pttl_ms: int) -> tuple[bytes, float | None] | None:
    """A value with its PTTL reply as seconds: -1 means no expiry; -2, 0 (expiring now) or no value: absent."""
    if data is None or (pttl_ms != -1 and pttl_ms <= 0):
        return None
    return data, None if pttl_ms == -1 else pttl_ms / 1000


class RedisStorage(RedisCoordination, Storage):
    """Storage on a Redis server, shared by every agent that points at it.

    Constructing does no I/O; ``initialize()`` builds the blocking connection pool,
    PINGs the server and loads the Lua scripts. *sleep* is what the retry policy waits
    with (tests inject one).
    """

    name: ClassVar[str] = "redis"
    url_schemes: ClassVar[tuple[str, ...]] = SCHEMES
    # write_many is one command (MSET or a script): all items or none.
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {
            Capability.ATOMIC_WRITE_MANY,
            Capability.READ_TTL,
            Capability.LEASES,
            Capability.TRANSACTIONS,
            Capability.CHANGE_FEED,
        }
    )

    def __init__(self, config: RedisConfig, *, sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__()
        if not isinstance(config, RedisConfig):
            raise TypeError(f"RedisStorage needs a RedisConfig, got {type(config).__name__}")
        self._config = config
        self._source: ConnectionSource = connection_source(config)
        self._where = self._source.describe()
        self._messages = MessageContext.of(config, self._where)
        self._policy = RetryPolicy(
            retries=config.max_retries,
            backoff=ExponentialBackoff(base=config.retry_delay_ms / 1000, cap=config.retry_max_delay_ms / 1000),
            retryable=self._retryable,
            sleep=sleep,
            on_retry=self._log_retry,
        )
        self._confirmation = Confirmation.of(config)
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
            if self._retryable(exc):
                log.error("Redis connection failed after %d retries", self._config.max_retries)
            error = translate(exc, self._messages, key)
            if error is exc:
                raise
            raise error from exc

    def _retryable(self, exc: BaseException) -> bool:
        return is_retryable(exc, tls=self._messages.tls)

    def _abandoned(self, failures: int) -> StorageError:
        after = f" after {failures} failed attempt(s)" if failures else ""
        return StorageError(
            f"{self!r} was closed while an operation on it was under way{after}; the operation was "
            "abandoned (a write may or may not have been applied): initialize() the store again and retry"
        )

    def _log_retry(self, exc: BaseException, failures: int, delay: float) -> None:
        log.warning(
            "Redis operation on %s failed (%s: %s); retry %d of %d in %.3f s",
            self._where,
            type(exc).__name__,
            self._messages.scrub(str(exc)),
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
        if self._cluster is not None and not (self._config.namespace_hash_tag and self.namespace):
            # Keys spread over slots: a cluster's batch is all or none per slot only. Set on the
            # instance, which is what supports() and the conformance kit read.
            # Coordination runs one script over several keys, which must share a slot too.
            vars(self)["capabilities"] = type(self).capabilities - {
                Capability.ATOMIC_WRITE_MANY,
                Capability.LEASES,
                Capability.TRANSACTIONS,
                Capability.CHANGE_FEED,
            }
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
            if not self.read_only:  # only writes run scripts; a read-only ACL user may not load them
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

    def _refuse_if_read_only(self, what: object) -> None:
        """Behind the template's check: no write command leaves a read-only store, whoever calls."""
        if self.read_only:
            raise ReadOnly(f"{what} refused before it was sent: {self!r} was opened read-only")

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
        self._refuse_if_read_only(args[0])
        confirmation = self._confirmation
        wait = confirmation.needed(consistency)
        result, acks = self._call(
            lambda client: self._send_once(client, key, args, wait=wait, script=script, conditional=conditional), key
        )
        if acks is not None:
            confirmation.check(acks, key, self._messages)
        return result

    def _send_once(
        self,
        client: Client,
        key: str | None,
        args: Sequence[Any],
        *,
        wait: bool,
        script: Script | None,
        conditional: bool,
    ) -> tuple[Any, Any]:
        """One attempt of a write; one that WAIT follows runs on the primary owning *key* (on a cluster)."""
        send = functools.partial(self._confirmation.send, args=args, wait=wait, script=script, conditional=conditional)
        if not wait or key is None:  # a batch: one server holds every key (a cluster's go per node)
            return send(client)
        return self._source.route(client, key, send)

    # With the change feed on, every write goes through the transaction script, which
    # appends to the feed in the same atomic step (see storage_redis.coordination).

    def _write(self, key: str, data: bytes, ttl: float | None, consistency: Consistency) -> None:
        if self._change_feed:
            self._transact({}, [(key, data)], (), ttl, None, consistency)
            return
        args: tuple[Any, ...] = ("SET", key, data) if ttl is None else ("SET", key, data, "PX", _ttl_ms(ttl))
        self._send_write(args, key, consistency)

    def _write_if(
        self, key: str, data: bytes, expected: str | None, ttl: float | None, consistency: Consistency
    ) -> bool:
        self._refuse_if_read_only("a conditional write")
        if self._change_feed:
            return self._transact({key: expected}, [(key, data)], (), ttl, None, consistency).applied
        confirmation = self._confirmation
        wait = confirmation.needed(consistency)
        mode, version = ("absent", "") if expected is None else ("version", expected)
        px = "" if ttl is None else _ttl_ms(ttl)
        lost = LostReply()

        def attempt(client: Client) -> tuple[Any, Any]:
            args = ("EVALSHA", CAS.sha, 1, key, data, mode, version, px, lost.flag)
            try:
                return self._send_once(client, key, args, wait=wait, script=CAS, conditional=True)
            except Exception as exc:
                lost.note(exc)
                raise

        result, acks = self._call(attempt, key)
        if not result:
            if lost.possible:
                raise lost.unknown(key, self._messages)
            return False
        if acks is not None:
            confirmation.check(acks, key, self._messages)
        return True

    def _delete(self, key: str, consistency: Consistency) -> bool:
        if self._change_feed:
            return self._transact({}, (), [key], None, None, consistency).deleted > 0
        return bool(self._send_write(("DEL", key), key, consistency, conditional=True))

    def _write_many(self, items: Sequence[tuple[str, bytes]], ttl: float | None, consistency: Consistency) -> None:
        if self._change_feed:
            self._transact({}, items, (), ttl, None, consistency)
            return
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
        confirmation = self._confirmation
        wait = confirmation.command if confirmation.needed(consistency) else None

        def reload(node: Client) -> None:
            node.execute_command("SCRIPT", "LOAD", SET_MANY_PX.source)

        _, confirmations = self._call(lambda client: cluster.per_node(client, groups, wait, on_noscript=reload))
        for acks in confirmations:
            confirmation.check(acks, None, self._messages)

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

    # -- remaining expiry -----------------------------------------------------------------

    def _read_with_ttl(self, key: str) -> tuple[bytes, float | None] | None:
        return self._read_many_with_ttl([key])[0]

    def _read_many_with_ttl(self, keys: Sequence[str]) -> Sequence[tuple[bytes, float | None] | None]:
        # One pipelined round trip, not MULTI/EXEC: MGET and PTTL are both in @read, so a
        # read-only ACL user can export, where MULTI would need another permission. A write
        # landing between the two may pair a value with that write's expiry; a copy of a
        # store being written is a moving target either way (SCAN is no snapshot).
        # A cluster's MGET goes per slot and node already; its PTTLs follow in one pipeline.
        chunks = (
            [keys]
            if self._cluster is not None
            else [keys[i : i + _MGET_CHUNK] for i in range(0, len(keys), _MGET_CHUNK)]
        )
        if self._cluster is not None:
            values_only = self._read_many(keys)

        def attempt(client: Client) -> list[Any]:
            with client.pipeline(transaction=False) as pipe:
                for chunk in chunks if self._cluster is None else ():
                    pipe.execute_command("MGET", *chunk)
                for key in keys:
                    pipe.execute_command("PTTL", key)
                # Not raise_on_error: redis-py would prefix the error with the command and its arguments.
                replies: list[Any] = pipe.execute(raise_on_error=False)
            for reply in replies:
                if isinstance(reply, Exception):
                    raise reply
            return replies

        replies = self._call(attempt, keys[0] if len(keys) == 1 else None)
        if self._cluster is not None:
            return [_with_ttl(data, ms) for data, ms in zip(values_only, replies, strict=True)]
        values = [data for reply in replies[: len(chunks)] for data in reply]
        return [_with_ttl(data, ms) for data, ms in zip(values, replies[len(chunks) :], strict=True)]

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
        # The first page small, so the first key comes fast and a listing holds little before
        # it yields; then doubling up to scan_count (SCAN allows a new COUNT on every call).
        count = min(_FIRST_SCAN_COUNT, self._config.scan_count)
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
            count = min(count * 2, self._config.scan_count)
