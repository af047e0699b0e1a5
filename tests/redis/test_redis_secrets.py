"""No password in any log line, ``repr``, ``str`` or error message, whatever goes wrong."""

from __future__ import annotations

import logging
import pickle
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import OpenRedis, ServerFactory, Sleeps

from storage_core import AuthenticationFailed, ConfigError, ConnectionFailed, load_config, open_storage
from storage_core.factory import build_backend
from storage_redis import RedisConfig, RedisStorage

SECRET = "pa55-Hunter2-9f3a"
WRONG = "wr0ng-Guess-77c1"


# Passwords whose /, #, ? or % was not percent-encoded: urllib then reads part of the
# password as the port, path, query or fragment, and its own error messages quote it.
UNENCODED = [
    f"redis://:{SECRET}/tail@127.0.0.1:6379/0",
    f"redis://:Zm9v/{SECRET}@127.0.0.1:6379/0",
    f"redis://:{SECRET}#tail@127.0.0.1:6379/0",
    f"redis://:head#{SECRET}@127.0.0.1:6379/0",
    f"redis://:{SECRET}?tail@127.0.0.1:6379/0",
    f"redis://:head?{SECRET}=x@127.0.0.1:6379/0",
    f"redis://user:123/{SECRET}@127.0.0.1:6379/0",
    f"rediss://:{SECRET}/x@127.0.0.1:6379/0",
]


def _texts(exc: BaseException) -> Iterator[str]:
    """Everything an error shows: its message, its repr, its causes, the formatted traceback."""
    seen: BaseException | None = exc
    while seen is not None:
        yield str(seen)
        yield repr(seen)
        seen = seen.__cause__ or seen.__context__
    yield "".join(traceback.format_exception(exc))


def _logged(caplog: pytest.LogCaptureFixture) -> Iterator[str]:
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    for record in caplog.records:
        yield formatter.format(record)  # with any exc_info and stack
        yield repr(record.args)


