"""The ``storage`` fixture, run by pytester as an agent author's suite would run it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from storage_core import open_storage
from storage_core.pytest_plugin import URL_ENV

pytest_plugins = ["pytester"]

TWO_TESTS = """
    import pytest
    from storage_core import StorageError

    opened = []

    def test_first(storage):
        opened.append(storage)
        assert list(storage.keys()) == []
        storage.write("k", {"from": "first"})
        assert storage.read("k") == {"from": "first"}

    def test_second(storage):
        assert not storage.exists("k"), "each test has a store of its own"
        with pytest.raises(StorageError, match="closed"):
            opened[0].read("k")
"""


def test_by_default_each_test_gets_a_local_store_in_its_tmp_path(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(URL_ENV, raising=False)
    pytester.makepyfile(
        TWO_TESTS
        + """
    def test_local(storage, tmp_path):
        assert storage.name == "local"
        assert str(tmp_path) in repr(storage)
    """
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=3)


@pytest.mark.parametrize("how", ["option", "environment"])
def test_a_url_gives_each_test_a_fresh_namespace_emptied_afterwards(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, how: str
) -> None:
    shared = tmp_path / "shared.db"
    url = f"local://{shared}"
    with open_storage(url) as outside:
        outside.write("kept", "not the tests' key")
    pytester.makepyfile(
        TWO_TESTS
        + """
    def test_namespaced(storage):
        assert storage.namespace.startswith("pytest-")
        storage.write("left-behind", 1)
        storage.close()  # the fixture empties it all the same
    """
    )
    args = ["-p", "no:cacheprovider"]
    if how == "option":
        monkeypatch.delenv(URL_ENV, raising=False)
        args.append(f"--storage-url={url}")
    else:
        monkeypatch.setenv(URL_ENV, url)
    result = pytester.runpytest(*args)
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines([f"storage fixture: {url} (a fresh namespace per test)"])
    with open_storage(url) as outside:
        assert list(outside.keys()) == ["kept"], "every test's keys are gone; nobody else's"


def test_the_header_hides_a_password(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(URL_ENV, "redis://:hunter2@127.0.0.1:1/0")
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["storage fixture: redis://:***@127.0.0.1:1/0 *"])
    assert "hunter2" not in result.stdout.str()


def test_a_run_that_does_not_use_it_imports_no_backend(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import sys

        def test_nothing_loaded():
            loaded = {name for name in sys.modules if name.startswith(("redis", "storage_local", "storage_redis"))}
            assert not loaded, loaded
            assert "storage_core.testing" not in sys.modules
            assert "storage_core.pytest_plugin" in sys.modules, "the plugin is loaded, and idle"
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:pytester")
    result.assert_outcomes(passed=1)


def test_a_suite_may_define_its_own_storage_fixture(pytester: pytest.Pytester) -> None:
    pytester.makeconftest("import pytest\n\n@pytest.fixture\ndef storage():\n    return 'mine'\n")
    pytester.makepyfile("def test_mine(storage):\n    assert storage == 'mine'\n")
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_the_plugin_is_registered_as_a_pytest11_entry_point() -> None:
    from importlib.metadata import entry_points

    found = {ep.name: ep.value for ep in entry_points(group="pytest11")}
    assert found.get("storage_core") == "storage_core.pytest_plugin"
    assert "storage_core.pytest_plugin" in sys.modules
