"""Registers the local backend through the ``storage_core`` entry point, like any plugin."""

from __future__ import annotations

from collections.abc import Callable

from storage_core import hookimpl


@hookimpl
def storage_register_backends(register: Callable[..., None]) -> None:
    """Provide the ``local`` backend, by reference: SQLite is imported only when it is used."""
    register("local", "storage_local.backend:LocalStorage", url_schemes=("local",))
