"""AC4 failure and retry, with real faults: servers killed, restarted, frozen, refusing.

Nothing here patches the client. Attempts are counted by the server side where it can
(``SlammingServer``/``SilentServer`` count the connections they take, redis-server its
``total_connections_received``) and by the retry policy's recorded sleeps.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis
import storage_redis.confirm
from conftest import OpenRedis, ServerFactory, Sleeps
from redis import exceptions as rx
from redis_servers import Proxy, RedisServer, SilentServer, SlammingServer, free_port
from storage_redis.errors import maybe_applied

from storage_core import (
    AuthenticationFailed,
    ConnectionFailed,
    ConsistencyError,
    KeyNotFound,
    StorageError,
    VersionConflict,
)
from storage_core.testing import fresh_namespace
from storage_redis import OutcomeUnknown, PoolExhausted, RedisStorage

FAILED = "Redis connection failed after {} retries"


def _errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "storage_redis" and r.levelno == logging.ERROR]


def _retries(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "storage_redis" and r.levelno == logging.WARNING]


def _connections(server: RedisServer) -> int:
    with server.client() as raw:
        return int(raw.info("stats")["total_connections_received"])


# -- a server that dies -------------------------------------------------------------------


def test_ac4_server_killed_and_back_within_the_backoff_window_succeeds(
    server: RedisServer, open_redis: OpenRedis, caplog: pytest.LogCaptureFixture
) -> None:
    # The server comes back during the first backoff: started from the policy's own sleep,
    # so no timer races the retries.
    sleeps = Sleeps(real=True, before=lambda failures: server.start() if failures == 1 else None)
    store = open_redis(server.url, sleep=sleeps)
    store.write("task_queue", [1])
    server.kill()
    store.write("task_queue", [1, 2])
    assert store.read("task_queue") == [1, 2]
    assert len(sleeps) == 1, "the first attempt hit the dead server, the first retry found it back"
    assert 0.05 <= sleeps[0] <= 0.1
    assert _errors(caplog) == []
    assert len(_retries(caplog)) == len(sleeps)
    assert "retry 1 of 3" in _retries(caplog)[0]


def test_ac4_server_down_for_good_retries_with_backoff_then_connection_failed(
    server: RedisServer, open_redis: OpenRedis, caplog: pytest.LogCaptureFixture
) -> None:
    sleeps = Sleeps(real=True)
    store = open_redis(server.url, sleep=sleeps)
    server.kill()
    started = time.monotonic()
    with pytest.raises(ConnectionFailed) as caught:
        store.read("task_queue")
    elapsed = time.monotonic() - started
    # 1 attempt + 3 retries; backoff doubles from 100 ms, each delay drawn from [d/2, d].
    assert len(sleeps) == 3
    for n, delay in enumerate(sleeps, start=1):
        ceiling = 0.1 * 2 ** (n - 1)
        assert ceiling / 2 <= delay <= ceiling, (n, delay)
    assert sum(sleeps) <= elapsed < sum(sleeps) + 2
    assert not isinstance(caught.value, PoolExhausted)
    assert "could not be reached after 3 retries" in str(caught.value)
    assert f"127.0.0.1:{server.port}" in str(caught.value)
    assert _errors(caplog) == [FAILED.format(3)]
    assert [m.split("; ")[-1].split(" in ")[0] for m in _retries(caplog)] == [
        "retry 1 of 3",
        "retry 2 of 3",
        "retry 3 of 3",
    ]


@pytest.mark.parametrize("retries", [0, 3, 5])
def test_ac4_attempts_counted_by_the_server_side(
    retries: int, open_redis: OpenRedis, caplog: pytest.LogCaptureFixture
) -> None:
    sleeps = Sleeps()
    with SlammingServer() as dying:
        store = open_redis(dying.url, sleep=sleeps, max_retries=retries, initialize=False)
        with pytest.raises(ConnectionFailed):
            store.initialize()
        assert dying.accepted == retries + 1
    assert len(sleeps) == retries
    assert _errors(caplog) == [FAILED.format(retries)]


def test_ac4_refused_connection_retries_then_fails(open_redis: OpenRedis, caplog: pytest.LogCaptureFixture) -> None:
    sleeps = Sleeps()
    store = open_redis(f"redis://127.0.0.1:{free_port()}/0", sleep=sleeps, initialize=False, max_retries=2)
    with pytest.raises(ConnectionFailed, match="Connection refused"):
        store.initialize()
    assert len(sleeps) == 2
    assert _errors(caplog) == [FAILED.format(2)]


OPERATIONS: dict[str, Callable[[RedisStorage], Any]] = {
    "read": lambda s: s.read("k"),
    "get": lambda s: s.get("k"),
    "exists": lambda s: s.exists("k"),
    "read_entry": lambda s: s.read_entry("k"),
    "write": lambda s: s.write("k", 1),
    "write with ttl": lambda s: s.write("k", 1, ttl=5),
    "conditional write": lambda s: s.write("k", 1, if_version="0" * 40),
    "update": lambda s: s.update("k", lambda v: v + 1, default=0),
    "delete": lambda s: s.delete("k"),
    "read_many": lambda s: s.read_many(["a", "b"]),
    "read_many in chunks": lambda s: s.read_many([f"k{i}" for i in range(10_001)]),
    "write_many": lambda s: s.write_many({"a": 1, "b": 2}),
    "write_many with ttl": lambda s: s.write_many({"a": 1, "b": 2}, ttl=5),
    "keys": lambda s: list(s.keys("k")),
    "ping": lambda s: s.ping(),
}


@pytest.mark.parametrize("wait", [False, True], ids=["no-wait", "wait_replicas"])
@pytest.mark.parametrize("operation", OPERATIONS.values(), ids=OPERATIONS.keys())
def test_ac4_every_operation_retries(
    operation: Callable[[RedisStorage], Any],
    wait: bool,
    server: RedisServer,
    open_redis: OpenRedis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sleeps = Sleeps()
    options = {"wait_replicas": 1, "wait_timeout_ms": 100} if wait else {}
    store = open_redis(server.url, sleep=sleeps, max_retries=2, **options)
    server.kill()
    with pytest.raises(ConnectionFailed):
        operation(store)
    assert len(sleeps) == 2
    assert _errors(caplog) == [FAILED.format(2)]


def test_ac4_redis_py_retries_are_switched_off_even_when_the_url_asks(open_redis: OpenRedis) -> None:
    sleeps = Sleeps()
    with SilentServer() as silent:
        store = open_redis(
            silent.url + "?retry_on_timeout=true",
            sleep=sleeps,
            max_retries=2,
            socket_timeout=0.1,
            socket_connect_timeout=0.1,
            initialize=False,
        )
        with pytest.raises(ConnectionFailed, match="TimeoutError"):
            store.initialize()
        assert silent.accepted == 3, "one connection per attempt of ours, none from redis-py retrying"
    assert len(sleeps) == 2


def test_ac4_server_that_never_answers_trips_the_socket_timeout(
    server: RedisServer, open_redis: OpenRedis, caplog: pytest.LogCaptureFixture
) -> None:
    sleeps = Sleeps()
    store = open_redis(server.url, sleep=sleeps, max_retries=2, socket_timeout=0.2)
    store.write("k", 1)
    with server.frozen():
        started = time.monotonic()
        with pytest.raises(ConnectionFailed, match="TimeoutError") as caught:
            store.read("k")
        elapsed = time.monotonic() - started
    assert 3 * 0.2 <= elapsed < 3 * 0.2 + 2, "three attempts, each waiting out the socket timeout"
    assert len(sleeps) == 2
    assert "socket_timeout" in str(caught.value)
    assert _errors(caplog) == [FAILED.format(2)]
    assert store.read("k") == 1, "thawed, the same store works again"


# -- refused credentials and permissions ----------------------------------------------------


@pytest.fixture
def locked(server_factory: ServerFactory) -> RedisServer:
    server = server_factory("--requirepass", "right-password")
    with server.client() as raw:
        raw.execute_command("ACL", "SETUSER", "reader", "on", ">reader-pw", "~*", "+@read", "+@connection")  # type: ignore[no-untyped-call]
        raw.execute_command(  # type: ignore[no-untyped-call]
            "ACL", "SETUSER", "scripter", "on", ">scripter-pw", "~*", "+@read", "+@connection", "+evalsha", "+script"
        )
    return server


@pytest.mark.parametrize(
    "credentials",
    [{"password": "wrong-password"}, {}, {"username": "nobody", "password": "right-password"}],
    ids=["wrong password", "no password", "unknown user"],
)
def test_ac4_refused_credentials_raise_authentication_failed_without_retry(
    credentials: dict[str, str], locked: RedisServer, open_redis: OpenRedis, caplog: pytest.LogCaptureFixture
) -> None:
    sleeps = Sleeps()
    store = open_redis(locked.url, sleep=sleeps, initialize=False, **credentials)
    before = _connections(locked)
    with pytest.raises(AuthenticationFailed) as caught:
        store.initialize()
    assert _connections(locked) - before == 1 + 1, "one attempt (+ the raw client that counts)"
    assert sleeps == []
    assert _errors(caplog) == []
    assert "not retried" in str(caught.value)
    assert not isinstance(caught.value, ConnectionFailed)


def test_ac4_missing_permission_raises_authentication_failed_without_retry(
    locked: RedisServer, open_redis: OpenRedis
) -> None:
    sleeps = Sleeps()
    reader = open_redis(locked.url, sleep=sleeps, username="reader", password="reader-pw")
    with locked.client() as raw:
        raw.set("k", b"1")
    assert reader.read("k") == 1
    with pytest.raises(AuthenticationFailed, match="permissions"):
        reader.write("k", 2)
    with pytest.raises(AuthenticationFailed):
        reader.update("k", lambda v: v + 1)  # EVALSHA itself is not allowed
    scripter = open_redis(locked.url, sleep=sleeps, username="scripter", password="scripter-pw")
    with pytest.raises(AuthenticationFailed):
        scripter.update("k", lambda v: v + 1)  # the script may run, its SET may not
    with locked.client() as raw:
        raw.execute_command("ACL", "SETUSER", "getter", "on", ">getter-pw", "~*", "+get", "+@connection")  # type: ignore[no-untyped-call]
    getter = open_redis(locked.url, sleep=sleeps, username="getter", password="getter-pw")
    with pytest.raises(AuthenticationFailed) as caught:
        getter.read_many([f"k{i}" for i in range(10_001)])  # MGETs in one pipeline
    assert "MGET" not in str(caught.value), "not redis-py's 'Command # 1 (MGET k0 k1 ...)' prefix"
    assert sleeps == []


def test_right_password_works(locked: RedisServer, open_redis: OpenRedis) -> None:
    store = open_redis(locked.url.replace("redis://", "redis://:right-password@"))
    store.write("k", 1)
    assert store.read("k") == 1


# -- a pool with no free connection ---------------------------------------------------------


def test_ac4_pool_exhaustion_is_reported_as_such_not_as_a_dead_server(
    server: RedisServer, open_redis: OpenRedis, caplog: pytest.LogCaptureFixture
) -> None:
    sleeps = Sleeps()
    store = open_redis(server.url, sleep=sleeps, max_connections=1, pool_timeout=0.2, socket_timeout=5)
    store.write("k", 1)
    holder_done = threading.Event()
    results: list[Any] = []

    def hold_the_only_connection() -> None:
        results.append(store.read("k"))  # blocks on the frozen server, holding the connection
        holder_done.set()

    pool = store._source._pool  # type: ignore[attr-defined]
    with server.frozen():
        holder = threading.Thread(target=hold_the_only_connection)
        holder.start()
        deadline = time.monotonic() + 5
        while not pool.pool.empty():  # until the holder has taken the only connection
            assert time.monotonic() < deadline, "the holder never took the connection"
            time.sleep(0.005)
        started = time.monotonic()
        with pytest.raises(PoolExhausted) as caught:
            store.read("k")
        waited = time.monotonic() - started
    holder.join(10)
    assert holder_done.is_set()
    assert results == [1]
    assert 0.2 <= waited < 1.5, "it waited pool_timeout for a free connection, then gave up"
    message = str(caught.value)
    assert "pool" in message
    assert "exhausted" in message
    assert "max_connections" in message
    assert "pool_timeout" in message
    assert isinstance(caught.value, ConnectionFailed)
    assert sleeps == [], "not retried: waiting longer is what pool_timeout is for"
    assert _errors(caplog) == [], "no 'connection failed' line: the server is fine"


# -- a reply lost after the server executed the command ---------------------------------------


@pytest.fixture
def proxied(server: RedisServer) -> Any:
    with Proxy(server.port) as proxy:
        yield proxy


def test_retried_conditional_write_whose_reply_was_lost_is_not_a_false_conflict(
    proxied: Proxy, open_redis: OpenRedis
) -> None:
    sleeps = Sleeps()
    store = open_redis(proxied.url, sleep=sleeps)
    store.update("warm-up", lambda v: v, default=0)  # the script is known to the server now
    store.write("task_queue", ["a"])
    version = store.read_entry("task_queue").version
    proxied.lose_reply_to(b"EVALSHA")
    store.write("task_queue", ["a", "b"], if_version=version)  # no VersionConflict
    assert proxied.lost_replies == 1
    assert len(sleeps) == 1
    assert store.read("task_queue") == ["a", "b"]


def test_update_whose_reply_was_lost_applies_exactly_once(proxied: Proxy, open_redis: OpenRedis) -> None:
    sleeps = Sleeps()
    store = open_redis(proxied.url, sleep=sleeps)
    store.update("counter", lambda v: v + 1, default=0)
    proxied.lose_reply_to(b"EVALSHA")
    assert store.update("counter", lambda v: v + 1) == 2
    assert proxied.lost_replies == 1
    assert store.read("counter") == 2, "a false conflict would have made update() add 1 twice"


def test_a_lost_reply_then_a_changed_key_is_an_unknown_outcome_not_a_conflict(
    proxied: Proxy, server: RedisServer, open_redis: OpenRedis
) -> None:
    with server.client() as raw:
        # Another agent's update lands during our backoff: the retry finds neither the
        # version it expected nor its own bytes, and cannot tell whether it wrote.
        store = open_redis(proxied.url, sleep=Sleeps(before=lambda failures: raw.incr("counter")))
        store.write("counter", 1)
        proxied.lose_reply_to(b"EVALSHA")
        calls: list[int] = []

        def add_one(value: int) -> int:
            calls.append(value)
            return value + 1

        with pytest.raises(OutcomeUnknown) as caught:
            store.update("counter", add_one)
        assert calls == [1], "a VersionConflict would have made update() run fn again and add 2"
        assert store.read("counter") == 3, "ours (2), then theirs (+1)"
        message = str(caught.value)
        assert "conditional write to key 'counter'" in message
        assert "may or may not have been applied; read the key before retrying" in message
        assert isinstance(caught.value, ConnectionFailed)

        version = store.read_entry("counter").version
        proxied.lose_reply_to(b"EVALSHA")
        with pytest.raises(OutcomeUnknown):
            store.write("counter", 10, if_version=version)
        assert store.read("counter") == 11
    assert proxied.lost_replies == 2


def test_a_write_whose_wait_reply_was_lost_is_applied_not_confirmed_and_not_repeated(
    proxied: Proxy, open_redis: OpenRedis, caplog: pytest.LogCaptureFixture
) -> None:
    sleeps = Sleeps()
    store = open_redis(proxied.url, sleep=sleeps, wait_replicas=1, wait_timeout_ms=50)
    store.write("k", 1, consistency="eventual")
    proxied.lose_reply_to(b"WAIT")
    with pytest.raises(ConsistencyError) as caught:
        store.delete("k")
    message = str(caught.value)
    assert "the write to key 'k' is applied on the primary" in message
    assert "not confirmed: WAIT failed (ConnectionError" in message
    assert sleeps == [], "the DEL is not sent again: it would find nothing and report False"
    assert proxied.lost_replies == 1
    assert store.exists("k") is False


def test_without_the_lost_reply_flag_the_retry_would_be_a_false_conflict(
    proxied: Proxy, open_redis: OpenRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control experiment: the flag is what saves the test above."""
    monkeypatch.setattr(storage_redis.confirm, "maybe_applied", lambda exc: False)
    store = open_redis(proxied.url, sleep=Sleeps())
    store.update("warm-up", lambda v: v, default=0)
    store.write("task_queue", ["a"])
    version = store.read_entry("task_queue").version
    proxied.lose_reply_to(b"EVALSHA")
    with pytest.raises(VersionConflict):
        store.write("task_queue", ["a", "b"], if_version=version)
    assert store.read("task_queue") == ["a", "b"], "it was written, yet reported as a conflict"


