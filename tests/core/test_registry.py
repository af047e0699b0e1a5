"""Backends come from entry points, lazily and once; a broken plugin is named and breaks only itself.

The plugins here are real throwaway distributions (a module and a dist-info with an
entry point on a temporary sys.path), found by importlib.metadata like any installed one.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import uuid
from importlib import metadata
from pathlib import Path

import pytest

from storage_core import BackendNotFound, ConfigError, PluginError, available_backends, open_storage
from storage_core.cli import main
from storage_core.known_backends import FIRST_PARTY, KNOWN_BACKENDS
from storage_core.redact import redact_url
from storage_core.registry import DISABLE_PLUGINS_ENV, Registry, get_registry
from storage_local.backend import LocalStorage

BACKEND = """
from collections.abc import Iterator
from storage_core import ConfigError, Storage, hookimpl

class {cls}(Storage):
    name = "{backend}"
    url_schemes = ("{backend}",)

    @classmethod
    def from_options(cls, options):
        return cls()

    def _read(self, key): return None
    def _write(self, key, data, ttl, consistency): pass
    def _write_if(self, key, data, expected, ttl, consistency): return True
    def _delete(self, key, consistency): return False
    def _iter_keys(self, prefix) -> Iterator[str]: return iter(())
"""


def install_plugin(
    root: Path,
    monkeypatch: pytest.MonkeyPatch,
    dist: str,
    body: str,
    *,
    version: str = "1.2.3",
    plugin: str = "memo",
    module: str | None = None,
) -> str:
    """Write a real distribution (module + dist-info with an entry point) onto sys.path."""
    module = module or f"plugin_{uuid.uuid4().hex[:10]}"
    (root / f"{module}.py").write_text(textwrap.dedent(body), encoding="utf-8")
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(f"[storage_core]\n{plugin} = {module}\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(root))
    return module


def plugin_registering(*backends: str) -> str:
    classes = "".join(BACKEND.format(cls=f"B{i}", backend=b) for i, b in enumerate(backends))
    calls = "".join(f"    register(B{i})\n" for i in range(len(backends))) or "    pass\n"
    return f"{classes}\n@hookimpl\ndef storage_register_backends(register):\n{calls}"


def local_still_works(registry: Registry, tmp_path: Path) -> None:
    """The promise every broken-plugin test checks: the others keep working."""
    assert registry.get("local").cls is LocalStorage
    assert registry.for_scheme("local").name == "local"
    with open_storage(f"local://{tmp_path}/still.db") as store:
        store.write("k", 1)
        assert store.read("k") == 1


def test_the_local_backend_is_registered_through_its_entry_point() -> None:
    info = available_backends()["local"]
    assert info.distribution == "storage-core"
    assert info.version == metadata.version("storage-core")
    assert info.url_schemes == ("local",)
    assert info.target == "storage_local.backend:LocalStorage"
    assert info.cls is LocalStorage
    assert any(ep.name == "local" for ep in metadata.entry_points(group="storage_core"))


def test_the_views_are_read_only_and_loaded_once() -> None:
    backends = available_backends()
    assert available_backends() is backends
    assert get_registry().broken is get_registry().broken
    with pytest.raises(TypeError):
        backends["x"] = backends["local"]  # type: ignore[index]


def test_a_third_party_distribution_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_plugin(tmp_path, monkeypatch, "storage-memo", plugin_registering("memo"), version="0.4.0")
    registry = Registry()
    info = registry.get("memo")
    assert (info.distribution, info.version, info.url_schemes) == ("storage-memo", "0.4.0", ("memo",))
    assert registry.for_scheme("memo") is info
    assert info.cls.name == "memo"
    assert "local" in registry.backends
    assert registry.broken == {}


def test_the_kill_switch_loads_only_first_party_backends(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_plugin(tmp_path, monkeypatch, "storage-memo", plugin_registering("memo"))
    monkeypatch.setenv(DISABLE_PLUGINS_ENV, "1")
    registry = Registry()
    assert "memo" not in registry.backends
    assert "local" in registry.backends


# -- the plugin author's mistakes: one PluginError naming the distribution and the fix ----------------

HOOK = "@hookimpl\ndef storage_register_backends(register):\n"
MISTAKES = {
    "import fails": ("raise RuntimeError('boom')\n", r"failed to import plugin_\w+ \(RuntimeError: boom\)"),
    "imports a missing module": ("import storage_memo_dependency\n", r"ModuleNotFoundError: No module named"),
    "no @hookimpl marker": (
        plugin_registering("memo").replace("@hookimpl\n", ""),
        r"defines storage_register_backends\(\) without the @hookimpl marker, so it is never called: "
        r"decorate it with @storage_core.hookimpl",
    ),
    "misspelled hook": (
        plugin_registering("memo").replace("def storage_register_backends", "def storage_register_backend"),
        r"implements storage_register_backend\(\), which is not a storage-core hook "
        r"\(did you mean 'storage_register_backends'\?\)",
    ),
    "misspelled hook without marker": (
        "from storage_core import hookimpl\ndef storage_register_backend(register):\n    pass\n",
        r"defines storage_register_backend\(\), which is not a storage-core hook \(did you mean",
    ),
    "wrong hook argument": (
        "from storage_core import hookimpl\n@hookimpl\ndef storage_register_backends(registrar):\n    pass\n",
        r"is invalid \(.*registrar.*\): see storage_core.hookspecs",
    ),
    "hook registers nothing": (plugin_registering(), r"hook ran but never called register\(\)"),
    "no hook at all": ("VALUE = 1\n", r"has no storage_register_backends hook \(.*\): add one, decorated"),
    "hook raises": (
        f"from storage_core import hookimpl\n{HOOK}    raise KeyError('x')\n",
        r"failed in its storage_register_backends hook \(KeyError: 'x'\)",
    ),
    "an instance": (
        plugin_registering("memo").replace("register(B0)", "register(B0())"),
        r"registered an instance of B0, not the class: pass the class itself: register\(B0\)",
    ),
    "not a Storage": (
        f"from storage_core import hookimpl\n{HOOK}    register(int)\n",
        r"registered <class 'int'>, which is not a Storage subclass",
    ),
    "no name": (
        plugin_registering("memo").replace('    name = "memo"\n', ""),
        r"registered B0, whose class attribute `name` is None: set `name` to a Python identifier",
    ),
    "abstract": (
        plugin_registering("memo").replace("def _delete", "def _delete_typo"),
        r"registered the backend 'memo', which does not implement _delete",
    ),
    "bad url_schemes": (
        plugin_registering("memo").replace('url_schemes = ("memo",)', 'url_schemes = "memo"'),
        r"url_schemes='memo': url_schemes is a tuple of non-empty str",
    ),
    "name already taken": (
        plugin_registering("local").replace('url_schemes = ("local",)', "url_schemes = ()"),
        r"registers a backend named 'local', which storage-core already registered: give the backend another name",
    ),
    "scheme already taken": (
        plugin_registering("memo").replace('url_schemes = ("memo",)', 'url_schemes = ("local",)'),
        r"claims URLs of scheme 'local' for the backend 'memo', which the backend 'local' already handles",
    ),
    "overrides a template method": (
        plugin_registering("memo") + "B0.write = lambda self, key, value, **kw: None\nB0.keys = B0.write\n",
        r"which overrides keys, write of the Storage template .*: remove the override and implement",
    ),
    "one good and one bad backend": (
        plugin_registering("memo", "memo2").replace("register(B1)", "register(B1())"),
        r"registered an instance of B1",
    ),
}


@pytest.mark.parametrize(("body", "message"), MISTAKES.values(), ids=MISTAKES.keys())
def test_a_broken_plugin_is_one_error_and_every_other_backend_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str, message: str
) -> None:
    header = "from storage_core import ConfigError, Storage, hookimpl\n" if "hookimpl" in body else ""
    install_plugin(tmp_path, monkeypatch, "storage-memo", header + body)
    registry = Registry()
    assert set(registry.broken) == {"memo"}
    broken = registry.broken["memo"]
    assert (broken.name, broken.distribution, broken.version) == ("memo", "storage-memo", "1.2.3")
    error = str(broken.error)
    assert error.startswith("the storage plugin 'memo' from storage-memo 1.2.3 ")
    assert "\n" not in error
    assert re.search(message, error), error
    assert error.endswith(f"(pip uninstall storage-memo) or set {DISABLE_PLUGINS_ENV}=1 to skip third-party plugins")
    assert "memo" not in registry.backends
    assert "memo2" not in registry.backends, "a plugin's backends are accepted all or none"
    with pytest.raises(PluginError) as selected:
        registry.get("memo")
    assert str(selected.value) == error
    local_still_works(registry, tmp_path)


def test_a_broken_first_party_plugin_says_how_to_reinstall_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Shadows the installed storage-redis (importlib.metadata takes the first of a name on sys.path).
    body = "raise ModuleNotFoundError(\"No module named 'redis'\")\n"
    install_plugin(tmp_path, monkeypatch, "storage-redis", body, version="0.1.0", plugin="redis")
    registry = Registry()
    error = str(registry.broken["redis"].error)
    assert "from storage-redis 0.1.0 failed to import" in error
    assert "No module named 'redis'" in error
    assert "this installation of storage-redis is broken: reinstall it (pip install --force-reinstall " in error
    assert (
        "'storage-core[redis]' (in a storage-core checkout: make dev, or pip install -e . -e ./storage_redis)" in error
    )
    assert "third-party" not in error
    with pytest.raises(PluginError, match="reinstall it"):
        registry.get("redis")
    with pytest.raises(PluginError, match="reinstall it"):
        registry.for_scheme("rediss")
    local_still_works(registry, tmp_path)


def test_a_config_loads_while_an_unselected_plugin_is_broken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_plugin(tmp_path, monkeypatch, "storage-memo", "raise RuntimeError('boom')\n")
    monkeypatch.setattr("storage_core.registry._registry", Registry())
    config = {"backend": "local", "local": {"path": str(tmp_path / "a.db")}, "memo": {"anything": 1}}
    with open_storage(config) as store:
        store.write("k", 1)
    with pytest.raises(PluginError, match=r"'memo' from storage-memo 1\.2\.3 failed to import"):
        open_storage({"backend": "memo"})


# -- registration by reference: imported only when needed -----------------------------------------------


def by_reference(target: str, name: str = "memo", schemes: str = "('memo',)") -> str:
    return f"from storage_core import hookimpl\n{HOOK}    register({name!r}, {target!r}, url_schemes={schemes})\n"


def test_a_backend_registered_by_reference_is_imported_only_when_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend_module = install_plugin(tmp_path, monkeypatch, "storage-lazy-impl", plugin_registering("memo"))
    (tmp_path / "storage_lazy_impl-1.2.3.dist-info" / "entry_points.txt").unlink()  # only the module is used
    install_plugin(tmp_path, monkeypatch, "storage-memo", by_reference(f"{backend_module}:B0"))
    registry = Registry()
    info = registry.get("memo")
    assert (info.name, info.url_schemes, info.target) == ("memo", ("memo",), f"{backend_module}:B0")
    local_still_works(registry, tmp_path)
    assert backend_module not in sys.modules
    assert info.cls.__name__ == "B0"
    assert backend_module in sys.modules
    assert info.cls is info.cls


@pytest.mark.parametrize(
    ("target", "name", "schemes", "message"),
    [
        (
            "no_such_module_xyz:B0",
            "memo",
            "('memo',)",
            r"cannot import its backend 'memo' from no_such_module_xyz:B0 "
            r"\(ModuleNotFoundError",
        ),
        ("{module}:Missing", "memo", "('memo',)", r"AttributeError"),
        (
            "{module}:B0",
            "memo",
            "('other',)",
            r"registered 'memo' with url_schemes=\('other',\), but .* has "
            r"name='memo' and url_schemes=\('memo',\): make the register\(\) call say what the class says",
        ),
        ("{module}:B0", "other", "('memo',)", r"but .* has name='memo'"),
    ],
)
def test_a_wrong_reference_breaks_only_that_backend_when_it_is_used(  # noqa: PLR0917 - the parameters
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str, name: str, schemes: str, message: str
) -> None:
    module = install_plugin(tmp_path, monkeypatch, "storage-lazy-impl", plugin_registering("memo"))
    (tmp_path / "storage_lazy_impl-1.2.3.dist-info" / "entry_points.txt").unlink()
    install_plugin(tmp_path, monkeypatch, "storage-memo", by_reference(target.format(module=module), name, schemes))
    registry = Registry()
    assert registry.broken == {}
    with pytest.raises(PluginError, match=message):
        _ = registry.get(name).cls
    assert re.search(message, str(registry.broken["memo"].error))
    with pytest.raises(PluginError, match=message):  # remembered, not imported again
        _ = registry.get(name).cls
    local_still_works(registry, tmp_path)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("register('memo')", r"registered the backend 'memo' with target None: by reference"),
        ("register('memo', 'no_colon')", r"with target 'no_colon'"),
        ("register('not a word', 'm:C')", r"registered a backend named 'not a word': a backend's name is a Python"),
        ("register('memo', 'm:C', url_schemes='memo')", r"url_schemes='memo': url_schemes is a tuple of str"),
        ("register('memo', 'm:C', url_schemes=('',))", r"url_schemes=\('',\): url_schemes is a tuple of non-empty"),
        ("register(B0, url_schemes=('x',))", r"called register\(<class '.*B0'>, ...\) with more than the class"),
    ],
)
def test_a_bad_register_call_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, call: str, message: str
) -> None:
    body = plugin_registering("memo").replace("register(B0)", call)
    install_plugin(tmp_path, monkeypatch, "storage-memo", body)
    registry = Registry()
    assert re.search(message, str(registry.broken["memo"].error)), registry.broken["memo"].error
    local_still_works(registry, tmp_path)


def test_opening_a_local_store_never_imports_redis(tmp_path: Path) -> None:
    assert "redis" in available_backends(), "this check needs storage-redis installed"
    code = f"""
