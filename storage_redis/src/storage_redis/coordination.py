"""Leases, transactions and the change feed of the Redis backend: one Lua script per step.

Everything a lease, a fenced write or a transaction checks is checked inside the script
that writes, against the server's clock, so no client pause or clock can slip between the
check and the write. STRONG writes are confirmed with ``WAIT``/``WAITAOF`` on the script's
own connection, like every other write (see :mod:`storage_redis.confirm`).

The coordination keys start with the byte ``0xff``, which no UTF-8 key can begin with: no
key of a user can collide with them, and ``keys()`` (which skips what is not UTF-8) never
lists them. Lease ``L`` of namespace ``ns`` is ``\\xffL:ns:L``; the namespace's change feed
the stream ``\\xffF:ns:``. On Redis Cluster a script must find all its keys in one hash
slot: a namespace written as a hash tag (``{fleet-a}``) puts a namespace's keys, leases
and feed together; keys spread over slots cannot share a transaction or a fence.

A watcher blocks in ``XREAD BLOCK`` on a pooled connection it holds only for that call
(at most ``_BLOCK_SLICE`` seconds), then reads the entries with a script that also tells
whether any were trimmed after its cursor (``CursorExpired``). Expired keys produce no
change (Redis removes them by itself, unseen by the scripts).
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from redis import exceptions as rx

from storage_core.backend import (
    ChangeKind,
    Consistency,
    CursorExpired,
    Fence,
    InvalidArgument,
    Outcome,
    RawChange,
    StorageError,
)
from storage_redis.confirm import Confirmation, LostReply, execute_loading
from storage_redis.coordination_scripts import ACQUIRE, CHANGES, FENCED_SET, RELEASE, RENEW, TRANSACT
from storage_redis.scripts import Script

if TYPE_CHECKING:
    from storage_redis.config import RedisConfig
    from storage_redis.errors import MessageContext
    from storage_redis.topology import Client

__all__ = ["RedisCoordination"]

T = TypeVar("T")

_STORE_ID_KEY = b"\xffstore-id"
_LEASE = b"\xffL:"
_FEED = b"\xffF:"
_CHANGES_PAGE = 1000
_BLOCK_SLICE = 1.0
# How the transaction script's error replies begin: it changed nothing, so no WAIT follows.
_REFUSED = "STORAGE-CORE "
_CURSOR = re.compile(r"\d{1,20}-\d{1,20}")


def _ms(seconds: float) -> int:
    return max(1, math.ceil(round(seconds * 1000, 6)))


class RedisCoordination:
    """The coordination primitives of ``RedisStorage`` (a mixin)."""

    if TYPE_CHECKING:  # what the mixin uses of RedisStorage
        _prefix: str
        _change_feed: bool
        _change_retention: int
        _config: RedisConfig
        _confirmation: Confirmation
        _messages: MessageContext

        def _call(
            self, operation: Callable[[Client], T], key: str | None = None, client: Client | None = None
        ) -> T: ...

        def _send_once(
            self,
            client: Client,
            key: str | None,
            args: Sequence[Any],
            *,
            wait: bool,
            script: Script | None,
            conditional: bool,
        ) -> tuple[Any, Any]: ...

    _cached_store_id: str | None = None

    def _script(self, script: Script, keys: Sequence[Any], args: Sequence[Any], key: str | None = None) -> Any:
        command = ("EVALSHA", script.sha, len(keys), *keys, *args)

        def attempt(client: Client) -> Any:
            try:
                return execute_loading(client.execute_command, command, script)
            except Exception as exc:
                _check_slots(exc)
                raise

        return self._call(attempt, key)

    # -- leases -------------------------------------------------------------------------

    def _store_id(self) -> str:
        if self._cached_store_id is None:

            def ensure(client: Client) -> bytes:
                with client.pipeline(transaction=False) as pipe:
                    pipe.execute_command("SET", _STORE_ID_KEY, uuid.uuid4().hex, "NX")
                    pipe.execute_command("GET", _STORE_ID_KEY)
                    replies = pipe.execute(raise_on_error=False)
                for reply in replies:
                    if isinstance(reply, Exception):
                        raise reply
                found: bytes = replies[1]
                return found

            self._cached_store_id = self._call(ensure).decode()
        return self._cached_store_id

    def _acquire_lease(self, name: str, ttl: float) -> tuple[int, float] | None:
        got = self._script(ACQUIRE, [_LEASE + name.encode()], [_ms(ttl)])
        if got is None:
            return None
        token, expires = got
        return int(token), int(expires) / 1000

    def _renew_lease(self, name: str, token: int, ttl: float) -> float | None:
        expires = self._script(RENEW, [_LEASE + name.encode()], [token, _ms(ttl)])
        return None if expires is None else int(expires) / 1000

    def _release_lease(self, name: str, token: int) -> bool:
        return bool(self._script(RELEASE, [_LEASE + name.encode()], [token]))

    # -- transactions -------------------------------------------------------------------

    def _transact(  # noqa: PLR0917 - the template's primitive
        self,
        expect: Mapping[str, str | None],
        writes: Sequence[tuple[str, bytes]],
        deletes: Sequence[str],
        ttl: float | None,
        fence: Fence | None,
        consistency: Consistency,
    ) -> Outcome:
        if fence is not None and len(writes) == 1 and not (expect or deletes or self._change_feed):
            return self._fenced_set(writes[0], ttl, fence, consistency)
        keys: list[Any] = [] if fence is None else [_LEASE + fence.name.encode()]
        keys.extend(expect)
        keys.extend(key for key, _ in writes)
        keys.extend(deletes)
        feed = self._change_feed
        if feed:
            keys.append(_FEED + self._prefix.encode())
        head = [
            len(expect),
            len(writes),
            len(deletes),
            "" if fence is None else fence.token,
            "" if ttl is None else _ms(ttl),
            self._change_retention if feed else "",
        ]
        tail: list[str | bytes] = [version or "" for version in expect.values()]
        tail.extend(data for _, data in writes)
        confirmation = self._confirmation
        # Nothing to write, nothing to wait for (and, on a cluster, no key to route a WAIT by).
        wait = confirmation.needed(consistency) and bool(writes or deletes)
        lost = LostReply()
        first = next(iter([*expect, *(k for k, _ in writes), *deletes]), None)

        def attempt(client: Client) -> tuple[Any, Any]:
            command = ("EVALSHA", TRANSACT.sha, len(keys), *keys, *head, lost.flag, *tail)
            try:
                return self._send_once(client, first, command, wait=wait, script=TRANSACT, conditional=True)
            except rx.ResponseError as exc:
                if str(exc).startswith(_REFUSED):
                    return str(exc).split()[1:], None
                _check_slots(exc)
                raise
            except Exception as exc:
                _check_slots(exc)
                lost.note(exc)
                raise

        reply, acks = self._call(attempt, first)
        if isinstance(reply[0], str):  # refused: nothing was changed
            if lost.possible:
                raise lost.unknown(first or "", self._messages)
            if reply[0] == "LEASE":
                return Outcome(lease_lost=True)
            names = list(expect)
            return Outcome(conflicts=tuple(names[int(i) - 1] for i in reply[1:]))
        if acks is not None:
            confirmation.check(acks, first if len(writes) + len(deletes) == 1 else None, self._messages)
        return Outcome(deleted=int(reply[1]))

    def _fenced_set(
        self, item: tuple[str, bytes], ttl: float | None, fence: Fence, consistency: Consistency
    ) -> Outcome:
        """The common fenced write, one key and nothing else, through the short script."""
        key, data = item
        lease_key = _LEASE + fence.name.encode()
        px = "" if ttl is None else _ms(ttl)
        confirmation = self._confirmation
        wait = confirmation.needed(consistency)
        lost = LostReply()

        def attempt(client: Client) -> tuple[Any, Any]:
            command = ("EVALSHA", FENCED_SET.sha, 2, lease_key, key, fence.token, data, px, lost.flag)
            try:
                return self._send_once(client, key, command, wait=wait, script=FENCED_SET, conditional=True)
            except Exception as exc:
                _check_slots(exc)
                lost.note(exc)
                raise

        reply, acks = self._call(attempt, key)
        if not reply:
            if lost.possible:
                raise lost.unknown(key, self._messages)
            return Outcome(lease_lost=True)
        if acks is not None:
            confirmation.check(acks, key, self._messages)
        return Outcome()

    # -- the change feed ----------------------------------------------------------------

    def _stream(self) -> bytes:
        return _FEED + self._prefix.encode()

    def _feed_head(self) -> str:
        reply = self._script(CHANGES, [self._stream()], ["head", 0])
        return str(reply[1].decode())

    def _changes(self, prefix: str, after: str, wait: float) -> tuple[Sequence[RawChange], str]:
        if not _CURSOR.fullmatch(after):
            raise InvalidArgument(
                f"since={after!r:.80} is not a change-feed cursor of the redis backend: pass the cursor of a "
                "Change from watch() on this store"
            )
        stream = self._stream()
        while True:
            reply = self._script(CHANGES, [stream], [after, _CHANGES_PAGE])
            code, last = int(reply[0]), reply[1].decode()
            if code == 2:
                raise InvalidArgument(
                    f"since={after!r} is ahead of the change feed of {self!r} (it ends at {last}): pass a cursor "
                    "from a Change this store gave out"
                )
            if code == 1:
                raise CursorExpired(
                    f"the changes after cursor {after!r} are no longer kept (the feed keeps about the last "
                    f"{self._change_retention}): re-read the keys you follow, then watch() again from now "
                    "(or raise change_retention)"
                )
            entries = reply[2]
            if entries:
                return _decoded(entries, prefix), entries[-1][0].decode()
            if wait <= 0 or not self._block(stream, after, wait):
                return (), after
            wait = 0.0  # woken: read what came, then return to the caller

    def _block(self, stream: bytes, after: str, wait: float) -> bool:
        """Wait in ``XREAD BLOCK`` until an entry follows *after*; False when *wait* ran out."""
        limit = self._config.socket_timeout
        seconds = min(wait, _BLOCK_SLICE) if limit is None else min(wait, _BLOCK_SLICE, limit / 2)
        block = ("XREAD", "COUNT", 1, "BLOCK", _ms(seconds), "STREAMS", stream, after)
        return bool(self._call(lambda client: client.execute_command(*block)))


def _check_slots(exc: BaseException) -> None:
    """Say how to fix a script whose keys span hash slots (Redis Cluster), instead of Redis's words."""
    text = str(exc)
    if "CROSSSLOT" in text or "same slot" in text or "same key slot" in text:
        raise StorageError(
            "on Redis Cluster, a transaction or a fenced write must keep every key it touches (and its "
            "lease and change feed) in one hash slot, and these keys are spread over several: give the store a "
            "namespace written as a hash tag, such as namespace: '{fleet-a}', so all its keys share a slot"
        ) from exc


def _decoded(entries: Sequence[Any], prefix: str) -> list[RawChange]:
    found = []
    for entry_id, fields in entries:
        values = dict(zip(fields[::2], fields[1::2], strict=True))
        key = values[b"k"].decode()
        if not key.startswith(prefix):
            continue
        version = values.get(b"v")
        kind: ChangeKind = "put" if values[b"o"] == b"put" else "delete"
        found.append(RawChange(key, kind, None if version is None else version.decode(), entry_id.decode()))
    return found
