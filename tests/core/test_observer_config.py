"""``storage.observers``: its forms, unknown names, plugins that provide observers, and ``log``."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest
from test_registry import install_plugin

from storage_core import ConfigError, open_storage
from storage_core.config import load_config
from storage_core.observers import is_observed
from storage_core.observers.enable import enable_observers
from storage_core.observers.log import AUDIT_LOGGER
from storage_core.observers.specs import ObserverSpec, parse_observers
from storage_core.registry import Registry
from storage_local import LocalStorage

OBSERVER_PLUGIN = """
from storage_core import hookimpl

class Counting:
    def __init__(self, options):
        self.options = dict(options)
        self.seen = []

    def on_operation(self, event):
        self.seen.append(event)

BUILT = []

def build(options):
    BUILT.append(Counting(options))
    return BUILT[-1]

def explode(options):
    raise RuntimeError("cannot reach the collector")

@hookimpl
def storage_register_observers(register):
    register("counting", build)
    register("exploding", explode)
    register("useless", lambda options: object())
"""


def store_in(tmp_path: Path, **storage: object) -> dict[str, object]:
    return {"storage": {"backend": "local", "local": {"path": str(tmp_path / "state.db")}, **storage}}


# -- the field's forms ----------------------------------------------------------------------


def test_names_and_mappings_with_options_are_both_accepted() -> None:
    specs = parse_observers(["log", {"name": "otel", "spans": False}])
    assert specs == (ObserverSpec("log"), ObserverSpec("otel", {"spans": False}))
    assert parse_observers(None) == ()
    assert load_config({"backend": "local"}).observers == ()


def test_options_come_from_the_environment_like_any_string(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDIT_LEVEL", "debug")
    config = load_config({"storage": {"observers": [{"name": "log", "level": "${AUDIT_LEVEL}"}]}})
    assert config.observers == (ObserverSpec("log", {"level": "debug"}),)


@pytest.mark.parametrize(
    ("value", "field", "message"),
    [
        ("log", "storage.observers", "expected a list of observer names"),
        ([3], "storage.observers[0]", "expected an observer name or a mapping, got int"),
        (["log", {"level": "debug"}], "storage.observers[1]", "expected a mapping with a 'name' field"),
        ([{"log": {"level": "debug"}}], "storage.observers[0]", "write {name: log, <option>: ...}"),
        ([{"name": 7}], "storage.observers[0].name", "expected an observer name such as 'log', got 7"),
        ([""], "storage.observers[0].name", "expected an observer name"),
        ([{"name": "log", 1: 2}], "storage.observers[0]", "option names to be strings"),
    ],
)
def test_a_malformed_entry_is_a_config_error_naming_it(tmp_path: Path, value: object, field: str, message: str) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text("storage:\n  backend: local\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config({"storage": {"observers": value}})
    assert caught.value.field == field
    assert message in caught.value.message


# -- names resolved when a store is opened --------------------------------------------------


def test_an_unknown_name_lists_the_installed_ones_and_suggests_the_close_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        open_storage(store_in(tmp_path, observers=["logs"]))
    assert caught.value.field == "storage.observers[0]"
    assert caught.value.source == "<mapping>"
    assert "no observer named 'logs' is installed (did you mean 'log'?); installed: log, otel" in str(caught.value)


def test_installing_observers_changes_nothing_until_a_config_names_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_plugin(tmp_path, monkeypatch, "storage-counting", OBSERVER_PLUGIN, plugin="counting")
    registry = Registry()
    assert {"counting", "log", "otel"} <= set(registry.observers)
    assert registry.observers["counting"].distribution == "storage-counting"
    with open_storage(store_in(tmp_path)) as store:
        assert not is_observed(store)
        assert "read" not in vars(store)


def test_a_third_party_observer_gets_its_options_without_the_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = install_plugin(tmp_path, monkeypatch, "storage-counting", OBSERVER_PLUGIN, plugin="counting")
    store = LocalStorage.from_options({"path": str(tmp_path / "state.db")})
    specs = parse_observers([{"name": "counting", "every": 3}, "counting"])
    enable_observers(store, specs, source="agent.yaml", registry=Registry())
    with store:
        store.write("a", 1)
    built = sys.modules[module].BUILT
    assert [b.options for b in built] == [{"every": 3}, {}]
    assert [[e.operation for e in b.seen] for b in built] == [["write"], ["write"]]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("exploding", "the observer 'exploding' from storage-counting could not be built (RuntimeError: cannot reach"),
        ("useless", "has no on_operation(event) method; its plugin's factory must return an observer"),
    ],
)
def test_a_factory_that_fails_is_a_config_error_naming_the_plugin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, message: str
) -> None:
    install_plugin(tmp_path, monkeypatch, "storage-counting", OBSERVER_PLUGIN, plugin="counting")
    store = LocalStorage.from_options({"path": str(tmp_path / "state.db")})
    with pytest.raises(ConfigError, match=r"^agent\.yaml: storage\.observers") as caught:
        enable_observers(store, parse_observers([name]), source="agent.yaml", registry=Registry())
    assert message in str(caught.value)
    assert not is_observed(store)


# -- plugins ------------------------------------------------------------------------------------


def test_a_plugin_may_provide_observers_and_no_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_plugin(tmp_path, monkeypatch, "storage-counting", OBSERVER_PLUGIN, plugin="counting")
    registry = Registry()
    assert "local" in registry.backends
    assert registry.observers["counting"].plugin == "counting"
    assert registry.broken == {}


@pytest.mark.parametrize(
    ("hook", "message"),
    [
        ("storage_register_observers", "registered no backend and no observer: its storage_register_observers hook"),
        ("storage_register_backends", "registered no backend: its storage_register_backends hook ran"),
    ],
)
def test_a_plugin_providing_neither_is_still_an_error_and_breaks_only_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hook: str, message: str
) -> None:
    body = f"from storage_core import hookimpl\n\n@hookimpl\ndef {hook}(register):\n    pass\n"
    install_plugin(tmp_path, monkeypatch, "storage-nothing", body, plugin="nothing")
    registry = Registry()
    assert message in str(registry.broken["nothing"].error)
    assert "storage-nothing" in str(registry.broken["nothing"].error)
    assert "local" in registry.backends
    assert "log" in registry.observers


@pytest.mark.parametrize(
    ("calls", "message"),
    [
        ('register("log", lambda o: None)', "registers an observer named 'log', which storage-core already registered"),
        ('register("my-audit", lambda o: None)', "registered an observer named 'my-audit': an observer's name is"),
        ('register("audit", 42)', "registered the observer 'audit' with 42, which is not callable"),
        ('register("a", lambda o: None)\n    register("a", lambda o: None)', "named 'a', which itself already"),
        ("raise RuntimeError('boom')", "failed in its storage_register_observers hook (RuntimeError: boom)"),
    ],
)
def test_a_bad_observer_registration_breaks_only_its_plugin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, calls: str, message: str
) -> None:
    body = f"from storage_core import hookimpl\n\n@hookimpl\ndef storage_register_observers(register):\n    {calls}\n"
    install_plugin(tmp_path, monkeypatch, "storage-bad", body, plugin="bad")
    registry = Registry()
    assert message in str(registry.broken["bad"].error)
    assert "storage-bad" in str(registry.broken["bad"].error)
    assert registry.observers["log"].distribution == "storage-core"
    assert "a" not in registry.observers
    store = LocalStorage.from_options({"path": str(tmp_path / "state.db")})
    with pytest.raises(ConfigError, match=r"broken plugins, not loaded: bad \(see `storage backends`\)"):
        enable_observers(store, parse_observers(["audit"]), source="agent.yaml", registry=registry)


# -- the bundled log observer ---------------------------------------------------------------


def test_log_writes_one_structured_record_per_operation(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = store_in(tmp_path, namespace="fleet", observers=["log"])
    with caplog.at_level(logging.INFO, logger=AUDIT_LOGGER), open_storage(config) as store:
        store.write("task", {"secret": "hunter2"})
        with pytest.raises(KeyError):
            store.read("missing")
    records = [r for r in caplog.records if r.name == AUDIT_LOGGER]
    kinds = [r.storage.get("kind", r.storage.get("operation")) for r in records]  # type: ignore[attr-defined]
    assert kinds == ["initialized", "write", "read", "closed"]
    write = records[1]
    assert write.levelno == logging.INFO
    assert write.getMessage().startswith("storage local write key='task' keys=1 consistency=strong outcome=ok")
    assert write.storage["namespace"] == "fleet"  # type: ignore[attr-defined]
    assert records[2].storage["outcome"] == "KeyNotFound"  # type: ignore[attr-defined]
    assert "hunter2" not in caplog.text


def test_log_at_another_level_and_silent_when_its_logger_is_off(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = store_in(tmp_path, observers=[{"name": "log", "level": "DEBUG"}])
    with caplog.at_level(logging.INFO, logger=AUDIT_LOGGER), open_storage(config) as store:
        store.write("a", 1)
    assert [r for r in caplog.records if r.name == AUDIT_LOGGER] == []
    with caplog.at_level(logging.DEBUG, logger=AUDIT_LOGGER), open_storage(config) as store:
        store.write("a", 1)
    assert [r.levelno for r in caplog.records if r.name == AUDIT_LOGGER] == [logging.DEBUG] * 3


@pytest.mark.parametrize(
    ("entry", "field", "message"),
    [
        ({"name": "log", "level": "loud"}, "storage.observers[0].level", "expected one of debug, info, warning"),
        (
            {"name": "log", "lvl": "info"},
            "storage.observers[0]",
            "unknown field 'lvl' (did you mean 'level'?); expected one of: level",
        ),
        ({"name": "log", "level": 3}, "storage.observers[0].level", "expected a string, got int"),
    ],
)
def test_log_refuses_bad_options_naming_the_entry(tmp_path: Path, entry: object, field: str, message: str) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(
        f"storage:\n  local:\n    path: {tmp_path / 'state.db'}\n  observers:\n    - {entry}\n", encoding="utf-8"
    )
    with pytest.raises(ConfigError) as caught:
        open_storage(path)
    assert (caught.value.source, caught.value.field) == (str(path), field)
    assert message in caught.value.message


def test_otel_without_opentelemetry_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "storage_core.observers.otel", raising=False)
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    with pytest.raises(ConfigError, match=r"pip install 'storage-core\[otel\]'") as caught:
        open_storage(store_in(tmp_path, observers=["otel"]))
    assert caught.value.field == "storage.observers[0]"


def test_a_store_without_observers_never_imports_the_instrumentation(tmp_path: Path) -> None:
    script = f"""
import sys
from storage_core import load_config, open_storage
load_config({{"observers": ["log"]}})
with open_storage({{"backend": "local", "local": {{"path": {str(tmp_path / "state.db")!r}}}}}) as store:
    store.write("a", 1)
print(sorted(m for m in sys.modules if m.startswith("storage_core.observers.")))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60)
    # The plugin module registers the bundled observers' names; it imports none of them.
    loaded = "['storage_core.observers.events', 'storage_core.observers.plugin', 'storage_core.observers.specs']"
    assert done.stdout.strip() == loaded


def test_the_package_names_what_it_lacks() -> None:
    import storage_core.observers

    with pytest.raises(AttributeError, match="has no attribute 'attack'"):
        storage_core.observers.attack  # noqa: B018
