"""Datasette style: every hook, every name of storage_core.backend and every capability
is documented in docs/reference.md and used by at least one test; every primitive a
bundled backend implements is explained in docs/writing-a-backend.md."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from storage_core import backend, hookspecs
from storage_core.backend import Capability, Storage

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = (ROOT / "docs" / "reference.md").read_text(encoding="utf-8")
GUIDE = (ROOT / "docs" / "writing-a-backend.md").read_text(encoding="utf-8")
TEST_FILES = [*(ROOT / "tests").rglob("test_*.py"), *(ROOT / "examples").glob("*/tests/test_*.py")]
TESTS = "\n".join(path.read_text(encoding="utf-8") for path in TEST_FILES if path != Path(__file__).resolve())
HOOKS = [name for name, _ in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("storage_")]


def _bundled_backends() -> list[type[Storage]]:
    from storage_redis.storage import RedisStorage

    from storage_local.backend import LocalStorage

    return [LocalStorage, RedisStorage]


def _primitives() -> list[str]:
    """The protected methods of the template that some bundled backend implements: its primitives.

    Inherited ones count on both sides: the template and a backend may each take theirs from a mixin.
    """
    template = {
        name
        for name in dir(Storage)
        if name.startswith("_") and not name.startswith("__") and callable(getattr(Storage, name))
    } - {"_abc_impl"}
    found = set()
    for cls in _bundled_backends():
        own = [k for k in cls.__mro__ if not issubclass(Storage, k)]  # the backend's classes, not the template's
        found |= {name for name in template if any(name in vars(k) for k in own)}
    return sorted(found)


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented_and_tested(hook: str) -> None:
    assert f"### `{hook}`" in REFERENCE, f"docs/reference.md has no section for the hook {hook}"
    assert re.search(rf"\b{hook}\b", TESTS), f"no test uses the hook {hook}"


@pytest.mark.parametrize("name", backend.__all__)
def test_every_name_of_the_backend_api_is_documented_and_tested(name: str) -> None:
    assert f"### `{name}`" in REFERENCE, f"docs/reference.md has no section for storage_core.backend.{name}"
    assert re.search(rf"\b{name}\b", TESTS), f"no test uses storage_core.backend.{name}"


@pytest.mark.parametrize("capability", [c.name for c in Capability])
def test_every_capability_is_documented_and_tested(capability: str) -> None:
    assert f"- `{capability}`:" in REFERENCE, f"docs/reference.md does not describe Capability.{capability}"
    assert re.search(rf"\b{capability}\b", TESTS), f"no test uses Capability.{capability}"


def test_the_primitives_are_found() -> None:
    assert {"_read", "_write", "_write_if", "_delete", "_iter_keys", "_connect", "_describe"} <= set(_primitives())


@pytest.mark.parametrize("primitive", _primitives())
def test_every_primitive_a_bundled_backend_implements_is_in_the_guide(primitive: str) -> None:
    assert f"`{primitive}" in GUIDE, f"docs/writing-a-backend.md does not explain {primitive}"


@pytest.mark.parametrize("topic", ["from_options", "section=", "super().__init__()", "from_url", "_describe()"])
def test_the_guide_covers_what_authors_had_to_read_the_source_for(topic: str) -> None:
    assert topic in GUIDE


def test_the_documents_link_each_other_and_the_example() -> None:
    assert "(reference.md)" in GUIDE
    assert "(writing-a-backend.md)" in REFERENCE
    assert "../examples/storage-memory" in GUIDE
    assert (ROOT / "examples" / "storage-memory" / "pyproject.toml").is_file()
