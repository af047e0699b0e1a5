"""The ``storage`` fixture for agent authors' test suites (pytest entry point ``pytest11``).

Each test that asks for ``storage`` gets a fresh, isolated, initialized store: by default
the local backend in the test's ``tmp_path``; with ``--storage-url URL`` (or the
``STORAGE_TEST_URL`` environment variable) the store at that URL, in a namespace of its
own that is emptied after the test, so one suite runs unchanged on Redis or a plugin.

Loaded into every pytest run where storage-core is installed, so it does nothing until a
test uses the fixture: no store is opened and no backend is imported before that.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage_core.factory import open_storage
from storage_core.redact import redact_url
from storage_core.storage import Storage

__all__ = ["URL_ENV", "storage"]

URL_ENV = "STORAGE_TEST_URL"
"""The environment variable that, like ``--storage-url``, points every test's store elsewhere."""
_NAMESPACE_PREFIX = "pytest-"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("storage-core").addoption(
        "--storage-url",
        dest="storage_url",
        default=None,
        metavar="URL",
        help=f"run the `storage` fixture on this store (a URL or config file) instead of a local one "
        f"in tmp_path; each test gets a fresh namespace, emptied afterwards (env: {URL_ENV})",
    )


def _url(config: pytest.Config) -> str | None:
    option: str | None = config.getoption("storage_url")
    return option or os.environ.get(URL_ENV) or None


def pytest_report_header(config: pytest.Config) -> str | None:
    url = _url(config)
    if url is None:
        return None
    return f"storage fixture: {redact_url(url)} (a fresh namespace per test)"


@pytest.fixture
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    """A fresh, initialized store for this test alone, closed (and emptied) after it."""
    url = _url(request.config)
    if url is None:
        with open_storage({"backend": "local", "local": {"path": str(tmp_path / "storage.db")}}) as store:
            yield store
        return
    store = open_storage(url, namespace=f"{_NAMESPACE_PREFIX}{uuid.uuid4().hex[:16]}")
    try:
        yield store
    finally:
        _empty(store)


def _empty(store: Storage) -> None:
    """Remove the test's keys (its namespace's only), then close; the test's own outcome stands."""
    try:
        with contextlib.suppress(Exception):
            store.initialize()  # the test may have closed it
            for key in list(store.keys()):
                store.delete(key)
    finally:
        store.close()
