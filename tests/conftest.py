"""Fixtures every test shares: no test may touch the user's home or a stray agent.yaml."""

from __future__ import annotations

import os
import sysconfig
from pathlib import Path

import pytest

INSTALLED_ENV = "STORAGE_TEST_INSTALLED"
"""Set to 1 by .ci/test-installed: the run must import our packages from site-packages."""


def pytest_configure(config: pytest.Config) -> None:
    """Refuse an installed run that would test the source tree instead of the wheels."""
    if os.environ.get(INSTALLED_ENV) != "1":
        return
    import storage_core
    import storage_local
    import storage_redis

    site = Path(sysconfig.get_paths()["purelib"]).resolve()
    for module in (storage_core, storage_local, storage_redis):
        where = Path(str(module.__file__)).resolve()
        if not where.is_relative_to(site):
            raise pytest.UsageError(
                f"{INSTALLED_ENV}=1, but {module.__name__} is imported from {where}, not from {site}: "
                "run from a directory where the source tree is not importable, with the wheels installed"
            )


@pytest.fixture(autouse=True)
def _isolated_state(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the embedded default's state directory at a temporary one."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("xdg-state")))
    monkeypatch.delenv("STORAGE_CONFIG", raising=False)
    monkeypatch.delenv("STORAGE_CORE_DISABLE_PLUGINS", raising=False)


@pytest.fixture
def in_tmp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run the test from an empty directory (so ./agent.yaml is whatever the test writes)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path