import sys
from storage_core import available_backends, open_storage
from storage_core.cli import main
with open_storage("local://{tmp_path}/x.db") as store:
    store.write("k", 1)
assert main(["-c", "local://{tmp_path}/x.db", "get", "k"]) == 0
assert "redis" in available_backends()
print(sorted(m for m in sys.modules if m.split(".")[0] in ("redis", "storage_redis")))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines()[-1] == "['storage_redis', 'storage_redis.plugin']"


def test_storage_backends_lists_the_broken_plugins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    install_plugin(tmp_path, monkeypatch, "storage-memo", "raise RuntimeError('boom')\n")
    install_plugin(
        tmp_path, monkeypatch, "storage-lazy", by_reference("no_such_module_xyz:B", "lazy", "()"), plugin="lazy"
    )
    monkeypatch.setattr("storage_core.registry._registry", Registry())
    assert main(["backends"]) == 1
    captured = capsys.readouterr()
    rows = {line.split()[0]: line.split(maxsplit=3)[1:] for line in captured.out.splitlines()[1:]}
    assert rows["local"] == ["storage-core", metadata.version("storage-core"), "local"]
    assert rows["memo"] == ["storage-memo", "1.2.3", "BROKEN (see stderr)"]
    assert rows["lazy"] == ["storage-lazy", "1.2.3", "BROKEN (see stderr)"]
    errors = captured.err.splitlines()
    assert len(errors) == 2, errors
    assert errors[0].startswith("storage: broken: the storage plugin 'lazy' from storage-lazy 1.2.3 cannot import")
    assert errors[1].startswith("storage: broken: the storage plugin 'memo' from storage-memo 1.2.3 failed to import")


