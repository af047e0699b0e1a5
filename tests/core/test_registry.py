"""Backends come from entry points, lazily and once; every broken plugin is named."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid
from importlib import metadata
from pathlib import Path

import pytest

from storage_core import BackendNotFound, PluginError, Storage, available_backends
from storage_core.registry import DISABLE_PLUGINS_ENV, Registry, get_registry

BACKEND = """
from collections.abc import Iterator
from storage_core import Storage, hookimpl

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


def install_plugin(root: Path, monkeypatch: pytest.MonkeyPatch, dist: str, body: str, version: str = "1.2.3") -> str:
    """Write a real distribution (module + dist-info with an entry point) onto sys.path."""
    module = f"plugin_{uuid.uuid4().hex[:10]}"
    (root / f"{module}.py").write_text(textwrap.dedent(body), encoding="utf-8")
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(f"[storage_core]\n{dist} = {module}\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(root))
    return module


def plugin_registering(*backends: str) -> str:
    classes = "".join(BACKEND.format(cls=f"B{i}", backend=b) for i, b in enumerate(backends))
    calls = "".join(f"    register(B{i})\n" for i in range(len(backends))) or "    pass\n"
    header = "from storage_core import hookimpl\n"
    return f"{header}{classes}\n@hookimpl\ndef storage_register_backends(register):\n{calls}"


def test_the_local_backend_is_registered_through_its_entry_point() -> None:
    info = available_backends()["local"]
    assert info.distribution == "storage-core"
    assert info.version == metadata.version("storage-core")
    assert info.url_schemes == ("local",)
    assert issubclass(info.cls, Storage)
    assert any(ep.name == "local" for ep in metadata.entry_points(group="storage_core"))


def test_the_view_is_read_only_and_loaded_once() -> None:
    backends = available_backends()
    assert available_backends() is backends
    with pytest.raises(TypeError):
        backends["x"] = backends["local"]  # type: ignore[index]


def test_a_third_party_distribution_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_plugin(tmp_path, monkeypatch, "storage-memo", plugin_registering("memo"), version="0.4.0")
    registry = Registry()
    info = registry.get("memo")
    assert (info.distribution, info.version, info.url_schemes) == ("storage-memo", "0.4.0", ("memo",))
    assert registry.for_scheme("memo") is info
    assert "local" in registry.backends


def test_the_kill_switch_loads_only_first_party_backends(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_plugin(tmp_path, monkeypatch, "storage-memo", plugin_registering("memo"))
    monkeypatch.setenv(DISABLE_PLUGINS_ENV, "1")
    backends = Registry().backends
    assert "memo" not in backends
    assert "local" in backends


def test_a_plugin_that_registers_nothing_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_plugin(tmp_path, monkeypatch, "storage-empty", plugin_registering())
    with pytest.raises(PluginError, match=r"'storage-empty' from storage-empty .* registered no backend"):
        dict(Registry().backends)


def test_a_plugin_without_the_hook_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_plugin(tmp_path, monkeypatch, "storage-nohook", "VALUE = 1\n")
    with pytest.raises(PluginError, match="registered no backend"):
        dict(Registry().backends)


def test_a_duplicate_backend_name_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_plugin(tmp_path, monkeypatch, "storage-fake-local", plugin_registering("local"))
    with pytest.raises(PluginError, match="two plugins register a storage backend named 'local'"):
        dict(Registry().backends)


def test_a_plugin_that_fails_to_import_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_plugin(tmp_path, monkeypatch, "storage-broken", "raise RuntimeError('boom')\n")
    with pytest.raises(
        PluginError, match=rf"'storage-broken' from storage-broken failed to import.*{DISABLE_PLUGINS_ENV}"
    ):
        dict(Registry().backends)


def test_a_misspelled_hook_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    body = plugin_registering("memo") + "\n@hookimpl\ndef storage_register_backend(register):\n    pass\n"
    install_plugin(tmp_path, monkeypatch, "storage-typo", body)
    with pytest.raises(PluginError, match="implements a hook storage-core does not have"):
        dict(Registry().backends)


def test_a_hook_with_a_wrong_argument_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    body = "from storage_core import hookimpl\n@hookimpl\ndef storage_register_backends(registrar):\n    pass\n"
    install_plugin(tmp_path, monkeypatch, "storage-badarg", body)
    with pytest.raises(PluginError, match="'storage-badarg' from storage-badarg is invalid"):
        dict(Registry().backends)


@pytest.mark.parametrize(
    ("registered", "message"),
    [
        ("int", "which is not a Storage subclass"),
        ("Storage", "needs a class attribute `name`"),
        ("Abstract", "does not implement: _delete"),
        ("BadSchemes", "url_schemes must be a tuple of str"),
    ],
)
def test_a_bad_backend_class_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, registered: str, message: str
) -> None:
    body = f"""
        from storage_core import Storage, hookimpl
        class Abstract(Storage):
            name = "abstract"
        class BadSchemes(Abstract):
            url_schemes = "bad"
            from_options = _read = _write = _write_if = _delete = _iter_keys = None
        @hookimpl
        def storage_register_backends(register):
            register({registered})
    """
    install_plugin(tmp_path, monkeypatch, "storage-bad", body)
    with pytest.raises(PluginError, match=message):
        dict(Registry().backends)


def local_only() -> Registry:
    (local,) = [ep for ep in metadata.entry_points(group="storage_core") if ep.name == "local"]
    return Registry(entry_points=[local])


def test_an_unknown_name_lists_what_is_installed() -> None:
    with pytest.raises(BackendNotFound) as info:
        local_only().get("postgres")
    assert "no storage backend named 'postgres' is installed" in str(info.value)
    assert "installed: local" in str(info.value)
    assert isinstance(info.value, LookupError)


def test_a_known_but_missing_backend_says_how_to_install_it() -> None:
    with pytest.raises(BackendNotFound, match=r"install it with: pip install 'storage-core\[redis\]'"):
        local_only().get("redis")
    with pytest.raises(BackendNotFound, match=r"pip install 'storage-core\[redis\]'.*installed: local"):
        local_only().for_scheme("rediss")


def test_an_unknown_scheme_lists_the_installed_schemes() -> None:
    with pytest.raises(BackendNotFound, match=r"scheme 'ftp' .*use one of the installed schemes.*local"):
        get_registry().for_scheme("ftp")


def test_importing_the_package_loads_no_plugin() -> None:
    code = "import sys, storage_core; print(any(m.startswith(('storage_local', 'storage_redis')) for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_two_distributions_with_one_plugin_name_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (local,) = [ep for ep in metadata.entry_points(group="storage_core") if ep.name == "local"]
    module = install_plugin(tmp_path, monkeypatch, "storage-memo", plugin_registering("memo"))
    impostor = metadata.EntryPoint(name="local", value=module, group="storage_core")
    with pytest.raises(PluginError, match=r"two storage plugins are named 'local': storage_local.plugin"):
        dict(Registry(entry_points=[local, impostor]).backends)


def test_the_same_entry_point_seen_twice_is_loaded_once() -> None:
    (local,) = [ep for ep in metadata.entry_points(group="storage_core") if ep.name == "local"]
    assert list(Registry(entry_points=[local, local]).backends) == ["local"]


def test_one_module_advertised_under_two_names_is_an_error() -> None:
    (local,) = [ep for ep in metadata.entry_points(group="storage_core") if ep.name == "local"]
    alias = metadata.EntryPoint(name="local2", value=local.value, group="storage_core")
    with pytest.raises(PluginError, match=r"'local2' .* points at storage_local.plugin, which the plugin 'local'"):
        dict(Registry(entry_points=[local, alias]).backends)


def test_two_backends_claiming_one_url_scheme_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    body = plugin_registering("memo").replace('url_schemes = ("memo",)', 'url_schemes = ("local",)')
    install_plugin(tmp_path, monkeypatch, "storage-memo", body)
    with pytest.raises(PluginError, match=r"both claim URLs of scheme 'local'"):
        dict(Registry().backends)


def test_importing_the_package_reads_no_yaml_and_no_package_metadata() -> None:
    code = "import sys, storage_core; print(sorted({'yaml', 'importlib.metadata'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
