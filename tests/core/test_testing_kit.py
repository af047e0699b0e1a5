"""The conformance kit, run against a tiny in-memory backend before the real ones exist.

``MemoryStorage`` is a test double: defined at module level so its factory pickles, and
never registered as an entry point.
"""

from __future__ import annotations

import pickle
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar, Self
from uuid import uuid4

import pytest

from storage_core import Consistency, Storage
from storage_core.testing import ConfigFactory, StorageContract, config_factory, fresh_namespace, same_json
from storage_core.versions import content_version

pytest_plugins = ["pytester"]

# Backing stores by name: every MemoryStorage of one space shares the data, like a server.
_SPACES: dict[str, tuple[dict[str, tuple[bytes, float | None]], threading.Lock]] = {}
_SPACES_LOCK = threading.Lock()


class MemoryStorage(Storage):
    """A dict behind a lock, implementing only the required primitives."""

    name: ClassVar[str] = "memory_test"

    def __init__(self, space: str) -> None:
        super().__init__()
        self._space = space

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Self:
        return cls(str(options.get("space", "default")))

    def _connect(self) -> None:
        with _SPACES_LOCK:
            self._data, self._lock = _SPACES.setdefault(self._space, ({}, threading.Lock()))

    def _live(self, key: str) -> bytes | None:
        item = self._data.get(key)
        if item is None:
            return None
        data, expires = item
        if expires is not None and expires <= time.monotonic():
            del self._data[key]
            return None
        return data

    def _read(self, key: str) -> bytes | None:
        with self._lock:
            return self._live(key)

    def _put(self, key: str, data: bytes, ttl: float | None) -> None:
        self._data[key] = (data, None if ttl is None else time.monotonic() + ttl)

    def _write(self, key: str, data: bytes, ttl: float | None, consistency: Consistency) -> None:
        with self._lock:
            self._put(key, data, ttl)

    def _write_if(
        self, key: str, data: bytes, expected: str | None, ttl: float | None, consistency: Consistency
    ) -> bool:
        with self._lock:
            current = self._live(key)
            found = None if current is None else content_version(current)
            if found != expected:
                return False
            self._put(key, data, ttl)
            return True

    def _delete(self, key: str, consistency: Consistency) -> bool:
        with self._lock:
            found = self._live(key) is not None
            self._data.pop(key, None)
            return found

    def _iter_keys(self, prefix: str) -> Iterator[str]:
        with self._lock:
            snapshot = [k for k in self._data if k.startswith(prefix)]
        for key in snapshot:
            if self._read(key) is not None:
                yield key


@dataclass(frozen=True)
class MemoryFactory:
    """Opens ``MemoryStorage`` stores sharing one space."""

    space: str

    def __call__(self, namespace: str) -> Storage:
        store = MemoryStorage(self.space).configure(namespace=namespace)
        store.initialize()
        return store


class TestMemoryContract(StorageContract):
    """The whole suite passes against a correct backend."""

    supports_processes = False
    persistent = True  # the space outlives any one store, as a server's data would

    @pytest.fixture
    def storage_factory(self) -> Iterator[MemoryFactory]:
        space = uuid4().hex
        yield MemoryFactory(space)
        with _SPACES_LOCK:
            _SPACES.pop(space, None)


# -- the suite catches broken backends ---------------------------------------------------

# Each mutant breaks one promise; the tests named must then fail. Run in a fresh pytest
# session (pytester) so the suite is exercised exactly as a backend author runs it.
_MUTANTS: dict[str, tuple[str, str]] = {
    "cas-without-lock": (
        """
    def _write_if(self, key, data, expected, ttl, consistency):
        current = self._read(key)
        found = None if current is None else content_version(current)
        time.sleep(0.0005)
        if found != expected:
            return False
        self._write(key, data, ttl, consistency)
        return True
""",
        "thread_contention or racing_conditional",
    ),
    "ttl-ignored": (
        """
    def _put(self, key, data, ttl):
        self._data[key] = (data, None)
""",
        "test_ttl_key_expires",
    ),
    "delete-counts-expired": (
        """
    def _delete(self, key, consistency):
        with self._lock:
            return self._data.pop(key, None) is not None
""",
        "test_expired_key_is_absent and delete",
    ),
    "prefix-ignores-case": (
        """
    def _iter_keys(self, prefix):
        with self._lock:
            return iter([k for k in list(self._data) if k.lower().startswith(prefix.lower())])
""",
        "test_keys_prefix_matches_literally",
    ),
    "prefix-as-glob": (
        """
    def _iter_keys(self, prefix):
        import fnmatch
        with self._lock:
            return iter([k for k in list(self._data) if fnmatch.fnmatchcase(k, prefix + "*")])
""",
        "test_keys_prefix_matches_literally",
    ),
    "keys-ignore-prefix": (
        """
    def _iter_keys(self, prefix):
        with self._lock:
            return iter(list(self._data))
""",
        "test_other_namespace_cannot_list",
    ),
    "read-many-out-of-order": (
        """
    def _read_many(self, keys):
        return [self._read(k) for k in reversed(keys)]
""",
        "test_read_many_returns_only_existing_keys",
    ),
    "cas-ignores-absent": (
        """
    def _write_if(self, key, data, expected, ttl, consistency):
        with self._lock:
            current = self._live(key)
            if current is not None and content_version(current) != expected:
                return False
            self._put(key, data, ttl)
            return True
""",
        "test_if_version_on_absent_key_conflicts",
    ),
    "data-lost-on-close": (
        """
    def _close(self):
        self._data.clear()
""",
        "test_reopen_after_close or test_data_outlives",
    ),
}