def test_no_password_anywhere(
    server_factory: ServerFactory, open_redis: OpenRedis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, redis-py's included
    server = server_factory("--requirepass", SECRET)
    url = f"redis://:{SECRET}@127.0.0.1:{server.port}/0"
    shown: list[str] = []

    # Working stores: the password in the URL, or in the field.
    in_url = open_redis(url, sleep=Sleeps(), max_retries=1)
    in_field = open_redis(f"redis://127.0.0.1:{server.port}/0", password=SECRET, sleep=Sleeps(), max_retries=1)
    for store in (in_url, in_field):
        store.write("k", {"v": 1})
        assert store.read("k") == {"v": 1}
        shown += [repr(store), str(store), repr(store.config), str(store.config)]

    # A wrong password, in the URL and in the field.
    for bad in (
        open_redis(url.replace(SECRET, WRONG), initialize=False, sleep=Sleeps()),
        open_redis(url, password=WRONG, initialize=False, sleep=Sleeps()),
    ):
        with pytest.raises(AuthenticationFailed) as refused:
            bad.initialize()
        shown += _texts(refused.value)

    # The server gone: retries logged, then ConnectionFailed.
    server.kill()
    with pytest.raises(ConnectionFailed) as gone:
        in_url.read("k")
    shown += _texts(gone.value)

    # Config errors about URLs that hold the password.
    for bad_url in (
        f"redis://:{SECRET}@h:port/0",
        f"redis://:{SECRET}@h/zero",
        f"http://:{SECRET}@h/0",
        f"redis://:{SECRET}@h/0?socket_timeout=1",
        f"redis://:{SECRET}@h/0?db=x",
        f"redis://h/0?password={SECRET}",
    ):
        with pytest.raises(ConfigError) as invalid:
            RedisStorage.from_url(bad_url)
        shown += _texts(invalid.value)
    with pytest.raises(ConfigError) as invalid:
        RedisStorage.from_options({"url": 6379, "password": SECRET, "ssl_password": 5})
    shown += _texts(invalid.value)
    with pytest.raises(ConfigError) as invalid:
        RedisStorage.from_options({"url": {"not": SECRET}})
    shown += _texts(invalid.value)
    with pytest.raises(ConfigError) as invalid:
        open_storage(f"redis://:{SECRET}@h:port/0")
    shown += _texts(invalid.value)
    for bad_url in UNENCODED:
        for build in (RedisStorage.from_url, open_storage):
            with pytest.raises(ConfigError, match="must be percent-encoded") as invalid:
                build(bad_url)
            shown += _texts(invalid.value)

    shown += _logged(caplog)
    assert any("Redis connection failed after 1 retries" in text for text in shown), "the logs were captured"
    leaks = [text for text in shown if SECRET in text or WRONG in text]
    assert leaks == []


def test_no_password_from_a_url_query_via_open_storage() -> None:
    with pytest.raises(ConfigError) as invalid:
        open_storage(f"redis://h/0?password={SECRET}")
    assert SECRET not in str(invalid.value)


@pytest.mark.parametrize("url", UNENCODED)
def test_an_unencoded_special_character_in_the_password_is_named_not_echoed(url: str) -> None:
    with pytest.raises(ConfigError) as invalid:
        RedisConfig(url)
    assert invalid.value.field == "storage.redis.url"
    assert "special characters in a password (or user name) must be percent-encoded" in str(invalid.value)
    assert SECRET not in str(invalid.value)
    assert "Zm9v" not in str(invalid.value)
    assert "tail" not in str(invalid.value)
    assert "head" not in str(invalid.value)


def test_a_percent_encoded_password_is_accepted_and_decoded() -> None:
    config = RedisConfig("redis://:Zm9v%2FYmFy%23%3F@127.0.0.1:6379/0")
    assert config.connection_kwargs()["password"] == "Zm9v/YmFy#?"
    assert "Zm9v" not in repr(config)


def test_config_repr_never_shows_secrets() -> None:
    config = RedisConfig(f"rediss://u:{SECRET}@h/0", password=SECRET, ssl_password=SECRET)
    assert SECRET not in repr(config)
    assert SECRET not in str(config)
    assert SECRET not in repr(RedisStorage(config))


def _dump(obj: object) -> dict[str, object]:
    """``vars(obj)``, with the slots of a slotted object (a ``RedisConfig``) instead of a ``__dict__``."""
    found = dict(getattr(obj, "__dict__", {}))
    for cls in type(obj).__mro__:
        for name in getattr(cls, "__slots__", ()):
            if hasattr(obj, name) and name not in ("__dict__", "__weakref__"):
                found[name] = getattr(obj, name)
    return found


def _shown(obj: object) -> Iterator[str]:
    yield repr(obj)
    yield str(obj)
    yield "%s" % (obj,)  # noqa: UP031 - as logging formats it
    yield repr(_dump(obj))
    try:
        copy = pickle.loads(pickle.dumps(obj))  # noqa: S301 - our own object
    except TypeError:  # a store holds locks and a pool: it does not pickle at all
        return
    yield repr(copy)
    yield str(copy)
    yield repr(_dump(copy))


def test_objects_built_from_a_config_mask_its_secrets(
    server_factory: ServerFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = server_factory("--requirepass", SECRET)
    monkeypatch.setenv("REDIS_PASSWORD", SECRET)
    path = tmp_path / "agent.yaml"
    path.write_text(
        "storage:\n  backend: redis\n  redis:\n"
        f"    url: redis://agent:{SECRET}@127.0.0.1:{server.port}/0\n"
        "    password: ${REDIS_PASSWORD}\n    username: default\n",
        encoding="utf-8",
    )
    config = load_config(path)
    built = build_backend(config)
    assert isinstance(built, RedisStorage)
    shown = [text for obj in (config, config.options_for("redis"), built, built.config) for text in _shown(obj)]
    with open_storage(path) as store:
        store.write("k", 1)
        assert isinstance(store, RedisStorage)
        shown += [text for obj in (store, store.config) for text in _shown(obj)]
        shown += [repr(value) for value in _dump(store).values()]  # the pool, the client, the policy
    shown += _shown(store)
    leaks = [text for text in shown if SECRET in text]
    assert leaks == []
    assert "redis://agent:***@127.0.0.1" in repr(config)