def test_a_failure_to_connect_is_known_not_to_have_applied_anything(server: RedisServer) -> None:
    with server.client() as raw:
        raw.rpush("list", "x")
        with pytest.raises(rx.ResponseError) as answered:
            raw.get("list")
    assert not maybe_applied(answered.value), "the server answered: it refused the command"
    port = free_port()
    # redis-py annotates `retry: Retry`, yet its Connection takes None as Retry(NoBackoff(), 0): no retries.
    with redis.Redis(port=port, retry=None) as dead, pytest.raises(rx.ConnectionError) as refused:  # type: ignore[arg-type]
        dead.ping()
    assert not maybe_applied(refused.value)
    with SilentServer() as silent:
        with redis.Redis(port=silent.port, socket_timeout=0.1, retry=None) as mute, pytest.raises(rx.TimeoutError) as t:  # type: ignore[arg-type]
            mute.ping()
        assert maybe_applied(t.value), "a read timed out: the command may have run"
    with SlammingServer() as slam:
        with redis.Redis(port=slam.port, retry=None) as cut, pytest.raises(rx.ConnectionError) as closed:  # type: ignore[arg-type]
            cut.ping()
        assert maybe_applied(closed.value)


# -- with_retry ------------------------------------------------------------------------------


def test_with_retry_runs_any_operation_under_the_policy(redis_url: str, open_redis: OpenRedis) -> None:
    sleeps = Sleeps()
    store = open_redis(redis_url, sleep=sleeps, namespace=fresh_namespace())
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise rx.ConnectionError("Connection closed by server.")
        return "done"

    assert store.with_retry(flaky) == "done"
    assert len(sleeps) == 2

    def refused() -> None:
        raise rx.AuthenticationError("invalid username-password pair or user is disabled.")

    with pytest.raises(AuthenticationFailed):
        store.with_retry(refused)

    def broken() -> None:
        raise rx.ResponseError("ERR unknown command 'FROB'")

    with pytest.raises(StorageError, match="refused the command: ERR unknown command 'FROB'"):
        store.with_retry(broken)

    with redis.Redis.from_url(redis_url) as raw, pytest.raises(StorageError) as unknown:
        store.with_retry(lambda: raw.execute_command("FROB", "customer-data-7f3e"))
    assert "unknown command 'FROB'" in str(unknown.value)
    assert "customer-data" not in str(unknown.value), "the server quotes the arguments; we do not"

    def library_error() -> None:
        raise rx.DataError("Invalid input of type: 'dict'")

    with pytest.raises(StorageError, match="failed: DataError"):
        store.with_retry(library_error)

    def bug() -> None:
        raise ZeroDivisionError

    def ours() -> None:
        raise KeyNotFound("k")

    with pytest.raises(KeyNotFound):
        store.with_retry(ours)

    with pytest.raises(ZeroDivisionError):
        store.with_retry(bug)

    def transient() -> None:
        raise rx.ResponseError("BUSY Redis is busy running a script.")

    sleeps.clear()
    with pytest.raises(ConnectionFailed):
        store.with_retry(transient)
    assert len(sleeps) == 3


