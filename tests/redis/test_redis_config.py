"""``RedisConfig``: every field checked when built, the URL read once, redis-py's retries off."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from redis.connection import SSLConnection, UnixDomainSocketConnection
from storage_redis.tls import TLSConnection

from storage_core import ConfigError, available_backends, load_config
from storage_redis import RedisConfig, RedisStorage

ROOT = Path(__file__).resolve().parents[2]


def test_the_seed_shape() -> None:
    config = RedisConfig("redis://127.0.0.1:6379/0")
    assert (config.max_retries, config.retry_delay_ms) == (3, 100)
    store = RedisStorage(config)
    assert store.config is config
    assert store.name == "redis"
    assert store.url_schemes == ("redis", "rediss", "unix", "redis+sentinel", "redis+cluster")
    assert callable(store.ping)
    assert callable(store.with_retry)


def test_from_options_reads_strings_as_the_environment_gives_them() -> None:
    store = RedisStorage.from_options(
        {"url": "redis://h:1/2", "max_retries": "5", "retry_delay_ms": "20", "wait_replicas": "1", "wait_aof": "no"}
    )
    assert (store.config.max_retries, store.config.retry_delay_ms, store.config.wait_replicas) == (5, 20.0, 1)
    assert store.config.wait_aof is False


def test_a_config_needs_a_redis_config() -> None:
    with pytest.raises(TypeError, match="RedisConfig"):
        RedisStorage({"url": "redis://h"})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("options", "field", "says"),
    [
        ({}, "storage.redis", "missing required field(s): url"),
        ({"url": 6379}, "storage.redis.url", "expected a string, got int"),
        ({"url": "localhost:6379"}, "storage.redis.url", "expected a URL"),
        ({"url": "http://h:1/0"}, "storage.redis.url", "got scheme 'http'"),
        ({"url": "redis://h:port/0"}, "storage.redis.url", "its port is not a number"),
        ({"url": "redis://[::1/0"}, "storage.redis.url", "an IPv6 host goes in brackets"),
        ({"url": "redis://h:1/zero"}, "storage.redis.url", "must be a database number"),
        ({"url": "redis:///0"}, "storage.redis.url", "names no host"),
        ({"url": "unix://"}, "storage.redis.url", "socket's path"),
        ({"url": "redis://h/0?db=x"}, "storage.redis.url", "not a valid Redis URL"),
        ({"url": "redis://h/0?socket_timeout=1"}, "storage.redis.url", "set storage.redis.socket_timeout instead"),
        ({"url": "redis://h/0?timeout=1"}, "storage.redis.url", "set storage.redis.pool_timeout instead"),
        ({"url": "redis://h/0?frobnicate=1"}, "storage.redis.url", "may carry only db and protocol"),
        ({"url": "redis://h", "db": -1}, "storage.redis.db", "0 or more"),
        ({"url": "redis://h", "max_retries": -1}, "storage.redis.max_retries", "0 to 100"),
        ({"url": "redis://h", "retry_delay_ms": -5}, "storage.redis.retry_delay_ms", "0 or more"),
        ({"url": "redis://h", "retry_max_delay_ms": 10}, "storage.redis.retry_max_delay_ms", "at least"),
        ({"url": "redis://h", "max_connections": 0}, "storage.redis.max_connections", "1 or more"),
        ({"url": "redis://h", "pool_timeout": 0}, "storage.redis.pool_timeout", "more than 0"),
        ({"url": "redis://h", "socket_timeout": 0}, "storage.redis.socket_timeout", "more than 0"),
        ({"url": "redis://h", "socket_connect_timeout": -1}, "storage.redis.socket_connect_timeout", "more than 0"),
        ({"url": "redis://h", "health_check_interval": -1}, "storage.redis.health_check_interval", "0 (off)"),
        ({"url": "redis://h", "wait_replicas": -1}, "storage.redis.wait_replicas", "0 or more"),
        ({"url": "redis://h", "wait_timeout_ms": 0}, "storage.redis.wait_timeout_ms", "1 or more"),
        ({"url": "redis://h", "scan_count": 0}, "storage.redis.scan_count", "1 or more"),
        ({"url": "rediss://h", "ssl_cert_reqs": "maybe"}, "storage.redis.ssl_cert_reqs", "required | optional"),
        ({"url": "redis://h", "ssl_ca_certs": "/ca.pem"}, "storage.redis.ssl_ca_certs", "need a rediss:// URL"),
        ({"url": "redis://h", "ssl_check_hostname": False}, "storage.redis.ssl_check_hostname", "rediss://"),
        (
            {"url": "redis://h", "wait_replicas": 1, "wait_timeout_ms": 5000, "socket_timeout": 5},
            "storage.redis.socket_timeout",
            "must exceed wait_timeout_ms",
        ),
        ({"url": "redis://h", "colour": "blue"}, "storage.redis", "unknown field 'colour'"),
    ],
)
def test_bad_options_name_the_field(options: dict[str, Any], field: str, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        RedisStorage.from_options(options)
    assert caught.value.field == field
    assert says in caught.value.message


@pytest.mark.parametrize(
    ("options", "field", "says"),
    [
        ({"max_retries": "3"}, "max_retries", "expected an integer, got str '3'"),
        ({"max_retries": True}, "max_retries", "expected an integer, got bool"),
        ({"retry_delay_ms": "100"}, "retry_delay_ms", "expected a number, got str"),
        ({"socket_timeout": "5"}, "socket_timeout", "expected a number or null, got str"),
        ({"db": 1.0}, "db", "expected an integer or null, got float"),
        ({"wait_aof": 1}, "wait_aof", "expected true or false, got int"),
        ({"client_name": 7}, "client_name", "expected a string or null, got int"),
        ({"password": 1234}, "password", "expected a string or null, got int"),
    ],
)
def test_a_config_built_directly_checks_the_type_of_each_field(options: dict[str, Any], field: str, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        RedisConfig("redis://h", **options)
    assert caught.value.field == f"storage.redis.{field}"
    assert caught.value.message.startswith(says)
    assert "1234" not in str(caught.value), "a secret field's value is never shown"


def test_numbers_may_be_given_as_int_where_a_float_is_expected() -> None:
    config = RedisConfig("redis://h", retry_delay_ms=20, pool_timeout=1, socket_timeout=None)
    assert (config.retry_delay_ms, config.pool_timeout, config.socket_timeout) == (20, 1, None)


@pytest.mark.parametrize("field", ["ssl_ca_certs", "ssl_certfile", "ssl_keyfile"])
def test_a_tls_file_that_does_not_exist_is_a_config_error_naming_the_field(field: str, tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.pem")
    options: dict[str, Any] = {field: missing}
    with pytest.raises(ConfigError) as caught:
        RedisConfig("rediss://h:6380/0", **options)
    assert caught.value.field == f"storage.redis.{field}"
    assert f"no readable file at {missing!r}" in caught.value.message
    options[field] = str(tmp_path)  # a folder is not a PEM file
    with pytest.raises(ConfigError, match="no readable file"):
        RedisConfig("rediss://h:6380/0", **options)


def test_a_long_wait_is_fine_with_no_socket_timeout() -> None:
    RedisConfig("redis://h", wait_replicas=1, wait_timeout_ms=60_000, socket_timeout=None)
    RedisConfig("redis://h", wait_aof=True, wait_timeout_ms=100)


def _pool_kwargs(config: RedisConfig) -> dict[str, Any]:
    return config.connection_kwargs()


def test_connection_kwargs_switch_redis_py_retries_off() -> None:
    kwargs = _pool_kwargs(RedisConfig("redis://h:7/1?retry_on_timeout=true&retry_on_error=x&protocol=2"))
    assert "retry_on_timeout" not in kwargs
    assert "retry_on_error" not in kwargs
    assert kwargs["retry"].get_retries() == 0
    assert (kwargs["host"], kwargs["port"], kwargs["db"], kwargs["protocol"]) == ("h", 7, 1, 2)
    pool = redis.BlockingConnectionPool(**kwargs)  # type: ignore[no-untyped-call]
    try:
        connection = pool.make_connection()  # type: ignore[no-untyped-call]
        assert connection.retry.get_retries() == 0
        assert connection.retry_on_timeout is False
    finally:
        pool.disconnect()


def test_connection_kwargs_carry_every_field(tmp_path: Path) -> None:
    for name in ("ca.pem", "client.pem", "client.key"):
        (tmp_path / name).write_text("-----BEGIN CERTIFICATE-----\n")
    config = RedisConfig(
        "rediss://alice:url-pw@h:6380/0",
        username="bob",
        password="field-pw",
        db=4,
        max_connections=7,
        pool_timeout=1.5,
        socket_timeout=2.5,
        socket_connect_timeout=0.5,
        health_check_interval=9,
        client_name="agent-7",
        ssl_ca_certs=str(tmp_path / "ca.pem"),
        ssl_certfile=str(tmp_path / "client.pem"),
        ssl_keyfile=str(tmp_path / "client.key"),
        ssl_password="key-pw",
        ssl_cert_reqs="optional",
        ssl_check_hostname=False,
    )
    kwargs = _pool_kwargs(config)
    assert kwargs["connection_class"] is TLSConnection
    assert issubclass(TLSConnection, SSLConnection)
    expected = {
        "username": "bob",
        "password": "field-pw",
        "db": 4,
        "max_connections": 7,
        "timeout": 1.5,
        "socket_timeout": 2.5,
        "socket_connect_timeout": 0.5,
        "health_check_interval": 9,
        "client_name": "agent-7",
        "socket_keepalive": True,
        "ssl_ca_certs": str(tmp_path / "ca.pem"),
        "ssl_certfile": str(tmp_path / "client.pem"),
        "ssl_keyfile": str(tmp_path / "client.key"),
        "ssl_password": "key-pw",
        "ssl_cert_reqs": "optional",
        "ssl_check_hostname": False,
    }
    assert {k: kwargs[k] for k in expected} == expected
    assert set(config.secrets()) == {"field-pw", "key-pw", "url-pw"}


def test_unix_urls() -> None:
    kwargs = _pool_kwargs(RedisConfig("unix:///run/redis.sock?db=3"))
    assert kwargs["connection_class"] is UnixDomainSocketConnection
    assert (kwargs["path"], kwargs["db"]) == ("/run/redis.sock", 3)
    assert "socket_keepalive" not in kwargs
    assert (
        repr(RedisStorage(RedisConfig("unix:///run/redis.sock?db=3"))) == "<RedisStorage unix:///run/redis.sock?db=3>"
    )


def test_describe_never_shows_credentials_and_brackets_ipv6() -> None:
    store = RedisStorage.from_url("rediss://user:pw@[::1]:6380/2")
    assert repr(store) == "<RedisStorage rediss://[::1]:6380/2>"
    store.configure(namespace="fleet-a")
    assert repr(store) == "<RedisStorage rediss://[::1]:6380/2 namespace='fleet-a'>"


def test_config_repr_hides_secrets_and_shows_what_differs_from_defaults() -> None:
    config = RedisConfig("redis://:url-pw@h:1/0", password="field-pw", max_retries=5)
    text = repr(config)
    assert text == "RedisConfig(url='redis://:***@h:1/0', password='***', max_retries=5)"
    assert "pw" not in text.replace("password", "")


def test_every_field_is_documented_in_the_example_config() -> None:
    text = (ROOT / "config" / "agent.example.yaml").read_text(encoding="utf-8")
    section = text.split("\n  redis:\n", 1)[1]
    for field in dataclasses.fields(RedisConfig):
        assert f"\n    {field.name}:" in section or f"\n    # {field.name}:" in section, field.name


def test_the_example_redis_section_builds_a_store(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_PASSWORD", "from-the-environment")
    document = yaml.safe_load((ROOT / "config" / "agent.example.yaml").read_text(encoding="utf-8"))
    assert "redis" in document["storage"]
    # ${VAR} is expanded in the selected backend's section only: select redis, as an operator would.
    document["storage"]["backend"] = "redis"
    config = load_config(document)
    store = available_backends()["redis"].cls.from_options(config.options_for("redis"))
    assert isinstance(store, RedisStorage)
    assert store.config.password == "from-the-environment" or "from-the-environment" in store.config.url


def test_the_plugin_is_registered_through_the_entry_point() -> None:
    info = available_backends()["redis"]
    assert info.cls is RedisStorage
    assert info.distribution == "storage-redis"
    assert info.url_schemes == ("redis", "rediss", "unix", "redis+sentinel", "redis+cluster")
