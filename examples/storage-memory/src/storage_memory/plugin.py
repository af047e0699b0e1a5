"""The module the ``storage_core`` entry point names: it registers the backend, nothing else."""

from __future__ import annotations

from storage_core import hookimpl
from storage_core.backend import RegisterBackend
from storage_memory.backend import MemoryStorage


@hookimpl
def storage_register_backends(register: RegisterBackend) -> None:
    """Provide the ``memory`` backend."""
    register(MemoryStorage)
