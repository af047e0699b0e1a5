"""``StorageContract``: the whole contract of DESIGN.md as pytest tests, one class to subclass."""

from __future__ import annotations

from storage_core.testing._bulk import BulkContract
from storage_core.testing._changes import ChangesContract
from storage_core.testing._concurrency import ConcurrencyContract
from storage_core.testing._consistency import ConsistencyContract
from storage_core.testing._coordination_processes import CoordinationProcessesContract
from storage_core.testing._expiry import ExpiryContract
from storage_core.testing._keys import KeysContract
from storage_core.testing._leases import LeasesContract
from storage_core.testing._lifecycle import LifecycleContract
from storage_core.testing._namespaces import NamespacesContract
from storage_core.testing._read_only import ReadOnlyContract
from storage_core.testing._transactions import TransactionsContract
from storage_core.testing._ttl_read import OrderedKeysContract, TtlReadContract
from storage_core.testing._values import ValuesContract
from storage_core.testing._versions import VersionsContract

__all__ = ["StorageContract"]


class StorageContract(
    ValuesContract,
    KeysContract,
    BulkContract,
    NamespacesContract,
    ExpiryContract,
    TtlReadContract,
    OrderedKeysContract,
    VersionsContract,
    ConsistencyContract,
    ConcurrencyContract,
    LifecycleContract,
    LeasesContract,
    TransactionsContract,
    ChangesContract,
    CoordinationProcessesContract,
    ReadOnlyContract,
):
    """Subclass as ``Test...`` and define the ``storage_factory`` fixture to run the suite.

    ::

        from storage_core.testing import StorageContract, config_factory

        class TestMyBackend(StorageContract):
            @pytest.fixture
            def storage_factory(self, tmp_path):
                return config_factory({"backend": "mine", "mine": {"path": str(tmp_path)}})

    ``storage_factory`` returns ``factory(namespace) -> initialized Storage``; every store
    it makes shares one backing store. It must pickle (a module-level function or a
    :func:`config_factory`): the process tests hand it to spawned workers. Each test gets
    a fresh ``contract-...`` namespace, and every store it opens is closed afterwards.

    Class attributes a subclass may set:

    ``short_ttl``, ``ttl_resolution``
        seconds: expiry tests write with ``short_ttl`` and look ``short_ttl +
        ttl_resolution`` later (raise ``ttl_resolution`` for a backend with coarse expiry).
    ``thread_workers``, ``thread_increments``
        threads sharing one store, and ``update`` calls each (defaults 8 and 50).
    ``supports_processes``
        False skips the multi-process tests (a backend living in one process's memory).
    ``process_workers``, ``process_increments``, ``process_timeout``
        spawned processes, ``update`` calls each, and seconds before they count as hung.
    ``persistent``
        False for a backend whose data does not outlive ``close()``.
    ``lease_ttl``
        seconds of the short leases that lease tests wait out (with ``ttl_resolution``).
    ``secrets``
        strings from the config (passwords, tokens) that must never appear in ``repr``
        or in error messages; the check is skipped when empty.
    ``streaming_keys``
        keys written to prove ``_iter_keys`` yields before it has read them all (6000).
    ``atomic_batches``
        ``write_many`` calls a reader races, where ATOMIC_WRITE_MANY is declared (300).
    ``valid_options``
        the backend's config section, for the unknown-option test; by default taken from
        a ``config_factory`` mapping.

    Capabilities come from the backend itself (``Storage.capabilities``): the tests of one
    it does not declare are skipped, naming it. Every skip says which attribute or
    capability caused it, and every failure carries a note naming the contract clause
    it broke and the primitive at fault (see :func:`storage_core.testing.clause`).

    Leases, transactions and the change feed are tested only where the backend declares
    ``Capability.LEASES``/``TRANSACTIONS``/``CHANGE_FEED``; elsewhere those tests are skipped
    with the reason. The change-feed tests reopen the factory's stores with
    ``configure(change_feed=True)``.

    Hook: override ``write_raw(store, key, data)`` to plant non-JSON bytes the way a
    foreign writer would; by default it uses the backend's ``_write`` primitive.

    Read-only mode is checked too: the store is reopened with
    ``configure(read_only=True)`` and every write must raise ``ReadOnly``.

    ``OutcomeUnknown`` (a ``ConnectionFailed``: a conditional write whose reply was lost
    while the key changed) is raised by ``redis`` (``storage_redis.OutcomeUnknown``),
    never by ``local``. The suite does not provoke it, since that needs a reply lost on
    the network: a networked backend raises a ``ConnectionFailed`` subclass for it, never
    a ``VersionConflict``, and proves it with fault tests of its own.
    """
