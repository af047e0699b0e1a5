"""Coordination for agents sharing a store: leases with fencing tokens, transactions, a change feed.

Part of the :class:`~storage_core.storage.Storage` template, kept here so ``storage.py``
stays readable. As everywhere in the template, the public methods check and namespace
their arguments, then call primitives a backend implements. A backend that provides them
lists the matching :class:`~storage_core.capabilities.Capability` in ``capabilities``;
without it, the public methods raise ``NotSupported``. Primitives (names namespaced)::

    # Capability.LEASES (with _transact: fence= goes through it)
    _store_id() -> str                                   # stable identity of the backing store
    _acquire_lease(name, ttl) -> (token, expires_at) | None
    _renew_lease(name, token, ttl) -> expires_at | None  # None: not current
    _release_lease(name, token) -> bool

    # Capability.TRANSACTIONS
    _transact(expect, writes, deletes, ttl, fence, consistency) -> Outcome

    # Capability.CHANGE_FEED
    _feed_head() -> cursor                               # the position "now"
    _changes(prefix, after, wait) -> (changes, cursor)   # may block up to wait seconds

The store, never the handle, judges a lease: every fenced write and every transaction
checks the lease and writes in one atomic step on the store's side, against the store's
clock. A ``Lease`` is plain data any handle on the same store may use.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from storage_core.capabilities import Capability
from storage_core.codec import encode
from storage_core.consistency import Consistency
from storage_core.errors import InvalidArgument, LeaseLost, StorageError, VersionConflict

__all__ = [
    "DEFAULT_CHANGE_RETENTION",
    "Change",
    "ChangeKind",
    "Coordination",
    "Fence",
    "Lease",
    "Outcome",
    "RawChange",
    "check_lease_ttl",
]

DEFAULT_CHANGE_RETENTION = 100_000
"""Changes the feed keeps when the config names no ``change_retention``."""

MAX_LEASE_TTL = 86400.0 * 365
# The longest one _changes() call blocks: watch() then checks its own timeout and that
# the store is still open, so a watcher never hangs on a closed store.
_WATCH_SLICE = 1.0

ChangeKind = Literal["put", "delete"]


@dataclass(frozen=True, slots=True)
class Lease:
    """A held lease: plain data that any handle on the issuing store may renew, release or fence with.

    ``token`` increases strictly per name across holders, releases, expiries and restarts,
    and is never reused. ``expires_at`` is in the store's clock (the host's monotonic
    clock for ``local``, the server's Unix time for ``redis``): informative only, since
    the store alone decides whether the lease is still current. ``store`` names the store
    and namespace that issued it.
    """

    name: str
    token: int
    expires_at: float
    store: str


@dataclass(frozen=True, slots=True)
class Change:
    """One put or delete seen by ``watch()``; ``cursor`` resumes right after it."""

    key: str
    kind: ChangeKind
    version: str | None  # the version written (as ``read_entry`` gives it); None for a delete
    cursor: str


class Fence(NamedTuple):
    """What a backend checks before a fenced write: the lease's namespaced name and token."""

    name: str
    token: int


class RawChange(NamedTuple):
    """A change as a backend reports it: the key with its namespace."""

    key: str
    kind: ChangeKind
    version: str | None
    cursor: str


class Outcome(NamedTuple):
    """What ``_transact`` did: applied everything, or nothing and why (a tuple: cheap to make per write)."""

    lease_lost: bool = False
    conflicts: tuple[str, ...] = ()  # namespaced keys whose version differed from the expected one
    deleted: int = 0  # keys among the deletes that held a value

    @property
    def applied(self) -> bool:
        return not self.lease_lost and not self.conflicts


def check_lease_ttl(ttl: object) -> float:
    """Seconds a lease is held for; anything but a positive finite number up to a year is refused."""
    if type(ttl) not in (int, float) or not (0 < ttl <= MAX_LEASE_TTL):  # type: ignore[operator]
        raise InvalidArgument(
            f"a lease ttl must be a number of seconds above 0 and at most {MAX_LEASE_TTL:.0f} (a year); "
            f"got {ttl!r}: renew a lease that must last longer"
        )
    return float(ttl)  # type: ignore[arg-type]


