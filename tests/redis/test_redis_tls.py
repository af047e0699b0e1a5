"""TLS against a real redis-server built with TLS: a CA made at test time, client certificates."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import OpenRedis, ServerFactory, Sleeps, unavailable
from redis_servers import RedisServer, make_certificates, tls_args

from storage_core import ConnectionFailed


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if shutil.which("openssl") is None:
        unavailable("the TLS tests make their certificates with the openssl command, which is not on PATH")
    return make_certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def tls_server(server_factory: ServerFactory, certs: dict[str, Path]) -> RedisServer:
    return server_factory(*tls_args(certs, auth_clients="yes"), tls=True)


def test_rediss_with_a_ca_and_a_client_certificate(
    tls_server: RedisServer, certs: dict[str, Path], open_redis: OpenRedis
) -> None:
    store = open_redis(
        tls_server.url,
        ssl_ca_certs=str(certs["ca.crt"]),
        ssl_certfile=str(certs["client.crt"]),
        ssl_keyfile=str(certs["client.key"]),
        namespace="tls",
    )
    store.write("k", {"over": "tls"})
    assert store.read("k") == {"over": "tls"}
    assert repr(store) == f"<RedisStorage rediss://127.0.0.1:{tls_server.port}/0 namespace='tls'>"


def test_a_certificate_we_cannot_verify_is_not_retried(
    tls_server: RedisServer, certs: dict[str, Path], open_redis: OpenRedis
) -> None:
    sleeps = Sleeps()
    store = open_redis(  # no ssl_ca_certs: the system's CAs do not know our test CA
        tls_server.url,
        ssl_certfile=str(certs["client.crt"]),
        ssl_keyfile=str(certs["client.key"]),
        sleep=sleeps,
        initialize=False,
    )
    with pytest.raises(ConnectionFailed, match="TLS handshake") as caught:
        store.initialize()
    assert "ssl_ca_certs" in str(caught.value)
    assert sleeps == []


def test_a_server_that_requires_a_client_certificate_refuses_us_without_one(
    tls_server: RedisServer, certs: dict[str, Path], open_redis: OpenRedis
) -> None:
    store = open_redis(
        tls_server.url, ssl_ca_certs=str(certs["ca.crt"]), sleep=Sleeps(), max_retries=1, initialize=False
    )
    with pytest.raises(ConnectionFailed):
        store.initialize()


def test_verification_can_be_loosened_for_a_test_server(
    tls_server: RedisServer, certs: dict[str, Path], open_redis: OpenRedis
) -> None:
    store = open_redis(
        tls_server.url.replace("127.0.0.1", "localhost"),
        ssl_cert_reqs="none",
        ssl_check_hostname=False,
        ssl_certfile=str(certs["client.crt"]),
        ssl_keyfile=str(certs["client.key"]),
    )
    store.write("k", 1)
    assert store.read("k") == 1
