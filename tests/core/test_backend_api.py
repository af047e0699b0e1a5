"""``storage_core.backend`` is the whole seam: backends need nothing else from the core."""

from __future__ import annotations

import ast
import importlib.util
import inspect
from pathlib import Path

import pytest

from storage_core import backend, errors

ROOT = Path(__file__).resolve().parents[2]
# The code of every backend distribution in the repository; their tests may also use the kit.
BACKENDS = [ROOT / "storage_local", ROOT / "storage_redis" / "src" / "storage_redis"]
BACKENDS += sorted(p for p in (ROOT / "examples").glob("*/src/*") if p.is_dir())
ALLOWED = {"storage_core", "storage_core.backend"}


def _core_imports(path: Path) -> list[tuple[int, str]]:
    """The ``storage_core`` modules *path* imports, with their line numbers."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            if node.module == "storage_core":  # from storage_core import errors: a module, not a name
                found += [(node.lineno, f"storage_core.{a.name}") for a in node.names if _is_module(a.name)]
    return [(line, name) for line, name in found if name.split(".")[0] == "storage_core"]


def _is_module(name: str) -> bool:
    return importlib.util.find_spec(f"storage_core.{name}") is not None


def _sources() -> list[Path]:
    return [path for package in BACKENDS for path in sorted(package.rglob("*.py"))]


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_backends_import_only_the_declared_api(path: Path) -> None:
    internal = [f"line {line}: {name}" for line, name in _core_imports(path) if name not in ALLOWED]
    assert not internal, f"{path.relative_to(ROOT)} imports internal modules; use storage_core.backend: {internal}"


def test_the_import_check_sees_what_it_must_refuse(tmp_path: Path) -> None:
    source = tmp_path / "bad.py"
    source.write_text(
        "import storage_core.options\nfrom storage_core.retry import RetryPolicy\n"
        "from storage_core import errors, Storage, hookimpl\n"
        "from storage_core.backend import Storage as S\nfrom . import x\n",
        encoding="utf-8",
    )
    names = [name for _, name in _core_imports(source)]
    refused = [n for n in names if n not in ALLOWED]
    assert refused == ["storage_core.options", "storage_core.retry", "storage_core.errors"]


def test_every_bundled_backend_package_is_checked() -> None:
    checked = {path.parent for path in _sources()}
    assert {ROOT / "storage_local", ROOT / "storage_redis" / "src" / "storage_redis"} <= checked
    assert ROOT / "examples" / "storage-memory" / "src" / "storage_memory" in checked


def test_every_error_class_is_in_the_backend_api() -> None:
    classes = {n for n, c in inspect.getmembers(errors, inspect.isclass) if issubclass(c, errors.StorageError)}
    missing = sorted(classes - set(backend.__all__))
    assert not missing, f"error classes missing from storage_core.backend: {missing}"


@pytest.mark.parametrize(
    "name",
    [
        "Storage",
        "Consistency",
        "Capability",
        "content_version",
        "parse_options",
        "secret",
        "RetryPolicy",
        "ExponentialBackoff",
        "redact_url",
    ],
)
def test_the_pinned_names_are_declared(name: str) -> None:
    assert name in backend.__all__
    assert getattr(backend, name) is not None


def test_everything_declared_exists_once() -> None:
    assert len(backend.__all__) == len(set(backend.__all__))
    for name in backend.__all__:
        assert hasattr(backend, name), name


def test_a_plugin_registers_through_the_register_backend_callback() -> None:
    from storage_memory import MemoryStorage, plugin

    registered: list[object] = []

    def register(backend: object, target: str | None = None, *, url_schemes: object = ()) -> None:
        registered.append(backend)

    callback: backend.RegisterBackend = register
    plugin.storage_register_backends(callback)
    assert registered == [MemoryStorage]
