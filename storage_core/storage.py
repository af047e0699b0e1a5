"""The ``Storage`` template: public methods check and encode, backends supply primitives.

A backend implements only the protected primitives below. They receive keys already
validated and namespaced and values already encoded to JSON bytes, so no backend can
skip a check, and every public method works for every backend with no more code.

Required primitives::

    _read(key) -> bytes | None
    _write(key, data, ttl, consistency) -> None
    _write_if(key, data, expected, ttl, consistency) -> bool   # atomic compare-and-set
    _delete(key, consistency) -> bool
    _iter_keys(prefix) -> Iterator[str]                        # full (namespaced) keys

Optional: ``_connect``/``_close``/``_ping`` for backends with a connection, and the bulk
primitives ``_exists``, ``_read_many``, ``_write_many`` to save round trips.
With ``Capability.READ_TTL``: ``_read_with_ttl`` (and the bulk ``_read_many_with_ttl``).

Leases, transactions and the change feed have primitives of their own, listed in
:mod:`storage_core.coordination`, each behind a ``Capability`` a backend may lack.
"""

from __future__ import annotations

import random
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Self, TypeVar

from storage_core.capabilities import Capability
from storage_core.codec import decode, decode_found, encode
from storage_core.consistency import Consistency
from storage_core.coordination import DEFAULT_CHANGE_RETENTION, Coordination, Lease
from storage_core.errors import (
    InvalidArgument,
    InvalidKey,
    KeyNotFound,
    NotSupported,
    ReadOnly,
    StorageError,
    VersionConflict,
)
from storage_core.versions import content_version

__all__ = [
    "MAX_KEY_BYTES",
    "MAX_NAMESPACE",
    "Entry",
    "Storage",
    "check_key",
    "check_namespace",
    "check_prefix",
    "check_ttl",
]

MAX_KEY_BYTES = 1024
MAX_NAMESPACE = 256
MAX_TTL = 100 * 365.25 * 86400.0
# A str of at most this many code points cannot exceed MAX_KEY_BYTES in UTF-8.
_SHORT_KEY = MAX_KEY_BYTES // 4

# update() gives up after this many lost races; backoff keeps contenders from lockstep.
_UPDATE_ATTEMPTS = 100
_UPDATE_BACKOFF_BASE = 0.0005
_UPDATE_BACKOFF_CAP = 0.05

_MISSING: Any = object()
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Entry:
    """A value with the opaque version a conditional write can name in ``if_version``."""

    value: Any
    version: str


def _utf8_size(text: str, what: str, error: type[ValueError]) -> int:
    """Bytes of *text* in UTF-8; a lone surrogate (no UTF-8 form) raises *error* naming *what*."""
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise error(f"{what} {text!r:.80} is not valid Unicode (it holds a lone surrogate)") from None


def check_key(key: object) -> str:
    """Return *key* if it is a valid key, else raise ``InvalidKey`` saying why."""
    if type(key) is not str:
        raise InvalidKey(f"keys must be str, got {type(key).__name__}: {key!r:.80}")
    if not key:
        raise InvalidKey("keys must be non-empty")
    if len(key) > _SHORT_KEY or not key.isascii():
        size = _utf8_size(key, "key", InvalidKey)
        if size > MAX_KEY_BYTES:
            raise InvalidKey(f"key is {size} bytes of UTF-8; the limit is {MAX_KEY_BYTES}: {key!r:.80}")
    return key


def check_namespace(namespace: object) -> str:
    """Return *namespace* if usable as a key prefix, else raise ``InvalidArgument`` saying why.

    A ``:`` is refused because it ends the prefix: with it, namespace ``a`` and key
    ``b:k`` would be the same stored key as namespace ``a:b`` and key ``k``.
    """
    if type(namespace) is not str:
        raise InvalidArgument(f"namespace must be a str, got {type(namespace).__name__}")
    if ":" in namespace:
        raise InvalidArgument(
            f"namespace {namespace!r:.80} must not contain ':' (it separates the namespace from the key)"
        )
    if len(namespace) > MAX_NAMESPACE:
        raise InvalidArgument(f"namespace is {len(namespace)} characters; the limit is {MAX_NAMESPACE}")
    _utf8_size(namespace, "namespace", InvalidArgument)
    return namespace


def check_prefix(prefix: object) -> str:
    """Return *prefix* if it can start a key (any str, "" included), else raise ``InvalidKey``."""
    if type(prefix) is not str:
        raise InvalidKey(f"prefix must be a str, got {type(prefix).__name__}")
    if not prefix.isascii():
        _utf8_size(prefix, "prefix", InvalidKey)
    return prefix