# -- a server that answers, but cannot serve ----------------------------------------------------


def test_a_url_pointing_at_a_replica_says_so(
    server_factory: ServerFactory, open_redis: OpenRedis, caplog: pytest.LogCaptureFixture
) -> None:
    replica = server_factory("--replicaof", "127.0.0.1", str(free_port()))  # of a primary that never comes
    sleeps = Sleeps()
    store = open_redis(replica.url, sleep=sleeps, max_retries=2)
    assert store.get("k") is None, "it answers reads"
    with pytest.raises(ConnectionFailed) as caught:
        store.write("k", 1)
    message = str(caught.value)
    assert "answered, but it is a read-only replica (READONLY) through 2 retries" in message
    assert "point url at the primary" in message
    assert "could not be reached" not in message
    assert len(sleeps) == 2, "retried: after a failover the same address may become the primary"
    assert _errors(caplog) == [FAILED.format(2)]


def test_a_server_loading_its_data_says_so(
    server: RedisServer, open_redis: OpenRedis, caplog: pytest.LogCaptureFixture
) -> None:
    sleeps = Sleeps()
    store = open_redis(server.url, sleep=sleeps, max_retries=2)
    with server.client() as raw:
        raw.mset({f"k{i}": "x" for i in range(3000)})
        raw.save()
    server.stop()
    # A millisecond per key: three seconds of loading, far more than the test needs.
    server.args = (*server.args, "--key-load-delay", "1000", "--loading-process-events-interval-bytes", "1024")
    server.start(until="Loading RDB")
    with pytest.raises(ConnectionFailed) as caught:
        store.write("k", 1)
    message = str(caught.value)
    assert "answered, but it is still loading its dataset into memory (LOADING) through 2 retries" in message
    assert "wait until it has loaded" in message
    assert _errors(caplog) == [FAILED.format(2)]


