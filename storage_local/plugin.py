"""Registers the local backend through the ``storage_core`` entry point, like any plugin."""

from __future__ import annotations

from collections.abc import Callable

from storage_core import Storage, hookimpl
from storage_local.backend import LocalStorage


@hookimpl
def storage_register_backends(register: Callable[[type[Storage]], None]) -> None:
    """Provide the ``local`` backend."""
    register(LocalStorage)
