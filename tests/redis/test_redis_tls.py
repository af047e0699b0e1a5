"""TLS against a real redis-server built with TLS: a CA made at test time, client certificates."""

from __future__ import annotations

import logging
import shutil
import socket
import ssl
import time
from pathlib import Path

import pytest
import redis
from conftest import OpenRedis, ServerFactory, Sleeps, unavailable
from redis_servers import RedisServer, SlammingServer, _Listener, make_certificates, tls_args
from storage_redis.errors import MessageContext, translate

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


def _ssl_errors(exc: BaseException) -> list[ssl.SSLError]:
    found = []
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            found.append(seen)
        seen = seen.__cause__ or seen.__context__
    return found


def test_a_server_that_requires_a_client_certificate_refuses_us_without_one(
    tls_server: RedisServer, certs: dict[str, Path], open_redis: OpenRedis, caplog: pytest.LogCaptureFixture
) -> None:
    sleeps = Sleeps()
    store = open_redis(tls_server.url, ssl_ca_certs=str(certs["ca.crt"]), sleep=sleeps, max_retries=3, initialize=False)
    with pytest.raises(ConnectionFailed) as caught:
        store.initialize()
    # The server sends the alert "certificate required", which is not retried; now and then
    # it hangs up before the client reads the alert: an EOF, as from a restarting server,
    # which is retried.
    causes = _ssl_errors(caught.value)
    assert causes, "an ssl error underneath"
    message = str(caught.value)
    assert "ssl_certfile" in message, "the message points at the client certificate"
    retried = [r.getMessage() for r in caplog.records if r.name == "storage_redis" and r.levelno == logging.WARNING]
    assert len(retried) == len(sleeps)
    assert all("EOF" in line for line in retried), "only a hang-up is retried, never the alert"
    if "CERTIFICATE_REQUIRED" in str(causes[0]):
        assert "TLS handshake" in message
        assert "not retried" in message
    else:
        assert isinstance(causes[0], ssl.SSLEOFError)
        assert len(sleeps) == 3


def test_a_tls_file_gone_after_the_config_was_built_is_not_retried(
    tls_server: RedisServer, certs: dict[str, Path], open_redis: OpenRedis, tmp_path: Path
) -> None:
    ca = tmp_path / "ca.crt"
    shutil.copy(certs["ca.crt"], ca)
    sleeps = Sleeps()
    store = open_redis(
        tls_server.url,
        ssl_ca_certs=str(ca),
        ssl_certfile=str(certs["client.crt"]),
        ssl_keyfile=str(certs["client.key"]),
        sleep=sleeps,
        initialize=False,
    )
    ca.unlink()
    with pytest.raises(ConnectionFailed, match=r"a TLS file for Redis at .* could not be read") as caught:
        store.initialize()
    assert "ssl_ca_certs" in str(caught.value)
    assert sleeps == []


def test_a_key_file_that_holds_no_key_is_not_retried(
    tls_server: RedisServer, certs: dict[str, Path], open_redis: OpenRedis
) -> None:
    sleeps = Sleeps()
    store = open_redis(
        tls_server.url,
        ssl_ca_certs=str(certs["ca.crt"]),
        ssl_certfile=str(certs["client.crt"]),
        ssl_keyfile=str(certs["client.crt"]),  # a certificate where the key should be
        sleep=sleeps,
        initialize=False,
    )
    with pytest.raises(ConnectionFailed, match=r"TLS handshake .* failed .*PEM lib.* not retried"):
        store.initialize()
    assert sleeps == []


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


def test_a_tls_server_that_hangs_up_is_retried_and_named_unreachable(
    certs: dict[str, Path], open_redis: OpenRedis
) -> None:
    sleeps = Sleeps()
    with SlammingServer() as dying:  # closes each connection during the handshake: an EOF, as a restart gives
        store = open_redis(
            dying.url.replace("redis://", "rediss://"),
            ssl_ca_certs=str(certs["ca.crt"]),
            sleep=sleeps,
            max_retries=2,
            initialize=False,
        )
        with pytest.raises(ConnectionFailed, match="could not be reached after 2 retries") as caught:
            store.initialize()
        assert dying.accepted == 3
    assert len(sleeps) == 2
    assert "a server that requires client certificates hangs up like this: set ssl_certfile" in str(caught.value)


def test_a_tls_server_that_is_down_is_retried(
    tls_server: RedisServer, certs: dict[str, Path], open_redis: OpenRedis
) -> None:
    sleeps = Sleeps()
    store = open_redis(
        tls_server.url,
        ssl_ca_certs=str(certs["ca.crt"]),
        ssl_certfile=str(certs["client.crt"]),
        ssl_keyfile=str(certs["client.key"]),
        sleep=sleeps,
        max_retries=2,
    )
    tls_server.kill()
    with pytest.raises(ConnectionFailed, match="could not be reached after 2 retries") as caught:
        store.read("k")
    assert len(sleeps) == 2
    assert "ssl_certfile" not in str(caught.value), "it has one: no hint about client certificates"


