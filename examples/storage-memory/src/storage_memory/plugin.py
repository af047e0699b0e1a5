"""The module the ``storage_core`` entry point names: it registers the backend, nothing else."""

from __future__ import annotations

from collections.abc import Callable

from storage_core import Storage, hookimpl
from storage_memory.backend import MemoryStorage


@hookimpl
def storage_register_backends(register: Callable[[type[Storage]], None]) -> None:
    """Provide the ``memory`` backend."""
    register(MemoryStorage)
