"""The conformance kit's asserts explain themselves: pytest rewrites every module of the kit.

Each check runs in a fresh pytest process (pytester), where nothing has imported the kit
yet, exactly as a backend author's test run starts.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import storage_core.testing

pytest_plugins = ["pytester"]

_KIT = Path(storage_core.testing.__file__).parent


def test_every_module_of_the_kit_is_rewritten(pytester: pytest.Pytester) -> None:
    """Registering an imported module that pytest did not rewrite warns: no warning, none missed."""
    names = sorted(f"storage_core.testing.{path.stem}" for path in _KIT.glob("*.py") if path.stem != "__init__")
    assert "storage_core.testing._values" in names  # the glob found the kit
    pytester.makepyfile(
        test_rewritten=f"""
import importlib

import pytest

import storage_core.testing

NAMES = {names!r}


def test_rewritten():
    for name in NAMES:
        importlib.import_module(name)
    pytest.register_assert_rewrite(*NAMES)
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-W", "error::pytest.PytestAssertRewriteWarning")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()


def test_a_failing_contract_test_shows_the_detailed_comparison(pytester: pytest.Pytester, tmp_path: Path) -> None:
    """End to end: a backend that mangles values fails with pytest's diff, not a bare AssertionError."""
    pytester.makepyfile(
        test_mangled=f"""
from dataclasses import dataclass

from storage_core.testing import StorageContract
from storage_local.backend import LocalStorage

import pytest


class Mangles(LocalStorage):
    def _read(self, key):
        return None if super()._read(key) is None else b'"mangled"'


@dataclass(frozen=True)
class Factory:
    path: str

    def __call__(self, namespace):
        store = Mangles.from_options({{"path": self.path}}).configure(namespace=namespace)
        store.initialize()
        return store


class TestMangled(StorageContract):
    @pytest.fixture
    def storage_factory(self):
        return Factory({str(tmp_path / "state.db")!r})
"""
    )
    selection = "test_corrupt_stored_value_can_be_overwritten_and_deleted"
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-k", selection)
    result.assert_outcomes(failed=1)
    # Without rewriting, pytest shows the source line and a bare "AssertionError".
    result.stdout.fnmatch_lines(["E * AssertionError: assert 'mangled' == 'fixed'"])
