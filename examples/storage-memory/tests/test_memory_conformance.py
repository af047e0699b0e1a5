"""The whole storage-core contract, on the memory backend: a backend author's test file."""

from __future__ import annotations

import uuid

import pytest

from storage_core.testing import ConfigFactory, StorageContract, config_factory


class TestMemoryStorage(StorageContract):
    supports_processes = False  # the data lives in one process
    persistent = False  # and goes when the last store of its name closes

    @pytest.fixture
    def storage_factory(self) -> ConfigFactory:
        return config_factory({"backend": "memory", "memory": {"name": uuid.uuid4().hex}})
