"""Sentinel and Cluster in the config and in URLs: read once, checked, secrets kept apart and masked."""

from __future__ import annotations

from typing import Any

import pytest
from redis.backoff import NoBackoff
from storage_redis.addresses import parse_addresses
from storage_redis.config import FAILOVER_MAX_DELAY_MS, FAILOVER_RETRIES

from storage_core import ConfigError
from storage_redis import RedisConfig

DATA = "data-Secret-4f1"
SENTINEL = "sentinel-Secret-9c2"


def test_a_sentinel_url_names_the_sentinels_the_service_and_the_data_nodes_credentials() -> None:
    config = RedisConfig(f"redis+sentinel://agent:{DATA}@10.0.0.1:26379,10.0.0.2,[::1]:26380/mymaster?db=3")
    assert config.scheme == "redis+sentinel"
    assert config.addresses == (("10.0.0.1", 26379), ("10.0.0.2", 26379), ("::1", 26380))
    assert config.service == "mymaster"
    kwargs = config.node_kwargs()
    assert (kwargs["username"], kwargs["password"], kwargs["db"]) == ("agent", DATA, 3)
    assert "host" not in kwargs
    assert config.sentinel_kwargs()["password"] is None


def test_sentinel_credentials_stay_apart_from_the_data_nodes() -> None:
    config = RedisConfig(
        "redis+sentinel://h1:1,h2:2/svc", password=DATA, sentinel_username="watcher", sentinel_password=SENTINEL
    )
    assert config.node_kwargs()["password"] == DATA
    sentinel = config.sentinel_kwargs()
    assert (sentinel["username"], sentinel["password"]) == ("watcher", SENTINEL)
    assert set(config.secrets()) == {DATA, SENTINEL}
    for kwargs in (config.node_kwargs(), sentinel):
        retry = kwargs["retry"]
        assert retry._retries == 0
        assert isinstance(retry._backoff, NoBackoff)


def test_the_section_form_needs_no_url() -> None:
    config = RedisConfig(sentinels="s1:5000, s2", service_name="primary", read_from_replicas=True)
    assert (config.scheme, config.service) == ("redis+sentinel", "primary")
    assert config.addresses == (("s1", 5000), ("s2", 26379))
    cluster = RedisConfig(cluster_nodes="n1:7000,n2:7001", namespace_hash_tag=True)
    assert (cluster.scheme, cluster.addresses) == ("redis+cluster", (("n1", 7000), ("n2", 7001)))
    assert "db" not in cluster.node_kwargs()


def test_a_cluster_url() -> None:
    config = RedisConfig(f"redis+cluster://:{DATA}@n1:7000,n2:7001")
    assert config.addresses == (("n1", 7000), ("n2", 7001))
    assert config.node_kwargs()["password"] == DATA
    assert config.secrets() == (DATA,)
    assert DATA not in repr(config)
    assert DATA not in config.redacted_url


def test_sentinel_and_cluster_ride_through_a_failover_by_default() -> None:
    for config in (RedisConfig("redis+sentinel://h:1/s"), RedisConfig("redis+cluster://h:1")):
        assert (config.max_retries, config.retry_max_delay_ms) == (FAILOVER_RETRIES, FAILOVER_MAX_DELAY_MS)
    given = RedisConfig("redis+cluster://h:1", max_retries=3, retry_max_delay_ms=10_000)
    assert (given.max_retries, given.retry_max_delay_ms) == (3, 10_000)
    assert RedisConfig("redis+cluster://h:1", retry_delay_ms=2000).retry_max_delay_ms == 2000
    standalone = RedisConfig("redis://h:1/0")
    assert (standalone.max_retries, standalone.retry_max_delay_ms) == (3, 10_000)


@pytest.mark.parametrize(
    ("options", "field", "says"),
    [
        ({}, "storage.redis", "missing required field(s): url (or sentinels"),
        ({"url": "redis+sentinel://h:1"}, "storage.redis.service_name", "needs the service name"),
        ({"url": "redis+sentinel://h:1/a/b"}, "storage.redis.url", "is the service name"),
        ({"url": "redis+sentinel:///svc"}, "storage.redis.url", "names no host"),
        ({"url": "redis+sentinel://h:99999/svc"}, "storage.redis.url", "1 to 65535"),
        ({"url": "redis+sentinel://::1:5/svc"}, "storage.redis.url", "IPv6 host goes in brackets"),
        ({"url": "redis+sentinel://[::1/svc"}, "storage.redis.url", "IPv6 host goes in brackets"),
        ({"url": "redis+sentinel://h,,g/svc"}, "storage.redis.url", "empty address"),
        ({"url": "redis+sentinel://:5/svc"}, "storage.redis.url", "names no host"),
        ({"url": "redis+sentinel://h/svc?db=x"}, "storage.redis.url", "db in its query must be a number"),
        ({"url": "redis+sentinel://h/svc?socket_timeout=1"}, "storage.redis.url", "set storage.redis.socket_timeout"),
        ({"url": "redis+cluster://h:1/2"}, "storage.redis.url", "only database 0"),
        ({"url": "redis+cluster://h:1?db=1"}, "storage.redis.url", "only database 0"),
        ({"url": "redis+cluster://h:1", "db": 1}, "storage.redis.db", "only database 0"),
        ({"url": "redis://h:1/0", "service_name": "s"}, "storage.redis.service_name", "Sentinel deployment"),
        ({"url": "redis+cluster://h", "sentinel_password": "x"}, "storage.redis.sentinel_password", "Sentinel"),
        ({"url": "redis://h:1/0", "read_from_replicas": True}, "storage.redis.read_from_replicas", "its replicas"),
        ({"url": "redis://h:1/0", "sentinels": "s:1"}, "storage.redis.sentinels", "either url or sentinels"),
        ({"sentinels": "s:1", "cluster_nodes": "c:1"}, "storage.redis.cluster_nodes", "not both"),
        ({"cluster_nodes": "c:x"}, "storage.redis.cluster_nodes", "host:port items"),
        ({"url": "redis+cluster://h", "ssl_ca_certs": "/ca.pem"}, "storage.redis.ssl_ca_certs", "rediss://"),
    ],
)
def test_bad_topology_options_name_the_field(options: dict[str, Any], field: str, says: str) -> None:
    from storage_redis import RedisStorage

    with pytest.raises(ConfigError) as caught:
        RedisStorage.from_options(options)
    assert caught.value.field == field
    assert says in str(caught.value)


def test_a_mistyped_url_never_shows_the_password() -> None:
    with pytest.raises(ConfigError) as caught:
        RedisConfig(f"redis+sentinel://:{DATA}@h:port/svc")
    assert DATA not in str(caught.value)


def test_addresses_default_their_port() -> None:
    assert parse_addresses("a,[::1],b:2", 9) == (("a", 9), ("::1", 9), ("b", 2))
