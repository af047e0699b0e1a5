"""The shared conformance suite against a Sentinel topology and a 3-primary cluster with replicas."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
import redis
from redis.cluster import RedisCluster
from topologies import ClusterTopology, SentinelTopology

from storage_core.storage import Storage
from storage_core.testing import StorageContract, StorageFactory, config_factory
from storage_core.testing._base import MakeStore
from storage_core.testing._bulk import BulkContract
from storage_core.testing._changes import ChangesContract
from storage_core.testing._coordination_processes import CoordinationProcessesContract
from storage_core.testing._keys import KeysContract
from storage_core.testing._leases import LeasesContract
from storage_core.testing._namespaces import NamespacesContract
from storage_core.testing._transactions import TransactionsContract
from storage_core.testing._values import ValuesContract
from storage_core.testing._versions import VersionsContract

# Multi-server topologies: the editable run covers them; see .ci/test-installed.
pytestmark = pytest.mark.topology


class TestSentinelContract(StorageContract):
    """Through the sentinels, with separate passwords for them and for the data nodes, at STRONG with WAIT."""

    @pytest.fixture
    def storage_factory(self, sentinel_topology: SentinelTopology) -> StorageFactory:
        topology = sentinel_topology
        self.topology = topology
        self.secrets = tuple(filter(None, [topology.data_password, topology.sentinel_password]))
        options: dict[str, Any] = {
            "url": topology.url,
            "sentinel_password": topology.sentinel_password,
            "wait_replicas": 1,
        }
        return config_factory({"backend": "redis", "redis": options})

    def write_raw(self, store: Storage, key: str, data: bytes) -> None:
        """Plant the bytes on the primary with a plain redis-py client, as a foreign writer would."""
        primary = self.topology.current_primary()
        with redis.Redis(port=primary.port, password=self.topology.data_password) as raw:
            raw.set(store._prefix + key, data)


class ClusterFixtures:
    """The cluster's store factory and raw writer, for the contract classes below."""

    options: ClassVar[dict[str, Any]] = {"wait_replicas": 1}
    secrets: tuple[str, ...] = ()

    @pytest.fixture
    def storage_factory(self, cluster_topology: ClusterTopology) -> StorageFactory:
        self.topology = cluster_topology
        self.secrets = tuple(filter(None, [cluster_topology.password]))
        return config_factory({"backend": "redis", "redis": {"url": cluster_topology.url, **self.options}})

    def write_raw(self, store: Storage, key: str, data: bytes) -> None:
        node = self.topology.nodes[0]
        with RedisCluster(host="127.0.0.1", port=node.port, password=self.topology.password) as raw:
            raw.set(store._prefix + key, data)


class TestClusterContract(ClusterFixtures, StorageContract):
    """Keys spread over three primaries (each with a replica), at STRONG with WAIT on the owner's connection."""


class TestClusterHashTagContract(
    ClusterFixtures,
    ValuesContract,
    KeysContract,
    BulkContract,
    NamespacesContract,
    VersionsContract,
    LeasesContract,
    TransactionsContract,
    ChangesContract,
    CoordinationProcessesContract,
):
    """Each namespace in one slot (``{namespace}:key``): the parts of the contract that the tag
    changes (where keys live, how they are listed and batched) and coordination, which needs
    it (one script over a namespace's keys, its leases and its feed); the rest runs untagged
    above, where every store costs a cluster discovery, so running it twice would double CI time."""

    options: ClassVar[dict[str, Any]] = {"wait_replicas": 1, "namespace_hash_tag": True}

    # The two tests that pin the stored layout ``namespace:key``: with the tag it is
    # ``{namespace}:key``, which a store without a namespace sees and writes as such.
    def test_no_namespace_sees_prefixed_key(self, store: Storage, make_store: MakeStore, namespace: str) -> None:
        bare = make_store("")
        store.write("key", {"v": 1})
        assert bare.read(f"{{{namespace}}}:key") == {"v": 1}
        assert sorted(bare.keys(f"{{{namespace}}}:")) == [f"{{{namespace}}}:key"]

    def test_no_namespace_writes_into_namespace(self, store: Storage, make_store: MakeStore, namespace: str) -> None:
        bare = make_store("")
        bare.write(f"{{{namespace}}}:from-bare", "hello")
        assert store.read("from-bare") == "hello"
        assert list(store.keys()) == ["from-bare"]