class Coordination:
    """The coordination methods of ``Storage`` (a mixin: every method runs on a ``Storage``)."""

    if TYPE_CHECKING:  # what the mixin uses of the template, which defines it
        _prefix: str
        _change_feed: bool

        @property
        def namespace(self) -> str: ...

        def _require_open(self) -> None: ...

        def _require_writable(self, operation: str) -> None: ...

        def _require(self, capability: Capability) -> None: ...

        def _level(self, consistency: Consistency | str | None) -> Consistency: ...

    # -- leases ---------------------------------------------------------------------------

    def acquire_lease(self, name: str, *, ttl: float) -> Lease | None:
        """Take the lease *name* for *ttl* seconds; None when someone holds it now.

        The token is drawn from the store, so it is greater than every token ever issued
        for *name* there. The lease name is a key (namespaced like one) in a space of its
        own: it never collides with a stored key.

        Raises:
            NotSupported: the backend has no leases.
            InvalidArgument: *ttl* is not a positive number of seconds.
        """
        self._require_open()
        self._require_writable("acquire_lease")
        self._require(Capability.LEASES)
        full = self._prefix + _check_name(name)
        ttl = check_lease_ttl(ttl)
        got = self._acquire_lease(full, ttl)
        if got is None:
            return None
        token, expires_at = got
        return Lease(name, token, expires_at, self._lease_origin())

    def renew_lease(self, lease: Lease, *, ttl: float) -> Lease:
        """Extend a current lease to *ttl* seconds from now; the token stays the same.

        Raises:
            LeaseLost: the lease expired, was released or was taken over.
        """
        full = self._fence_of(lease, "renew_lease").name
        ttl = check_lease_ttl(ttl)
        expires_at = self._renew_lease(full, lease.token, ttl)
        if expires_at is None:
            raise _lost(self, lease, "renewed")
        return Lease(lease.name, lease.token, expires_at, lease.store)

    def release_lease(self, lease: Lease) -> bool:
        """Give the lease up now; False when it was no longer current (expired or taken over)."""
        fence = self._fence_of(lease, "release_lease")
        return self._release_lease(fence.name, fence.token)

    def _lease_origin(self) -> str:
        return f"{self._store_id()}/{self.namespace}"

    def _fence_of(self, lease: object, operation: str = "a fenced write") -> Fence:
        """Check *lease* came from this store and namespace; the store later judges whether it is current."""
        self._require_open()
        self._require_writable(operation)
        self._require(Capability.LEASES)
        if not isinstance(lease, Lease):
            raise InvalidArgument(f"expected a Lease from acquire_lease(), got {type(lease).__name__}: {lease!r:.80}")
        if type(lease.token) is not int or lease.token < 1:
            raise InvalidArgument(f"lease {lease.name!r} has the token {lease.token!r}; tokens are ints from 1 up")
        if lease.store != self._lease_origin():
            raise InvalidArgument(
                f"lease {lease.name!r} (token {lease.token}) was issued by another store or namespace, "
                f"not by {self!r}: use a lease acquired from this store"
            )
        return Fence(self._prefix + _check_name(lease.name), lease.token)

    # -- fenced writes: the template's write methods come here when given fence= -----------------

    def _fenced(
        self,
        lease: Lease,
        *,
        expect: Mapping[str, str | None] | None = None,
        writes: Sequence[tuple[str, bytes]] = (),
        deletes: Sequence[str] = (),
        ttl: float | None = None,
        consistency: Consistency,
    ) -> Outcome:
        """Run one fenced ``_transact``; raise ``LeaseLost`` if the store found the lease not current."""
        fence = self._fence_of(lease)
        self._require(Capability.TRANSACTIONS)
        outcome = self._transact(expect or {}, writes, deletes, ttl, fence, consistency)
        if outcome.lease_lost:
            raise _lost(self, lease, "used as a fence")
        return outcome

    # -- transactions ---------------------------------------------------------------------

    def transaction(
        self,
        *,
        expect: Mapping[str, str | None] | None = None,
        write: Mapping[str, Any] | None = None,
        delete: Iterable[str] = (),
        fence: Lease | None = None,
        ttl: float | None = None,
        consistency: Consistency | str | None = None,
    ) -> None:
        """All or nothing: if every key in *expect* has its version, apply every write and delete.

        *expect* maps keys to versions from ``read_entry`` (None: must be absent); *ttl*
        applies to the keys written. Everything is checked and encoded before any I/O.

        Raises:
            VersionConflict: naming the keys whose version differed; nothing was changed.
            LeaseLost: *fence* was given and is no longer current; nothing was changed.
            InvalidArgument: a key is both written and deleted, or a version is not a str.
        """
        self._require_open()
        self._require_writable("transaction")
        self._require(Capability.TRANSACTIONS)
        prefix = self._prefix
        expected: dict[str, str | None] = {}
        for key, version in (expect or {}).items():
            if version is not None and type(version) is not str:
                raise InvalidArgument(
                    f"expect[{key!r:.80}] must be a version str from read_entry() or None, got {version!r:.80}"
                )
            expected[prefix + template.check_key(key)] = version
        if isinstance(delete, str):
            raise InvalidArgument(f"delete= takes a list of keys, got the str {delete!r:.80}: pass [{delete!r:.80}]")
        writes = [(prefix + template.check_key(k), encode(v, k)) for k, v in (write or {}).items()]
        deletes = list(dict.fromkeys(prefix + template.check_key(k) for k in delete))
        both = {k for k, _ in writes}.intersection(deletes)
        if both:
            names = ", ".join(repr(k[len(prefix) :]) for k in sorted(both))
            raise InvalidArgument(f"keys {names} are both written and deleted in one transaction: keep one")
        level = self._level(consistency)
        ttl = template.check_ttl(ttl)
        fenced = None if fence is None else self._fence_of(fence)
        outcome = self._transact(expected, writes, deletes, ttl, fenced, level)
        if outcome.lease_lost:
            assert fence is not None
            raise _lost(self, fence, "used as a fence")
        if outcome.conflicts:
            names = ", ".join(repr(k[len(prefix) :]) for k in outcome.conflicts)
            raise VersionConflict(
                f"transaction not applied: keys {names} no longer have the expected versions (changed, "
                "created or deleted since): read them again and retry; nothing was changed"
            )

    # -- the change feed ------------------------------------------------------------------

    def watch(self, prefix: str = "", *, since: str | None = None, timeout: float | None = None) -> Iterator[Change]:
        """Yield every put and delete of a key starting with *prefix*, in commit order, blocking for more.

        From now, or right after the change whose ``cursor`` is *since* (with no gap and no
        duplicate, after a restart too). Changes made through storage-core are seen;
        expiries are not (an expired key just stops being there). With *timeout*, the
        iteration ends once no change came for that many seconds. The start is fixed and
        *since* is checked when ``watch()`` is called, not at the first ``next()``.

        Raises:
            CursorExpired: *since* is older than the history the store keeps (``change_retention``).
            InvalidArgument: *since* is not a cursor this store gave out.
            StorageError: the store's change feed is off (``change_feed: true`` turns it on).
        """
        self._require_open()
        self._require(Capability.CHANGE_FEED)
        if not self._change_feed:
            raise StorageError(
                f"the change feed of {self!r} is off: set change_feed: true in the storage: section "
                "(for every process that writes to the store) to watch it"
            )
        full = self._prefix + template.check_prefix(prefix)
        if timeout is not None and (type(timeout) not in (int, float) or not timeout >= 0 or math.isinf(timeout)):
            raise InvalidArgument(f"timeout must be a finite number of seconds >= 0, or None to block; got {timeout!r}")
        if since is None:
            cursor = self._feed_head()
            first: Sequence[RawChange] = ()
        else:
            if type(since) is not str:
                raise InvalidArgument(
                    f"since must be a cursor str from a Change, got {type(since).__name__}: {since!r:.80}"
                )
            first, cursor = self._changes(full, since, 0.0)
        return self._follow(full, first, cursor, timeout)

    def _follow(self, prefix: str, first: Sequence[RawChange], cursor: str, timeout: float | None) -> Iterator[Change]:
        cut = len(self._prefix)
        batch = first
        idle_since = time.monotonic()
        while True:
            for key, kind, version, at in batch:
                yield Change(key[cut:], kind, version, at)
            now = time.monotonic()
            if batch:
                idle_since = now
            wait = _WATCH_SLICE
            if timeout is not None:
                left = idle_since + timeout - now
                if left <= 0:
                    return
                wait = min(wait, left)
            self._require_open()
            batch, cursor = self._changes(prefix, cursor, wait)

    # -- primitives: a backend with the capability overrides them --------------------------

    def _store_id(self) -> str:
        """A stable identity of the backing store, kept in the store itself (so shared by every handle)."""
        raise NotImplementedError

    def _acquire_lease(self, name: str, ttl: float) -> tuple[int, float] | None:
        """Take *name* if nobody holds it: a new token above every one issued for it, and the expiry."""
        raise NotImplementedError

    def _renew_lease(self, name: str, token: int, ttl: float) -> float | None:
        """Extend the lease if *token* still holds *name*: the new expiry, or None."""
        raise NotImplementedError

    def _release_lease(self, name: str, token: int) -> bool:
        """End the lease if *token* still holds *name* (keeping the counter): whether it did."""
        raise NotImplementedError

    def _transact(  # noqa: PLR0917 - a primitive: backends override it positionally
        self,
        expect: Mapping[str, str | None],
        writes: Sequence[tuple[str, bytes]],
        deletes: Sequence[str],
        ttl: float | None,
        fence: Fence | None,
        consistency: Consistency,
    ) -> Outcome:
        """In one atomic step: check *fence* is current, then every expected version, then apply all.

        Report a lost lease before conflicts; change nothing unless every check passes.
        """
        raise NotImplementedError

    def _feed_head(self) -> str:
        """The cursor of the newest change (or of an empty feed): where "from now" starts."""
        raise NotImplementedError

    def _changes(self, prefix: str, after: str, wait: float) -> tuple[Sequence[RawChange], str]:
        """The changes after cursor *after* of keys starting with *prefix*, and the cursor read up to.

        Blocks up to *wait* seconds while there are none. Raises ``CursorExpired`` when
        changes after *after* are no longer kept, ``ValueError`` for a malformed cursor.
        """
        raise NotImplementedError


def _check_name(name: object) -> str:
    return template.check_key(name)


def _lost(store: object, lease: Lease, verb: str) -> LeaseLost:
    return LeaseLost(
        f"lease {lease.name!r} with token {lease.token} cannot be {verb}: {store!r} no longer has it as the "
        "current holder (it expired, was released or was taken over, or was never issued there); nothing "
        "was written: stop the work it guarded, or acquire the lease again"
    )


# Last, and the module rather than its names: storage.py builds its class on this module,
# so whichever of the two is imported first, each finds the other's names at call time.
from storage_core import storage as template  # noqa: E402
