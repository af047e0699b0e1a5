"""Fixtures every test shares: no test may touch the user's home or a stray agent.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest


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
