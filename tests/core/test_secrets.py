"""Every public object built from a config masks its secrets in repr, str, vars() and after pickling."""

from __future__ import annotations

import pickle
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from storage_core import load_config, open_storage
from storage_core.config import StorageConfig
from storage_core.factory import build_backend
from storage_core.redact import Secret, is_secret_name, seal
from storage_core.registry import get_registry

PASSWORD = "S3cr3t-pw-1f2e"
IN_URL = "Ur1-pw-7c6d"
IN_QUERY = "qu3ry-pw-55aa"
TOKEN = "t0ken-9b8c"
SECRETS = (PASSWORD, IN_URL, IN_QUERY, TOKEN)


def _dump(obj: object) -> dict[str, Any]:
    """``vars(obj)``, with the slots a slotted object has instead of a ``__dict__``."""
    found = dict(getattr(obj, "__dict__", {}))
    for cls in type(obj).__mro__:
        for name in getattr(cls, "__slots__", ()):
            if hasattr(obj, name) and name not in ("__dict__", "__weakref__"):
                found[name] = getattr(obj, name)
    return found


def texts(obj: object) -> Iterator[str]:
    """What an agent logging *obj* (or a copy handed to a worker process) would show."""
    yield repr(obj)
    yield str(obj)
    yield f"{obj}"
    yield "%s %r" % (obj, obj)  # noqa: UP031 - logging formats this way
    yield repr(_dump(obj))
    try:
        copy = pickle.loads(pickle.dumps(obj))  # noqa: S301 - our own object
    except TypeError:  # a store holds locks and connections: it does not pickle at all
        return
    yield repr(copy)
    yield str(copy)
    yield repr(_dump(copy))


def assert_masked(*objects: object) -> None:
    leaks = [(type(obj).__name__, text) for obj in objects for text in texts(obj) if any(s in text for s in SECRETS)]
    assert leaks == []


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> StorageConfig:
    monkeypatch.setenv("REDIS_PASSWORD", PASSWORD)
    path = tmp_path / "agent.yaml"
    text = f"""
        storage:
          backend: local
          local:
            path: data/state.db
          redis:
            url: redis://agent:{IN_URL}@127.0.0.1:6379/0?password={IN_QUERY}
            password: ${{REDIS_PASSWORD}}
          memo:
            api_token: {TOKEN}
            mirror: memo://u:{IN_URL}@h/x
        """
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    registry = get_registry()
    known = registry.known_names()
    monkeypatch.setattr(type(registry), "known_names", lambda self: known | {"memo"})  # a plugin's section
    return load_config(path)


def test_the_config_and_its_sections_mask_every_secret(config: StorageConfig) -> None:
    assert config.options_for("memo")["api_token"] == TOKEN, "the values themselves are whole"
    assert config.options_for("redis")["url"].startswith(f"redis://agent:{IN_URL}@")
    assert_masked(config, config.sections, *(config.options_for(name) for name in ("local", "redis", "memo")))
    assert "redis://agent:***@127.0.0.1:6379/0?password=***" in repr(config)
    assert pickle.loads(pickle.dumps(config)) == config  # noqa: S301 - it crosses into spawned workers


def test_the_selected_backends_config_and_store_mask_them(config: StorageConfig) -> None:
    store = build_backend(config)
    assert_masked(store, getattr(store, "config", None))
    with open_storage(config) as opened:
        assert_masked(opened, getattr(opened, "config", None))
        assert_masked(opened)
    assert_masked(opened)


def test_the_same_config_selecting_the_secret_holding_section_masks_it(config: StorageConfig) -> None:
    # The environment is expanded only in the selected section: select one that holds it.
    memo = StorageConfig(backend="memo", sections=config.sections, source=config.source)
    assert_masked(memo, memo.options_for("memo"))


def test_a_secret_is_its_value_to_code_and_a_mask_to_text() -> None:
    secret = Secret(PASSWORD)
    assert secret == PASSWORD
    assert secret.encode() == PASSWORD.encode()
    assert "x" + secret == "x" + PASSWORD
    assert (str(secret), repr(secret), f"{secret:>5}") == ("***", "'***'", "  ***")
    assert secret.reveal() == PASSWORD
    assert type(secret.reveal()) is str
    copy = pickle.loads(pickle.dumps(secret))  # noqa: S301
    assert type(copy) is Secret
    assert copy == PASSWORD
    url = Secret(f"redis://:{PASSWORD}@h/0")
    assert str(url) == "redis://:***@h/0"


@pytest.mark.parametrize(
    ("name", "secret"),
    [("password", True), ("ssl_password", True), ("api_token", True), ("client_secret", True), ("sslKey", True)],
)
def test_secret_names(name: str, secret: bool) -> None:
    assert is_secret_name(name) is secret
    assert isinstance(seal({name: "v"})[name], Secret) is secret


def test_seal_leaves_what_is_not_secret_alone() -> None:
    sealed = seal({"url": "redis://h/0", "path": "/a", "n": 3, "nested": {"password": "p"}, "urls": ["redis://:p@h"]})
    assert type(sealed["url"]) is str
    assert type(sealed["path"]) is str
    assert sealed["n"] == 3
    assert isinstance(sealed["nested"]["password"], Secret)
    assert isinstance(sealed["urls"][0], Secret)
    already = Secret("x")
    assert seal(already) is already
    assert not is_secret_name(3)


def test_a_secret_of_a_secret_keeps_the_value() -> None:
    assert Secret(Secret(PASSWORD)).reveal() == PASSWORD