def check_ttl(ttl: object) -> float | None:
    """Return *ttl* as seconds (or None), refusing what cannot be an expiry.

    Capped at a century: beyond it a ttl is a bug (1e17 s, say) that backends would
    report in their own words (Redis: "value is not an integer or out of range").
    """
    if ttl is None:
        return None
    if type(ttl) not in (int, float) or not 0 < ttl <= MAX_TTL:  # type: ignore[operator]
        raise InvalidArgument(
            f"ttl must be a number of seconds above 0 and at most {MAX_TTL:.0f} (a century), "
            f"or None for no expiry; got {ttl!r}"
        )
    return float(ttl)  # type: ignore[arg-type]


def _changed_since(key: str, version: str | None) -> VersionConflict:
    return VersionConflict(
        f"key {key!r} changed (or was deleted) since version {(version or '')[:12]}: "
        "read_entry() it again and retry, or use update()"
    )


class Storage(Coordination, ABC):
    """A key-value store of JSON values, safe to share between threads.

    Construct with no I/O, then ``initialize()`` (``open_storage`` does both), and
    ``close()`` or use ``with``. Subclasses set ``name`` (the word used in ``agent.yaml``),
    optionally ``url_schemes``, implement ``from_options`` and the primitives above, and
    leave the public methods alone.
    """

    name: ClassVar[str]
    url_schemes: ClassVar[tuple[str, ...]] = ()
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    """The optional capabilities this backend provides; a call needing another raises ``NotSupported``."""

    def __init__(self) -> None:
        self._prefix = ""
        self._namespace = ""
        self._default_consistency = Consistency.STRONG
        self._open = False
        self._closed = False
        self._lifecycle = threading.Lock()
        self._change_feed = False
        self._change_retention = DEFAULT_CHANGE_RETENTION
        self._read_only = False

    # -- construction -------------------------------------------------------------------

    @classmethod
    @abstractmethod
    def from_options(cls, options: Mapping[str, Any]) -> Self:
        """Build the backend from its section of the config, a plain mapping. No I/O.

        Raises:
            ConfigError: naming the field, for an unknown field or a bad value.
        """

    @classmethod
    def from_url(cls, url: str) -> Self:
        """Build the backend from a URL with one of ``url_schemes``. No I/O."""
        return cls.from_options({"url": url})

    def configure(
        self,
        *,
        namespace: str | None = None,
        consistency: Consistency | str | None = None,
        change_feed: bool | None = None,
        change_retention: int | None = None,
        read_only: bool | None = None,
    ) -> Self:
        """Set the namespace, default write consistency, change feed and read-only mode, before ``initialize()``.

        *change_feed* records every write for ``watch()`` (it costs every write, so it is
        off unless asked for); *change_retention* is how many changes the store keeps.
        *read_only* refuses every write with ``ReadOnly``, and a backend then creates nothing.
        """
        if self._open:
            raise StorageError(f"configure() {self!r} before initialize(), not while it is open")
        if namespace is not None:
            self._namespace = check_namespace(namespace)
            self._prefix = self._namespace_prefix(namespace) if namespace else ""
        if consistency is not None:
            self._default_consistency = Consistency.parse(consistency)
        if change_feed is not None:
            if type(change_feed) is not bool:
                raise InvalidArgument(f"change_feed must be true or false, got {change_feed!r}")
            if change_feed:
                self._require(Capability.CHANGE_FEED)
            self._change_feed = change_feed
        if change_retention is not None:
            if type(change_retention) is not int or change_retention < 1:
                raise InvalidArgument(
                    f"change_retention must be a whole number of changes >= 1, got {change_retention!r}"
                )
            self._change_retention = change_retention
        if read_only is not None:
            if type(read_only) is not bool:
                raise InvalidArgument(f"read_only must be True or False, got {read_only!r:.40}")
            self._read_only = read_only
        return self

    @property
    def namespace(self) -> str:
        """The namespace every key is transparently prefixed with ("" for none)."""
        return self._namespace

    def _namespace_prefix(self, namespace: str) -> str:
        """What every key of *namespace* starts with where it is stored: ``namespace:``.

        A backend may wrap the namespace (Redis Cluster's hash tag: ``{namespace}:``) but
        must keep the ``:`` after it, which no namespace holds, so prefixes stay distinct.
        """
        return f"{namespace}:"

    @property
    def read_only(self) -> bool:
        """Whether every write is refused with ``ReadOnly``; a read-only backend also creates nothing."""
        return self._read_only

    @property
    def default_consistency(self) -> Consistency:
        """The level a write uses when it names none."""
        return self._default_consistency

    # -- lifecycle ----------------------------------------------------------------------

    def initialize(self) -> None:
        """Connect and verify the store is usable. Idempotent; reopens after ``close()``."""
        with self._lifecycle:
            if self._open:
                return
            self._connect()
            try:
                self._ping()
            except BaseException:
                self._close()
                raise
            self._open = True
            self._closed = False

    def close(self) -> None:
        """Release every connection and file handle. Idempotent."""
        with self._lifecycle:
            if self._open:
                self._open = False
                self._closed = True
                self._close()

    def ping(self) -> None:
        """Check the store answers (a round trip where there is a server)."""
        self._require_open()
        self._ping()

    def __enter__(self) -> Self:
        self.initialize()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        ns = f" namespace={self.namespace!r}" if self._prefix else ""
        ro = " read-only" if self._read_only else ""
        return f"<{type(self).__name__} {self._describe()}{ns}{ro}>"

    def _describe(self) -> str:
        """Where the store is, for ``repr`` and messages; never a secret."""
        return self.name

    def supports(self, capability: Capability | str) -> bool:
        """Whether this backend provides *capability*."""
        return capability in self.capabilities

    def _require(self, capability: Capability) -> None:
        if capability not in self.capabilities:
            raise NotSupported(
                f"the {self.name!r} backend does not support {capability.value}; use a backend that does "
                "(local and redis support every capability), or do without it"
            )

    def _require_writable(self, operation: str) -> None:
        """Refuse *operation* before any I/O when the store is read-only; every public write checks this."""
        if self._read_only:
            raise self._read_only_refusal(operation)

    def _read_only_refusal(self, operation: str) -> ReadOnly:
        return ReadOnly(
            f"{operation}() refused: {self!r} was opened read-only (read_only: true); "
            "open it without read_only to change it"
        )

    def _require_open(self) -> None:
        if not self._open:
            state = "closed" if self._closed else "not initialized"
            raise StorageError(f"{self!r} is {state}: call initialize() (or use open_storage()) first")

    # -- single keys --------------------------------------------------------------------

    def read(self, key: str) -> Any:
        """The value at *key*.

        Raises:
            KeyNotFound: the key is absent or expired (also a ``KeyError``).
        """
        self._require_open()
        data = self._read(self._prefix + check_key(key))
        if data is None:
            raise KeyNotFound(key)
        return decode(data, key)

    def get(self, key: str, default: Any = None) -> Any:
        """The value at *key*, or *default* when it is absent."""
        self._require_open()
        data = self._read(self._prefix + check_key(key))
        return default if data is None else decode(data, key)

    def exists(self, key: str) -> bool:
        """Whether *key* holds a value that has not expired."""
        self._require_open()
        return self._exists(self._prefix + check_key(key))

    def read_entry(self, key: str) -> Entry:
        """The value with its version, for a later ``write(..., if_version=...)``.

        The version names the stored content (a hash of its bytes), so values stay plain
        JSON in every backend: a key rewritten to the very same value has the same
        version again. ``if_version`` thus means "still holds what I read", which is what
        a read-modify-write needs to lose nothing.
        """
        self._require_open()
        data = self._read(self._prefix + check_key(key))
        if data is None:
            raise KeyNotFound(key)
        return Entry(decode(data, key), content_version(data))

    def write(
        self,
        key: str,
        value: Any,
        *,
        consistency: Consistency | str | None = None,
        ttl: float | None = None,
        if_version: str | None = None,
        fence: Lease | None = None,
    ) -> None:
        """Store *value* at *key*; with *ttl* it expires after that many seconds.

        With *fence*, the store writes only while that lease is current, checked in the
        same atomic step as the write.

        Raises:
            SerializationError: before any I/O, when the value is not exact JSON.
            VersionConflict: *if_version* was given and the key no longer has it.
            LeaseLost: *fence* was given and is no longer current; nothing was written.
        """
        self._require_open()
        if self._read_only:  # inlined: a method call per write for a flag that is rarely set
            raise self._read_only_refusal("write")
        full = self._prefix + check_key(key)
        data = encode(value, key)
        level = self._level(consistency)
        ttl = check_ttl(ttl)
        if if_version is not None and type(if_version) is not str:
            raise InvalidArgument(f"if_version must be a version str from read_entry(), got {if_version!r:.80}")
        if fence is not None:
            expect = None if if_version is None else {full: if_version}
            if self._fenced(fence, expect=expect, writes=[(full, data)], ttl=ttl, consistency=level).conflicts:
                raise _changed_since(key, if_version)
            return
        if if_version is None:
            self._write(full, data, ttl, level)
            return
        if not self._write_if(full, data, if_version, ttl, level):
            raise _changed_since(key, if_version)

    def delete(self, key: str, *, consistency: Consistency | str | None = None, fence: Lease | None = None) -> bool:
        """Remove *key*; return whether it was there. *fence*: only while that lease is current."""
        self._require_open()
        if self._read_only:  # inlined: a method call per write for a flag that is rarely set
            raise self._read_only_refusal("delete")
        full = self._prefix + check_key(key)
        level = self._level(consistency)
        if fence is not None:
            return self._fenced(fence, deletes=[full], consistency=level).deleted > 0
        return self._delete(full, level)

    def update(
        self,
        key: str,
        fn: Callable[[Any], Any],
        *,
        default: Any = _MISSING,
        consistency: Consistency | str | None = None,
        ttl: float | None = None,
        fence: Lease | None = None,
    ) -> Any:
        """Atomically replace the value with ``fn(value)`` and return what was written.

        ``fn`` gets *default* when the key is absent, and may run more than once (each
        time another writer got in first), so it must have no side effects. With
        *fence*, each attempt writes only while that lease is current.

        Raises:
            KeyNotFound: the key is absent and no *default* was given.
            VersionConflict: other writers won every one of many attempts.
            LeaseLost: *fence* was given and is no longer current; nothing was written.
        """
        self._require_open()
        if self._read_only:  # inlined: a method call per write for a flag that is rarely set
            raise self._read_only_refusal("update")
        full = self._prefix + check_key(key)
        level = self._level(consistency)
        ttl = check_ttl(ttl)
        # Encoded once: checks the default up front and hands fn a fresh copy each try.
        default_data = None if default is _MISSING else encode(default, key)
        delay = _UPDATE_BACKOFF_BASE
        for _ in range(_UPDATE_ATTEMPTS):
            data = self._read(full)
            if data is not None:
                current, expected = decode(data, key), content_version(data)
            elif default_data is not None:
                current, expected = decode(default_data, key), None
            else:
                raise KeyNotFound(key)
            new = fn(current)
            if fence is None:
                done = self._write_if(full, encode(new, key), expected, ttl, level)
            else:
                written = [(full, encode(new, key))]
                done = self._fenced(fence, expect={full: expected}, writes=written, ttl=ttl, consistency=level).applied
            if done:
                return new
            time.sleep(random.uniform(0, delay))
            delay = min(delay * 2, _UPDATE_BACKOFF_CAP)
        raise VersionConflict(
            f"update of key {key!r} lost the race to other writers {_UPDATE_ATTEMPTS} times; "
            "retry later or shard the key"
        )

    # -- many keys ----------------------------------------------------------------------

    def keys(self, prefix: str = "") -> Iterator[str]:
        """Stream the keys that start with *prefix*, without the namespace.

        A generator: the backend pages through its keys, never loading them all.
        """
        self._require_open()
        return self._stripped(self._iter_keys(self._prefix + check_prefix(prefix)))

    def _stripped(self, keys: Iterator[str]) -> Iterator[str]:
        cut = len(self._prefix)
        for key in keys:
            yield key[cut:]

    def read_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """The values of those *keys* that exist, in one round trip where the backend allows."""
        self._require_open()
        if isinstance(keys, str):  # iterating it would read one key per character
            raise InvalidKey(f"read_many() takes a list of keys, got the str {keys!r:.80}: pass [{keys!r:.80}]")
        wanted = list(dict.fromkeys(map(check_key, keys)))
        if not wanted:
            return {}
        prefix = self._prefix
        return decode_found(wanted, self._read_many([prefix + k for k in wanted] if prefix else wanted))

    def write_many(
        self,
        items: Mapping[str, Any],
        *,
        consistency: Consistency | str | None = None,
        ttl: float | None = None,
        fence: Lease | None = None,
    ) -> None:
        """Store every item, checked and encoded before any I/O: one bad item writes none.

        With *fence*: all items in one atomic step, only while that lease is current.
        """
        self._require_open()
        if self._read_only:  # inlined: a method call per write for a flag that is rarely set
            raise self._read_only_refusal("write_many")
        prefix = self._prefix
        encoded = [(prefix + check_key(k), encode(v, k)) for k, v in items.items()]
        level = self._level(consistency)
        ttl = check_ttl(ttl)
        if fence is not None:
            self._fenced(fence, writes=encoded, ttl=ttl, consistency=level)
        elif encoded:
            self._write_many(encoded, ttl, level)

    # -- remaining expiry (Capability.READ_TTL) ------------------------------------------

    def ttl(self, key: str) -> float | None:
        """Seconds left before *key* expires, or None when it never does.

        Raises:
            KeyNotFound: the key is absent or expired.
            NotSupported: the backend cannot report expiries.
        """
        self._require_open()
        self._require(Capability.READ_TTL)
        found = self._read_with_ttl(self._prefix + check_key(key))
        if found is None:
            raise KeyNotFound(key)
        return found[1]

    def read_many_with_ttl(self, keys: Iterable[str]) -> dict[str, tuple[Any, float | None]]:
        """``(value, seconds left or None)`` for those *keys* that exist, each pair read in one go.

        What a copy of a store needs (export, migrate): a value with the expiry it has
        now, in one round trip per batch where the backend allows.

        Raises:
            NotSupported: the backend cannot report expiries.
        """
        self._require_open()
        self._require(Capability.READ_TTL)
        if isinstance(keys, str):
            raise InvalidKey(
                f"read_many_with_ttl() takes a list of keys, got the str {keys!r:.80}: pass [{keys!r:.80}]"
            )
        wanted = list(dict.fromkeys(map(check_key, keys)))
        if not wanted:
            return {}
        prefix = self._prefix
        found = self._read_many_with_ttl([prefix + k for k in wanted] if prefix else wanted)
        return {key: (decode(hit[0], key), hit[1]) for key, hit in zip(wanted, found, strict=True) if hit is not None}

    def _level(self, consistency: Consistency | str | None) -> Consistency:
        if consistency is None:
            return self._default_consistency
        return Consistency.parse(consistency)

    # -- primitives a backend implements --------------------------------------------------

    def _connect(self) -> None:
        """Open connections or files. Called by ``initialize()``; no-op by default.

        If it raises, it must release what it had opened: ``_close`` is called only after
        a successful ``_connect`` (when ``_ping`` fails, or on ``close()``).
        """

    def _close(self) -> None:
        """Release what ``_connect`` opened. No-op by default."""

    def _ping(self) -> None:
        """Raise ``ConnectionFailed`` (or ``AuthenticationFailed``) if the store is unusable."""

    @abstractmethod
    def _read(self, key: str) -> bytes | None:
        """The stored bytes, or None when absent or expired."""

    @abstractmethod
    def _write(self, key: str, data: bytes, ttl: float | None, consistency: Consistency) -> None:
        """Store *data*, replacing any value and its expiry; *ttl* None means none."""

    @abstractmethod
    def _write_if(
        self, key: str, data: bytes, expected: str | None, ttl: float | None, consistency: Consistency
    ) -> bool:
        """Atomically store *data* only if the key's version is *expected* (None: absent).

        Return False, writing nothing, when it is not. ``content_version`` gives a
        stored value's version.
        """

    @abstractmethod
    def _delete(self, key: str, consistency: Consistency) -> bool:
        """Remove the key; True if it held an unexpired value."""

    @abstractmethod
    def _iter_keys(self, prefix: str) -> Iterator[str]:
        """Yield the full keys (namespace included) starting with *prefix*, streaming."""

    def _exists(self, key: str) -> bool:
        return self._read(key) is not None

    def _read_many(self, keys: Sequence[str]) -> Sequence[bytes | None]:
        """The bytes for each key, None where absent, in order. Override to batch."""
        return [self._read(k) for k in keys]

    def _write_many(self, items: Sequence[tuple[str, bytes]], ttl: float | None, consistency: Consistency) -> None:
        """Store every item. Override to do it atomically and in one round trip."""
        for key, data in items:
            self._write(key, data, ttl, consistency)

    def _read_with_ttl(self, key: str) -> tuple[bytes, float | None] | None:
        """The bytes and the seconds left (None: no expiry), in one round trip; None when absent.

        Only called on a backend declaring ``Capability.READ_TTL``. Where the backend can,
        both should come from the same write (local: one row).
        """
        raise NotImplementedError(f"{type(self).__name__} declares {Capability.READ_TTL} without _read_with_ttl")

    def _read_many_with_ttl(self, keys: Sequence[str]) -> Sequence[tuple[bytes, float | None] | None]:
        """``_read_with_ttl`` for each key, in order. Override to batch."""
        return [self._read_with_ttl(k) for k in keys]