def test_rediss_to_a_plain_server_fails_at_once_saying_it_may_not_speak_tls(
    server: RedisServer, open_redis: OpenRedis
) -> None:
    sleeps = Sleeps()
    store = open_redis(
        server.url.replace("redis://", "rediss://"),
        socket_timeout=1.0,
        socket_connect_timeout=1.0,
        max_retries=3,
        sleep=sleeps,
        initialize=False,
    )
    started = time.monotonic()
    with pytest.raises(ConnectionFailed) as caught:
        store.initialize()
    elapsed = time.monotonic() - started
    message = str(caught.value)
    assert "accepted the TCP connection but not the TLS handshake" in message
    assert "the server may not speak TLS; use a redis:// URL for a plain port" in message
    assert "not retried" in message
    assert sleeps == [], "one handshake timeout, no retries"
    assert elapsed < 3.0, f"took {elapsed:.1f} s: one socket_timeout (1 s), not four"


class PlainTextServer(_Listener):
    """Answers every connection with a Redis error line, in plain text, as a non-TLS service would."""

    def handle(self, conn: socket.socket) -> None:
        conn.sendall(b"-ERR unknown command\r\n")


def test_a_plain_text_answer_to_the_handshake_is_not_retried_either(open_redis: OpenRedis) -> None:
    sleeps = Sleeps()
    with PlainTextServer() as plain:
        store = open_redis(f"rediss://127.0.0.1:{plain.port}/0", max_retries=3, sleep=sleeps, initialize=False)
        with pytest.raises(ConnectionFailed, match="the server may not speak TLS") as caught:
            store.initialize()
        assert plain.accepted == 1
    assert sleeps == []
    assert any(getattr(e, "reason", None) == "WRONG_VERSION_NUMBER" for e in _ssl_errors(caught.value))


def test_a_tls_server_that_stalls_after_a_good_handshake_is_retried(
    tls_server: RedisServer, certs: dict[str, Path], open_redis: OpenRedis
) -> None:
    sleeps = Sleeps()
    store = open_redis(
        tls_server.url,
        ssl_ca_certs=str(certs["ca.crt"]),
        ssl_certfile=str(certs["client.crt"]),
        ssl_keyfile=str(certs["client.key"]),
        socket_timeout=0.5,
        socket_connect_timeout=0.5,
        max_retries=2,
        sleep=sleeps,
    )
    store.write("k", 1)
    with tls_server.frozen(), pytest.raises(ConnectionFailed, match="could not be reached after 2 retries"):
        store.read("k")  # the kernel still accepts TCP for a stopped server: the handshake stalls
    assert len(sleeps) == 2, "a stall of a server that spoke TLS before is retried like any timeout"
    assert store.read("k") == 1


def test_debug_logging_shows_no_maintenance_notification_noise(
    server: RedisServer, open_redis: OpenRedis, caplog: pytest.LogCaptureFixture
) -> None:
    # Redis 7 does not know CLIENT MAINT_NOTIFICATIONS; redis-py 8 sends it on every new
    # connection unless told not to, and logs the refusal at DEBUG.
    caplog.set_level(logging.DEBUG)  # redis-py's loggers too, as --debug sets them
    store = open_redis(server.url, max_connections=4)
    store.write("k", 1)
    assert store.read("k") == 1
    logging.getLogger("redis.connection").debug("probe")  # where redis-py logs that refusal
    assert [r.getMessage() for r in caplog.records if r.name == "redis.connection"] == ["probe"]
    logged = [r.getMessage() for r in caplog.records]
    assert not [line for line in logged if "maintenance" in line.lower() or "MAINT_NOTIFICATIONS" in line]


@pytest.mark.parametrize(
    "seen",
    [
        "Error 8 connecting to h:1. [SSL: UNEXPECTED_EOF_WHILE_READING] EOF occurred in violation of protocol",
        "Error 104 connecting to h:1. Connection reset by peer.",
    ],
)
def test_a_hang_up_mid_handshake_suggests_a_client_certificate_as_an_eof_or_a_reset(seen: str) -> None:
    """Which of the two the client sees depends on whether its bytes were still unread on the server."""
    context = MessageContext("rediss://h:1/0", 2, 10, 5.0, tls=True, client_certificate=False)
    error = translate(redis.ConnectionError(seen), context)
    assert isinstance(error, ConnectionFailed)
    assert "requires client certificates hangs up like this: set ssl_certfile" in str(error)
    with_certificate = MessageContext("rediss://h:1/0", 2, 10, 5.0, tls=True, client_certificate=True)
    assert "ssl_certfile" not in str(translate(redis.ConnectionError(seen), with_certificate))
