"""Backends broken on purpose, each in one way the conformance suite must catch.

Module-level (and their factories picklable) so spawned processes can open them too.
``FileStorage`` is the correct control: files replaced atomically, shared by processes.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self
from urllib.parse import quote, unquote

from test_testing_kit import MemoryStorage

from storage_core.backend import Capability, Consistency, Storage, content_version


class IgnoresUnknownOptions(MemoryStorage):
    """``from_options`` takes what it knows and silently drops the rest (a typo included)."""


class ClaimsAtomicWriteMany(MemoryStorage):
    """Declares ``ATOMIC_WRITE_MANY`` but keeps the template's loop of ``_write``, with I/O time."""

    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.ATOMIC_WRITE_MANY})

    def _write(self, key: str, data: bytes, ttl: float | None, consistency: Consistency) -> None:
        super()._write(key, data, ttl, consistency)
        time.sleep(0.001)


@dataclass(frozen=True)
class MemoryFactory:
    """Opens *backend* stores sharing one space."""

    backend: type[MemoryStorage]
    space: str

    def __call__(self, namespace: str) -> Storage:
        store = self.backend(self.space).configure(namespace=namespace)
        store.initialize()
        return store


class FileStorage(Storage):
    """One file per key in a folder; a write replaces the file at once (write aside, rename)."""

    name: ClassVar[str] = "files_test"

    def __init__(self, folder: str) -> None:
        super().__init__()
        self._folder = Path(folder)

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Self:
        return cls(str(options["folder"]))

    def _path(self, key: str) -> Path:
        return self._folder / quote(key, safe="")

    def _read(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def _write(self, key: str, data: bytes, ttl: float | None, consistency: Consistency) -> None:
        aside = self._folder / f".{os.getpid()}-{threading.get_ident()}.tmp"
        aside.write_bytes(data)
        aside.replace(self._path(key))

    def _write_if(
        self, key: str, data: bytes, expected: str | None, ttl: float | None, consistency: Consistency
    ) -> bool:
        current = self._read(key)  # not atomic across processes: the kill test needs no more
        if (None if current is None else content_version(current)) != expected:
            return False
        self._write(key, data, ttl, consistency)
        return True

    def _delete(self, key: str, consistency: Consistency) -> bool:
        try:
            self._path(key).unlink()
        except FileNotFoundError:
            return False
        return True

    def _iter_keys(self, prefix: str) -> Iterator[str]:
        with os.scandir(self._folder) as entries:
            for entry in entries:
                key = unquote(entry.name)
                if not entry.name.startswith(".") and key.startswith(prefix):
                    yield key


class ListsEveryKey(FileStorage):
    """``_iter_keys`` reads the whole folder into a list before yielding one key."""

    def _iter_keys(self, prefix: str) -> Iterator[str]:
        every = sorted(unquote(name) for name in os.listdir(self._folder) if not name.startswith("."))
        yield from (key for key in every if key.startswith(prefix))


class TornFileStorage(FileStorage):
    """Overwrites a file in place, half by half: a writer killed between the halves tears it.

    A ``write`` pauses a second between its halves, so the test's kill (0.2 s after the
    writer's first round) lands in a torn window however loaded the machine: with a short
    pause the kill could fall between two writes, and this broken backend passed.
    """

    def _write(self, key: str, data: bytes, ttl: float | None, consistency: Consistency) -> None:
        self._write_torn(key, data, pause=1.0)

    def _write_many(self, items: Sequence[tuple[str, bytes]], ttl: float | None, consistency: Consistency) -> None:
        for key, data in items:
            self._write_torn(key, data, pause=0.005)

    def _write_torn(self, key: str, data: bytes, pause: float) -> None:
        half = len(data) // 2
        with self._path(key).open("wb") as file:
            file.write(data[:half])
            file.flush()
            time.sleep(pause)
            file.write(data[half:])


@dataclass(frozen=True)
class FileFactory:
    """Opens *backend* stores on one folder."""

    backend: type[FileStorage]
    folder: str

    def __call__(self, namespace: str) -> Storage:
        store = self.backend(self.folder).configure(namespace=namespace)
        store.initialize()
        return store
