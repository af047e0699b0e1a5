"""Sentinel with real processes: reads where the config says, STRONG that means it, failovers survived."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import redis
from conftest import OpenRedis
from failover import Writers, lost_writes
from storage_redis.sentinel import HealthySentinel
from topologies import SentinelTopology

from storage_core import AuthenticationFailed, ConsistencyError

# Multi-server topologies: the editable run covers them; see .ci/test-installed.
pytestmark = pytest.mark.topology

PrivateSentinel = Callable[..., SentinelTopology]


def _gets(topology: SentinelTopology) -> dict[int, int]:
    """GETs each data node ran since the last reset."""
    return {node.port: node.commandstats().get("get", 0) for node in topology.nodes}


def test_eventual_reads_go_to_a_replica_and_strong_reads_to_the_primary(
    sentinel_topology: SentinelTopology, open_redis: OpenRedis
) -> None:
    topology = sentinel_topology
    options = {"sentinel_password": topology.sentinel_password, "read_from_replicas": True, "wait_replicas": 1}
    strong = open_redis(topology.url, namespace="reads", **options)
    eventual = open_redis(topology.url, namespace="reads", consistency="eventual", **options)
    strong.write("k", "v")  # acknowledged by the replica: the replica has it
    primary, replica = topology.current_primary(), topology.current_replica()
    for node in topology.nodes:
        node.reset_stats()
    assert [eventual.read("k") for _ in range(5)] == ["v"] * 5
    assert eventual.read_many(["k"]) == {"k": "v"}
    assert _gets(topology) == {primary.port: 0, replica.port: 5}
    assert [strong.read("k") for _ in range(3)] == ["v"] * 3
    assert _gets(topology) == {primary.port: 3, replica.port: 5}
    # Writes at either level always go to the primary.
    eventual.write("k", "w")
    assert strong.read("k") == "w"


def test_a_replica_whose_link_is_down_is_not_read_from() -> None:
    def replica(link: str, **flags: bool) -> dict[str, object]:
        state = {"ip": "10.0.0.9", "port": 6379, "is_odown": False, "is_sdown": False, "is_disconnected": False}
        return {**state, **flags, "master-link-status": link}

    sentinel = HealthySentinel([])  # type: ignore[no-untyped-call, unused-ignore]
    found = sentinel.filter_slaves(
        [replica("ok"), replica("err"), replica("ok", is_sdown=True), replica("ok", is_disconnected=True)]
    )
    assert found == [("10.0.0.9", 6379)]


def test_a_wrong_sentinel_password_is_refused_at_once(
    sentinel_topology: SentinelTopology, open_redis: OpenRedis
) -> None:
    started = time.monotonic()
    with pytest.raises(AuthenticationFailed, match="sentinel") as caught:
        open_redis(sentinel_topology.url, sentinel_password="wrong-guess")
    assert time.monotonic() - started < 2, "an authentication error must never be retried"
    for secret in (sentinel_topology.sentinel_password, sentinel_topology.data_password):
        assert secret
        assert secret not in str(caught.value)


def test_strong_waits_for_the_replica_and_says_when_it_did_not_ack(
    private_sentinel: PrivateSentinel, open_redis: OpenRedis
) -> None:
    topology = private_sentinel()
    store = open_redis(topology.url, wait_replicas=1, wait_timeout_ms=300, namespace="strong")
    store.write("before", 1)
    replica = topology.current_replica()
    with replica.client() as raw:
        assert raw.get("strong:before") == b"1"  # acknowledged means the replica has it
    with replica.frozen():
        with pytest.raises(ConsistencyError, match="only 0 of 1 replicas"):
            store.write("k", "applied")
        store.write("e", "eventual", consistency="eventual")  # EVENTUAL does not wait
    with topology.current_primary().client() as raw:
        assert raw.get("strong:k") == b'"applied"'


@pytest.mark.slow
def test_strong_writes_survive_a_failover_with_none_lost(
    private_sentinel: PrivateSentinel, open_redis: OpenRedis
) -> None:
    topology = private_sentinel()
    store = open_redis(topology.url, wait_replicas=1, wait_timeout_ms=500, namespace="failover")
    old = topology.current_primary()
    with Writers(store, threads=4, consistency="strong") as writers:
        writers.wait_for(50)
        old.kill()
        new = topology.wait_failover(old)
        # The new primary has no replica until the old one comes back as one: until then
        # its writes are applied but unconfirmed (ConsistencyError), as they should be.
        topology.rejoin(old)
        writers.wait_for(writers.acknowledged + 50)
    report = writers.report(f"Sentinel failover, STRONG wait_replicas=1 ({store.config.max_retries} retries)")
    assert new is not old
    assert writers.unexpected == [], writers.unexpected
    assert writers.failed == [], "no caller saw ConnectionFailed: the failover was within the retry budget"
    assert lost_writes(store, writers.acked) == [], report
    assert writers.window > 0.5  # the primary really was gone for a while


@pytest.mark.slow
def test_eventual_writes_through_a_failover_counts_what_was_lost(
    private_sentinel: PrivateSentinel, open_redis: OpenRedis
) -> None:
    topology = private_sentinel()
    store = open_redis(topology.url, namespace="eventual")
    old = topology.current_primary()
    with Writers(store, threads=4, consistency="eventual") as writers:
        writers.wait_for(200)
        old.kill()
        topology.wait_failover(old)
        writers.wait_for(writers.acknowledged + 50)
    lost = lost_writes(store, writers.acked)
    writers.report("Sentinel failover, EVENTUAL", lost=len(lost))
    assert writers.unexpected == [], writers.unexpected
    # Asynchronous replication may lose the last writes before the kill; never more than were acknowledged.
    assert len(lost) <= len(writers.acked)


def test_the_store_follows_a_failover_between_operations(
    private_sentinel: PrivateSentinel, open_redis: OpenRedis
) -> None:
    topology = private_sentinel()
    store = open_redis(topology.url, namespace="follow", wait_replicas=1)
    store.write("k", 1)
    old = topology.current_primary()
    old.kill()
    topology.wait_failover(old)
    assert store.read("k") == 1
    store.write("k", 2, consistency="eventual")  # no replica until the old primary rejoins
    topology.rejoin(old)
    store.write("k", 3)
    with redis.Redis(port=old.port) as raw:  # now a replica, in sync
        assert raw.get("follow:k") == b"3"
