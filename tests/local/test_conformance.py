"""The shared conformance suite, run against a real SQLite file."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage_core.testing import StorageContract, StorageFactory, config_factory


class TestLocalContract(StorageContract):
    @pytest.fixture
    def storage_factory(self, tmp_path: Path) -> StorageFactory:
        return config_factory({"backend": "local", "local": {"path": str(tmp_path / "state.db")}})
