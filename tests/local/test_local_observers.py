"""An observed local store keeps the whole behavioural contract: instrumenting changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage_core.testing import StorageFactory, config_factory
from storage_core.testing._bulk import BulkContract
from storage_core.testing._keys import KeysContract
from storage_core.testing._lifecycle import LifecycleContract
from storage_core.testing._namespaces import NamespacesContract
from storage_core.testing._versions import VersionsContract


class TestObservedLocalContract(KeysContract, BulkContract, NamespacesContract, VersionsContract, LifecycleContract):
    """The clauses a wrapper could break (arguments, iterables, streams, errors, lifecycle), observed.

    The codec's value tables, expiry and processes are left out: no wrapper touches them.
    """

    @pytest.fixture
    def storage_factory(self, tmp_path: Path) -> StorageFactory:
        return config_factory(
            {
                "backend": "local",
                "consistency": "eventual",
                "local": {"path": str(tmp_path / "state.db")},
                "observers": [{"name": "log", "level": "debug"}, "otel"],
            }
        )
