"""Redis Cluster with real processes: slot-aware batches, listings over every primary,
redirections and a resharding under load, STRONG on the owner's replica, a master killed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import redis
from conftest import OpenRedis
from failover import Writers, lost_writes
from topologies import ClusterTopology

from storage_core import ConsistencyError, StorageError
from storage_redis import RedisStorage

# Multi-server topologies: the editable run covers them; see .ci/test-installed.
pytestmark = pytest.mark.topology

PrivateCluster = Callable[..., ClusterTopology]


def _calls(topology: ClusterTopology, command: str) -> dict[int, int]:
    return {node.port: node.commandstats().get(command, 0) for node in topology.primaries()}


def _reset(topology: ClusterTopology) -> None:
    for node in topology.live():
        node.reset_stats()


def _errors(topology: ClusterTopology) -> dict[str, int]:
    seen: dict[str, int] = {}
    for node in topology.live():
        for name, values in topology.info(node, "errorstats").items():
            seen[name] = seen.get(name, 0) + int(values["count"])
    return seen


def _store(open_redis: OpenRedis, topology: ClusterTopology, **options: Any) -> RedisStorage:
    namespace = options.pop("namespace", "fleet")
    return open_redis(topology.url, namespace=namespace, **options)


def test_batches_go_one_command_per_slot_and_never_crossslot(
    cluster_topology: ClusterTopology, open_redis: OpenRedis
) -> None:
    store = _store(open_redis, cluster_topology, namespace="batches", wait_replicas=1)
    items = {f"k{i}": i for i in range(100)}
    slots = {cluster_topology.slot(f"batches:{key}") for key in items}
    _reset(cluster_topology)
    errors_before = _errors(cluster_topology)
    store.write_many(items)
    msets = _calls(cluster_topology, "mset")
    assert sum(msets.values()) == len(slots)
    assert all(msets.values()), "the 100 keys spread over every primary"
    assert _calls(cluster_topology, "wait") == dict.fromkeys(msets, 1), "one WAIT per node, after its MSETs"
    assert store.read_many(list(items)) == items
    assert sum(_calls(cluster_topology, "mget").values()) == len(slots)
    store.write_many({f"t{i}": i for i in range(30)}, ttl=60)
    assert store.read_many([f"t{i}" for i in range(30)]) == {f"t{i}": i for i in range(30)}
    # (Every new connection adds two ERR: redis-py's CLIENT SETINFO, which Redis 7.0 does not know.)
    assert _errors(cluster_topology).get("errorstat_CROSSSLOT", 0) == errors_before.get("errorstat_CROSSSLOT", 0)


def test_keys_lists_every_primary_and_streams(cluster_topology: ClusterTopology, open_redis: OpenRedis) -> None:
    store = _store(open_redis, cluster_topology, namespace="listing", scan_count=10)
    keys = {f"k{i}" for i in range(300)}
    store.write_many(dict.fromkeys(keys, 1))
    assert set(store.keys()) == keys
    assert set(store.keys("k1")) == {k for k in keys if k.startswith("k1")}
    _reset(cluster_topology)
    listing = store.keys()
    next(listing)
    scans = _calls(cluster_topology, "scan")
    assert sorted(scans.values()) == [0, 0, 1], "one page from one primary, not every key at once"


def test_the_hash_tag_puts_a_namespace_in_one_slot(cluster_topology: ClusterTopology, open_redis: OpenRedis) -> None:
    store = _store(open_redis, cluster_topology, namespace="tagged", namespace_hash_tag=True, wait_replicas=1)
    _reset(cluster_topology)
    store.write_many({f"k{i}": i for i in range(50)})
    assert sorted(_calls(cluster_topology, "mset").values()) == [0, 0, 1], "one atomic MSET on one primary"
    owner = cluster_topology.owner("{tagged}:k0")
    with cluster_topology.client(owner) as raw:
        assert raw.get("{tagged}:k7") == b"7"
    _reset(cluster_topology)
    assert sorted(store.keys()) == sorted(f"k{i}" for i in range(50))
    assert sorted(_calls(cluster_topology, "scan").values())[:2] == [0, 0], "only the tag's primary is scanned"
    assert store.update("k1", lambda v: v + 1) == 2


def test_an_operation_across_slots_says_to_use_the_hash_tag(
    cluster_topology: ClusterTopology, open_redis: OpenRedis
) -> None:
    store = _store(open_redis, cluster_topology, namespace="crossing")
    node = cluster_topology.primaries()[0]

    def mset_across_slots() -> None:
        with cluster_topology.client(node) as raw:
            raw.execute_command("MSET", "{a}x", 1, "{b}y", 2)

    with pytest.raises(StorageError, match="namespace_hash_tag: true"):
        store.with_retry(mset_across_slots)


def test_strong_waits_for_the_replica_of_the_key_s_own_primary(
    private_cluster: PrivateCluster, open_redis: OpenRedis
) -> None:
    topology = private_cluster()
    store = _store(open_redis, topology, wait_replicas=1, wait_timeout_ms=300)
    owner = topology.owner("fleet:k")
    replica = topology.replicas_of(owner)[0]
    other = next(p for p in topology.primaries() if p is not owner)
    other_key = next(f"o{i}" for i in range(1000) if topology.owner(f"fleet:o{i}") is other)
    with replica.frozen():
        with pytest.raises(ConsistencyError, match="only 0 of 1 replicas"):
            store.write("k", "applied")
        store.write(other_key, "fine")  # its primary's replica is awake: WAIT there succeeds
        with pytest.raises(ConsistencyError, match="batch write"):
            store.write_many({f"b{i}": i for i in range(30)})  # some of them live on the frozen replica's primary
        store.write("k", "eventual", consistency="eventual")
    with topology.client(owner) as raw:
        assert raw.get("fleet:k") == b'"eventual"'
    assert store.read_many([f"b{i}" for i in range(30)]) == {f"b{i}": i for i in range(30)}, "applied everywhere"


def test_writes_follow_an_ask_during_a_migration_and_a_moved_after_it(
    private_cluster: PrivateCluster, open_redis: OpenRedis
) -> None:
    topology = private_cluster()
    store = _store(open_redis, topology, wait_replicas=1)
    store.write("warm", 0)  # the store has its slot map before the slot moves
    source = topology.owner("fleet:moving")
    target = next(p for p in topology.primaries() if p is not source)
    slot = topology.slot("fleet:moving")
    with topology.client(target) as raw:
        raw.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", topology.node_id(source))
    with topology.client(source) as raw:
        raw.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", topology.node_id(target))
    store.write("moving", "asked")  # absent on the source: ASK, then ASKING + SET + WAIT on the target
    store.write_many({"moving": "asked again"})
    with topology.client(target) as raw:
        raw.execute_command("ASKING")
        assert raw.get("fleet:moving") == b'"asked again"'
    for node in topology.primaries():
        with topology.client(node) as raw:
            raw.execute_command("CLUSTER", "SETSLOT", slot, "NODE", topology.node_id(target))
    assert store.read("moving") == "asked again"
    store.write("moving", "moved")  # the store still thinks the source owns it: MOVED, then the target
    assert store.update("moving", lambda v: v + "!") == "moved!"
    with topology.client(target) as raw:
        assert raw.get("fleet:moving") == b'"moved!"'


@pytest.mark.slow
def test_a_resharding_under_strong_writers_loses_nothing(
    private_cluster: PrivateCluster, open_redis: OpenRedis
) -> None:
    topology = private_cluster()
    store = _store(open_redis, topology, wait_replicas=1)
    source, target = topology.primaries()[:2]
    with Writers(store, threads=4, consistency="strong") as writers:
        writers.wait_for(300)
        resharding = topology.reshard(source, target, slots=1500)
        _, stderr = resharding.communicate(timeout=120)
        assert resharding.returncode == 0, stderr.decode(errors="replace")[-2000:]
        writers.wait_for(writers.acknowledged + 100)
    writers.report("Cluster resharding of 1500 slots, STRONG wait_replicas=1")
    assert writers.unexpected == [], writers.unexpected
    assert writers.failed == []
    assert writers.unconfirmed == []
    assert lost_writes(store, writers.acked) == []


@pytest.mark.slow
@pytest.mark.parametrize("consistency", ["strong", "eventual"])
def test_a_master_killed_under_writers(
    private_cluster: PrivateCluster, open_redis: OpenRedis, consistency: str
) -> None:
    topology = private_cluster()
    store = _store(open_redis, topology, wait_replicas=1, wait_timeout_ms=500)
    victim = topology.primaries()[0]
    replica = topology.replicas_of(victim)[0]
    with Writers(store, threads=4, consistency=consistency) as writers:
        writers.wait_for(200)
        victim.kill()
        topology.wait_promoted(replica)
        # The promoted replica has no replica of its own until the old master returns as one:
        # until then STRONG writes of its slots are applied but unconfirmed (ConsistencyError).
        victim.start()
        writers.wait_for(writers.acknowledged + 100)
    lost = lost_writes(store, writers.acked)
    writers.report(f"Cluster master killed, {consistency.upper()} wait_replicas=1", lost=len(lost))
    assert writers.unexpected == [], writers.unexpected
    assert writers.failed == [], "no caller saw ConnectionFailed: the failover was within the retry budget"
    if consistency == "strong":
        assert lost == [], "every acknowledged STRONG write survived the failover"
    with redis.Redis(port=victim.port, password=topology.password) as raw:
        assert raw.info("replication")["role"] == "slave", "the old master came back as a replica"


def test_eventual_reads_from_replicas_and_strong_from_primaries(
    cluster_topology: ClusterTopology, open_redis: OpenRedis
) -> None:
    topology = cluster_topology
    strong = _store(open_redis, topology, namespace="replicas", read_from_replicas=True, wait_replicas=1)
    eventual = _store(open_redis, topology, namespace="replicas", read_from_replicas=True, consistency="eventual")
    strong.write_many({f"k{i}": i for i in range(20)})  # confirmed by every replica it reached
    primaries = {node.port for node in topology.primaries()}
    _reset(topology)
    assert [eventual.read(f"k{i}") for i in range(20)] == list(range(20))
    gets = {node.port: node.commandstats().get("get", 0) for node in topology.live()}
    assert sum(n for port, n in gets.items() if port in primaries) == 0
    assert sum(gets.values()) == 20
    _reset(topology)
    assert strong.read("k1") == 1
    gets = {node.port: node.commandstats().get("get", 0) for node in topology.live()}
    assert sum(n for port, n in gets.items() if port in primaries) == 1


def test_scripts_a_restart_forgot_are_loaded_again(cluster_topology: ClusterTopology, open_redis: OpenRedis) -> None:
    store = _store(open_redis, cluster_topology, namespace="noscript", wait_replicas=1)
    store.write("k", 1)
    for node in cluster_topology.primaries():
        with cluster_topology.client(node) as raw:
            raw.script_flush()
    store.write_many({f"t{i}": i for i in range(20)}, ttl=60)  # SET ... PX script per slot: NOSCRIPT, loaded, again
    assert store.read_many([f"t{i}" for i in range(20)]) == {f"t{i}": i for i in range(20)}
    for node in cluster_topology.primaries():
        with cluster_topology.client(node) as raw:
            raw.script_flush()
    assert store.update("k", lambda v: v + 1) == 2  # the compare-and-set script, at STRONG on the key's primary


def test_an_unreachable_cluster_is_connection_failed_and_a_wrong_password_refused(
    cluster_topology: ClusterTopology, open_redis: OpenRedis
) -> None:
    from redis_servers import free_port

    from storage_core import AuthenticationFailed, ConnectionFailed

    with pytest.raises(ConnectionFailed, match="could not be reached after 1 retries"):
        open_redis(f"redis+cluster://127.0.0.1:{free_port()}", max_retries=1, retry_delay_ms=1)
    node = cluster_topology.nodes[0]
    with pytest.raises(AuthenticationFailed) as caught:
        open_redis(f"redis+cluster://:wrong-Guess-3@127.0.0.1:{node.port}")
    assert "wrong-Guess-3" not in str(caught.value)


def test_redis_py_retries_nothing_anywhere_in_the_cluster(
    cluster_topology: ClusterTopology, open_redis: OpenRedis
) -> None:
    store = _store(open_redis, cluster_topology, namespace="retries")
    cluster = store._source.primary().cluster  # type: ignore[attr-defined]
    assert cluster.retry.get_retries() == 0
    for node in cluster.get_nodes():
        pool = cluster.get_redis_connection(node).connection_pool
        assert isinstance(pool, redis.BlockingConnectionPool)
        assert pool.connection_kwargs["retry"].get_retries() == 0


def test_a_batch_is_atomic_only_within_a_hash_tagged_namespace(
    cluster_topology: ClusterTopology, open_redis: OpenRedis
) -> None:
    from storage_core.backend import Capability

    spread = _store(open_redis, cluster_topology, namespace="spread")
    tagged = _store(open_redis, cluster_topology, namespace="tagged", namespace_hash_tag=True)
    assert not spread.supports(Capability.ATOMIC_WRITE_MANY)
    assert tagged.supports(Capability.ATOMIC_WRITE_MANY)
