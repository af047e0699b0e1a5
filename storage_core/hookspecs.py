"""The hooks a storage-core plugin can implement; only specifications live here."""

from __future__ import annotations

from collections.abc import Callable

import pluggy

from storage_core.storage import Storage

PROJECT = "storage_core"
"""One name for the hook markers, the ``PluginManager`` and the entry-point group."""

_hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@_hookspec
def storage_register_backends(register: Callable[[type[Storage]], None]) -> None:
    """Register the backends this plugin provides.

    Call ``register(BackendClass)`` once per backend. The class subclasses
    :class:`~storage_core.Storage`, has a ``name`` (the word used in ``agent.yaml``) and
    a ``from_options`` classmethod. The core validates it; a duplicate name, a bad
    class or a plugin that registers nothing is a :class:`~storage_core.errors.PluginError`.
    """