def test_a_server_busy_with_a_script_says_so(
    server: RedisServer, open_redis: OpenRedis, caplog: pytest.LogCaptureFixture
) -> None:
    sleeps = Sleeps()
    store = open_redis(server.url, sleep=sleeps, max_retries=2)
    with server.busy(), pytest.raises(ConnectionFailed) as caught:
        store.read("k")
    message = str(caught.value)
    assert "answered, but it is busy running a script or function (BUSY) through 2 retries" in message
    assert "SCRIPT KILL" in message
    assert len(sleeps) == 2
    assert store.read_many(["k"]) == {}, "usable again once the script ended"


# -- close() ends what is under way ----------------------------------------------------------


def test_closing_the_store_during_a_backoff_stops_its_retries(server: RedisServer, open_redis: OpenRedis) -> None:
    def close_then_restart(failures: int) -> None:
        store.close()  # another thread closes the store while this one waits to retry
        server.start()  # and the server is back: nothing may reconnect to it

    store = open_redis(server.url, sleep=Sleeps(before=close_then_restart), client_name="closed-store")
    store.write("k", 1)
    server.kill()
    with pytest.raises(StorageError, match="was closed while an operation on it was under way") as caught:
        store.get("k")
    assert not isinstance(caught.value, ConnectionFailed)
    with server.client() as raw:
        assert [c for c in raw.client_list() if c["name"] == "closed-store"] == []