@pytest.mark.parametrize(("body", "selection"), list(_MUTANTS.values()), ids=list(_MUTANTS))
def test_suite_catches_broken_backend(pytester: pytest.Pytester, body: str, selection: str) -> None:
    pytester.makepyfile(
        test_mutant=f"""
import time
from dataclasses import dataclass

import pytest

import {__name__} as kit
from storage_core.testing import StorageContract
from storage_core.versions import content_version


class Mutant(kit.MemoryStorage):
{body}

@dataclass(frozen=True)
class MutantFactory:
    space: str

    def __call__(self, namespace):
        store = Mutant(self.space).configure(namespace=namespace)
        store.initialize()
        return store


class TestMutant(StorageContract):
    supports_processes = False

    @pytest.fixture
    def storage_factory(self, request):
        yield MutantFactory(request.node.nodeid)
        kit._SPACES.pop(request.node.nodeid, None)
"""
    )
    result = pytester.runpytest_inprocess("-q", "-p", "no:cacheprovider", "-k", selection)
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) >= 1, f"the mutant passed {selection!r}: {outcomes}"


def test_suite_passes_unbroken_backend_in_fresh_session(pytester: pytest.Pytester) -> None:
    """The control for the mutants: the same harness with no mutation passes."""
    pytester.makepyfile(
        test_control=f"""
import pytest

import {__name__} as kit
from storage_core.testing import StorageContract


class TestControl(StorageContract):
    supports_processes = False

    @pytest.fixture
    def storage_factory(self, request):
        yield kit.MemoryFactory(request.node.nodeid)
        kit._SPACES.pop(request.node.nodeid, None)
"""
    )
    selection = " or ".join(sorted({f"({s})" for _, s in _MUTANTS.values()}))
    outcomes = pytester.runpytest_inprocess("-q", "-p", "no:cacheprovider", "-k", selection).parseoutcomes()
    assert outcomes.get("failed", 0) == outcomes.get("errors", 0) == 0, outcomes
    assert outcomes.get("passed", 0) > 20, outcomes


# -- the kit's own pieces -------------------------------------------------------------------


def test_config_factory_pickles_a_read_only_mapping() -> None:
    config = MappingProxyType({"backend": "local", "local": MappingProxyType({"path": "/tmp/x.db"})})
    factory = config_factory(config)
    assert factory.config == {"backend": "local", "local": {"path": "/tmp/x.db"}}
    assert pickle.loads(pickle.dumps(factory)) == factory  # noqa: S301


def test_config_factory_accepts_a_path() -> None:
    assert config_factory(Path("agent.yaml")) == ConfigFactory("agent.yaml")


def test_memory_factory_pickles() -> None:
    factory = MemoryFactory("space")
    assert pickle.loads(pickle.dumps(factory)) == factory  # noqa: S301


def test_fresh_namespaces_differ() -> None:
    assert len({fresh_namespace() for _ in range(100)}) == 100


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        (True, 1, False),
        (1, 1.0, False),
        (0.0, -0.0, False),
        ({"a": [1, {"b": None}]}, {"a": [1, {"b": None}]}, True),
        ({"a": [1]}, {"a": [True]}, False),
        ([1, 2], [1, 2, 3], False),
        ({"a": 1}, {"b": 1}, False),
    ],
)
def test_same_json_compares_types(a: Any, b: Any, same: bool) -> None:
    assert same_json(a, b) is same


# -- capabilities the in-memory backend lacks ---------------------------------------------


def test_memory_backend_lacks_coordination_and_says_so() -> None:
    from storage_core import Capability, Lease, NotSupported

    store = MemoryFactory(uuid4().hex)("ns")
    lease = Lease("job", 1, 0.0, "elsewhere/ns")
    calls: list[tuple[str, Callable[[], object]]] = [
        ("leases", lambda: store.acquire_lease("job", ttl=1.0)),
        ("leases", lambda: store.renew_lease(lease, ttl=1.0)),
        ("leases", lambda: store.release_lease(lease)),
        ("leases", lambda: store.write("k", 1, fence=lease)),
        ("transactions", lambda: store.transaction(write={"k": 1})),
        ("change_feed", store.watch),
    ]
    for capability, call in calls:
        with pytest.raises(NotSupported, match=rf"'memory_test' backend does not support {capability}"):
            call()
    with pytest.raises(NotSupported, match="change_feed"):
        MemoryStorage("x").configure(change_feed=True)
    assert not store.exists("k")
    assert not any(store.supports(c) for c in (Capability.LEASES, Capability.TRANSACTIONS, Capability.CHANGE_FEED))
    store.close()


def test_memory_contract_skips_coordination_by_name(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_skips=f"""
import pytest

import {__name__} as kit
from storage_core.testing import StorageContract


class TestControl(StorageContract):
    supports_processes = False

    @pytest.fixture
    def storage_factory(self, request):
        yield kit.MemoryFactory(request.node.nodeid)
        kit._SPACES.pop(request.node.nodeid, None)
"""
    )
    result = pytester.runpytest_inprocess(
        "-q", "-rs", "-p", "no:cacheprovider", "-k", "lease or fence or transaction or watch"
    )
    outcomes = result.parseoutcomes()
    assert outcomes.get("skipped", 0) >= 40, outcomes
    assert "passed" not in outcomes, outcomes
    assert "failed" not in outcomes, outcomes
    for capability in ("LEASES (leases)", "TRANSACTIONS (transactions)", "CHANGE_FEED (change_feed)"):
        result.stdout.fnmatch_lines([f"*'memory_test' backend does not declare Capability.{capability}*"])