def test_storage_backends_exits_0_when_nothing_is_broken(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backends"]) == 0
    assert capsys.readouterr().err == ""


# -- entry points: names and modules -----------------------------------------------------------------


def local_entry_point() -> metadata.EntryPoint:
    (local,) = [ep for ep in metadata.entry_points(group="storage_core") if ep.name == "local"]
    return local


def test_two_distributions_with_one_plugin_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_plugin(tmp_path, monkeypatch, "storage-memo", plugin_registering("memo"), plugin="local")
    registry = Registry()
    error = str(registry.broken["local (storage-memo)"].error)
    assert "from storage-memo 1.2.3 has the plugin name 'local' of storage_local.plugin from storage-core" in error
    assert "give the entry point in group 'storage_core' another name" in error
    local_still_works(registry, tmp_path)


def test_the_same_entry_point_seen_twice_is_loaded_once() -> None:
    local = local_entry_point()
    registry = Registry(entry_points=[local, local])
    assert (list(registry.backends), dict(registry.broken)) == (["local"], {})


def test_one_module_advertised_under_two_names(tmp_path: Path) -> None:
    local = local_entry_point()
    alias = metadata.EntryPoint(name="local2", value=local.value, group="storage_core")
    registry = Registry(entry_points=[local, alias])
    assert re.search(
        r"'local2' .* points at storage_local.plugin, which the plugin 'local' already registered",
        str(registry.broken["local2"].error),
    )
    local_still_works(registry, tmp_path)


# -- unknown names: what is installed, what is close, how to install a known one -----------------


def local_only() -> Registry:
    return Registry(entry_points=[local_entry_point()])


def test_an_unknown_name_lists_what_is_installed() -> None:
    with pytest.raises(BackendNotFound) as info:
        local_only().get("postgres")
    assert "no storage backend named 'postgres' is installed (check the spelling" in str(info.value)
    assert "installed: local" in str(info.value)
    assert isinstance(info.value, LookupError)


def test_a_misspelled_name_or_scheme_suggests_the_close_one() -> None:
    with pytest.raises(BackendNotFound, match=r"named 'lcoal' is installed \(did you mean 'local'\?\)"):
        local_only().get("lcoal")
    with pytest.raises(BackendNotFound, match=r"named 'rediss' is installed \(did you mean 'redis'\?\)"):
        local_only().get("rediss")
    with pytest.raises(BackendNotFound, match=r"scheme 'lokal' \(did you mean 'local'\?\)"):
        local_only().for_scheme("lokal")


def test_a_known_but_missing_backend_says_how_to_install_it() -> None:
    install = r"install it with: pip install 'storage-core\[redis\]' \(in a storage-core checkout: make dev"
    with pytest.raises(BackendNotFound, match=install):
        local_only().get("redis")
    with pytest.raises(BackendNotFound, match=rf"{install}.*installed: local"):
        local_only().for_scheme("unix")


def test_the_schemes_storage_redis_refuses_are_not_advertised() -> None:
    for scheme in ("redis+sentinel", "redis+cluster"):
        with pytest.raises(BackendNotFound, match="use one of the installed schemes"):
            local_only().for_scheme(scheme)


def test_an_unknown_scheme_lists_the_installed_schemes() -> None:
    with pytest.raises(BackendNotFound, match=r"scheme 'ftp' \(use one of the installed schemes\); installed: .*local"):
        get_registry().for_scheme("ftp")


def test_an_unknown_name_mentions_the_broken_plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_plugin(tmp_path, monkeypatch, "storage-memo", "raise RuntimeError('boom')\n", plugin="memo_ep")
    with pytest.raises(BackendNotFound, match=r"broken plugins, not loaded: memo_ep \(see `storage backends`\)"):
        Registry().get("memo")


def test_the_known_table_matches_the_installed_bundled_backends() -> None:
    for known in KNOWN_BACKENDS.values():
        info = available_backends()[known.name]
        assert (info.distribution, info.url_schemes, info.cls.url_schemes) == (
            known.distribution,
            known.url_schemes,
            known.url_schemes,
        )
    assert {"storage-core", "storage-redis"} == FIRST_PARTY


# -- from_options: every failure is a ConfigError naming the file and section ---------------------


@pytest.mark.parametrize(
    "raised", ["KeyError('password')", "TypeError('hunter2 is not an int')", "RuntimeError('bad s3cr3t-token')"]
)
def test_a_from_options_that_raises_something_else_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, raised: str
) -> None:
    body = plugin_registering("memo").replace("return cls()", f"raise {raised}")
    install_plugin(tmp_path, monkeypatch, "storage-memo", body)
    monkeypatch.setattr("storage_core.registry._registry", Registry())
    config = tmp_path / "agent.yaml"
    config.write_text(
        "storage:\n  backend: memo\n  memo:\n    password: hunter2\n    tokens: [s3cr3t-token]\n", encoding="utf-8"
    )
    with pytest.raises(ConfigError) as info:
        open_storage(config)
    message = str(info.value)
    assert message.startswith(f"{config}: storage.memo: the 'memo' backend (storage-memo 1.2.3) failed to read")
    assert raised.partition("(")[0] in message
    assert "hunter2" not in message
    assert "s3cr3t" not in message
    assert isinstance(info.value.__cause__, (KeyError, TypeError, RuntimeError))


@pytest.mark.parametrize("url", ["memo://:p%40ss@h/0", "memo://[p@ss"])
def test_a_from_url_that_raises_something_else_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    body = plugin_registering("memo").replace("return cls()", "raise KeyError(options['url'] + ' p@ss')")
    install_plugin(tmp_path, monkeypatch, "storage-memo", body)
    monkeypatch.setattr("storage_core.registry._registry", Registry())
    with pytest.raises(ConfigError) as info:
        open_storage(url)
    message = str(info.value)
    assert message.startswith(f"{redact_url(url)}: the 'memo' backend (storage-memo 1.2.3) failed to read its options")
    assert "KeyError: '***" in message
    if "%40" in url:
        assert "p@ss" not in message
        assert "p%40ss" not in message


# -- import-time behaviour -----------------------------------------------------------------------------


def test_importing_the_package_loads_no_plugin() -> None:
    code = "import sys, storage_core; print(any(m.startswith(('storage_local', 'storage_redis')) for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_importing_the_package_reads_no_yaml_and_no_package_metadata() -> None:
    code = "import sys, storage_core; print(sorted({'yaml', 'importlib.metadata'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
