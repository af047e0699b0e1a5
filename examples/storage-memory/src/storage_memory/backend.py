"""``MemoryStorage``: the storage-core primitives on a dict, shared by name within a process.

Consistency buys nothing here: every write is applied, atomically and visibly to every
thread, before it returns, and nothing survives the process.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self
from urllib.parse import urlsplit

from storage_core.backend import (
    Capability,
    ConfigError,
    Consistency,
    Storage,
    StorageError,
    check_fields,
    content_version,
    parse_options,
)

__all__ = ["MemoryConfig", "MemoryStorage"]

SECTION = "storage.memory"
_PAGE = 256  # keys listed per turn of the lock, so keys() never copies the whole keyspace


@dataclass(frozen=True, slots=True)
class MemoryConfig:
    """The ``storage.memory`` section: stores with the same ``name`` share their data."""

    name: str = "default"

    def __post_init__(self) -> None:
        check_fields(self, section=SECTION)
        if not self.name:
            raise ConfigError("expected a non-empty name", field=f"{SECTION}.name")


@dataclass
class _Space:
    """The data of one name: values with their deadlines, the keys in order, one lock."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    values: dict[str, tuple[bytes, float | None]] = field(default_factory=dict)
    keys: list[str] = field(default_factory=list)  # sorted: keys() pages through it
    users: int = 0


_SPACES: dict[str, _Space] = {}
_SPACES_LOCK = threading.Lock()


class MemoryStorage(Storage):
    """Key-value store in this process's memory; safe to share between threads."""

    name: ClassVar[str] = "memory"
    url_schemes: ClassVar[tuple[str, ...]] = ("memory",)
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.ATOMIC_WRITE_MANY, Capability.READ_TTL})

    def __init__(self, config: MemoryConfig) -> None:
        super().__init__()  # the template's own state: namespace, consistency, lifecycle
        self._config = config
        self._space: _Space | None = None

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Self:
        return cls(parse_options(MemoryConfig, options, section=SECTION))

    @classmethod
    def from_url(cls, url: str) -> Self:
        """``memory://NAME``; ``memory://`` alone is the name ``default``."""
        parts = urlsplit(url)
        if parts.path.strip("/") or parts.query:
            raise ConfigError(f"expected memory://NAME, got {url!r}", field="url")
        return cls(MemoryConfig(name=parts.netloc or "default"))

    def _describe(self) -> str:
        return f"memory://{self._config.name}"

    # -- lifecycle: the first store of a name creates its space, the last one drops it -----

    def _connect(self) -> None:
        with _SPACES_LOCK:
            self._space = _SPACES.setdefault(self._config.name, _Space())
            self._space.users += 1

    def _close(self) -> None:
        with _SPACES_LOCK:
            space, self._space = self._space, None
            assert space is not None  # _close follows a successful _connect
            space.users -= 1
            if space.users == 0:
                del _SPACES[self._config.name]

    # -- primitives: every one holds the space's lock, and treats an expired key as absent --

    def _opened(self) -> _Space:
        space = self._space
        if space is None:  # the template checks first; this is a close() racing a call
            raise StorageError(f"{self!r} was closed while in use: initialize() it again")
        return space

    @staticmethod
    def _live(space: _Space, key: str) -> bytes | None:
        found = MemoryStorage._live_with_ttl(space, key)
        return None if found is None else found[0]

    @staticmethod
    def _live_with_ttl(space: _Space, key: str) -> tuple[bytes, float | None] | None:
        item = space.values.get(key)
        if item is None:
            return None
        data, deadline = item
        if deadline is None:
            return data, None
        left = deadline - time.monotonic()
        if left <= 0:
            MemoryStorage._remove(space, key)
            return None
        return data, left

    @staticmethod
    def _put(space: _Space, key: str, data: bytes, ttl: float | None) -> None:
        if key not in space.values:
            bisect.insort(space.keys, key)
        space.values[key] = (data, None if ttl is None else time.monotonic() + ttl)

    @staticmethod
    def _remove(space: _Space, key: str) -> None:
        del space.values[key]
        del space.keys[bisect.bisect_left(space.keys, key)]

    def _read(self, key: str) -> bytes | None:
        space = self._opened()
        with space.lock:
            return self._live(space, key)

    def _read_with_ttl(self, key: str) -> tuple[bytes, float | None] | None:
        space = self._opened()
        with space.lock:
            return self._live_with_ttl(space, key)

    def _read_many(self, keys: Sequence[str]) -> Sequence[bytes | None]:
        space = self._opened()
        with space.lock:
            return [self._live(space, key) for key in keys]

    def _write(self, key: str, data: bytes, ttl: float | None, consistency: Consistency) -> None:
        space = self._opened()
        with space.lock:
            self._put(space, key, data, ttl)

    def _write_if(
        self, key: str, data: bytes, expected: str | None, ttl: float | None, consistency: Consistency
    ) -> bool:
        space = self._opened()
        with space.lock:
            current = self._live(space, key)
            if (None if current is None else content_version(current)) != expected:
                return False
            self._put(space, key, data, ttl)
            return True

    def _write_many(self, items: Sequence[tuple[str, bytes]], ttl: float | None, consistency: Consistency) -> None:
        space = self._opened()
        with space.lock:  # one turn of the lock: all items or none, never a part
            for key, data in items:
                self._put(space, key, data, ttl)

    def _delete(self, key: str, consistency: Consistency) -> bool:
        space = self._opened()
        with space.lock:
            found = self._live(space, key) is not None
            if key in space.values:
                self._remove(space, key)
            return found

    def _iter_keys(self, prefix: str) -> Iterator[str]:
        space = self._opened()
        after = prefix  # every key >= prefix is a candidate until one lacks it
        inclusive = True
        while True:
            with space.lock:
                find = bisect.bisect_left if inclusive else bisect.bisect_right
                start = find(space.keys, after)
                page = space.keys[start : start + _PAGE]
                live = [key for key in page if key.startswith(prefix) and self._live(space, key) is not None]
            yield from live
            if not page or not page[-1].startswith(prefix):
                return
            after, inclusive = page[-1], False
