"""The test topologies themselves: up, in sync, and every process stopped by its PID."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from redis_servers import _RUNNING, stop_all
from topologies import SERVICE, ClusterTopology, SentinelTopology

# Multi-server topologies: the editable run covers them; see .ci/test-installed.
pytestmark = pytest.mark.topology


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0): reaped by its Popen.wait, it is gone.
    return Path(f"/proc/{pid}").exists() and "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()


def test_sentinel_topology_agrees_on_a_primary(sentinel_topology: SentinelTopology) -> None:
    primary = sentinel_topology.current_primary()
    with sentinel_topology.sentinel_client(sentinel_topology.sentinels[0]) as raw:
        assert raw.sentinel_master(SERVICE)["num-slaves"] == 1
    assert sentinel_topology.current_replica() is not primary


def test_cluster_topology_has_three_primaries_with_a_replica_each(cluster_topology: ClusterTopology) -> None:
    primaries = cluster_topology.primaries()
    assert len(primaries) == 3
    assert all(len(cluster_topology.replicas_of(p)) == 1 for p in primaries)
    assert cluster_topology.owner("some-key") in primaries


def test_a_stopped_topology_leaves_no_process(private_sentinel: Callable[..., SentinelTopology]) -> None:
    topology = private_sentinel()
    pids = [s.pid for s in (*topology.nodes, *topology.sentinels)]
    topology.stop()
    assert not [pid for pid in pids if _alive(pid)]
    assert not set(pids) & set(_RUNNING)


def test_stop_all_kills_what_an_interrupted_run_left(private_cluster: Callable[..., ClusterTopology]) -> None:
    topology = private_cluster(replicas=0)
    pids = [node.pid for node in topology.nodes]
    frozen = topology.nodes[0]
    frozen.pause()  # even a SIGSTOPped server must go
    stop_all()  # what atexit runs when pytest is interrupted
    assert not [pid for pid in pids if _alive(pid)]
    for node in topology.nodes:
        node.process = None  # already gone: the fixture's stop() has nothing left to do
