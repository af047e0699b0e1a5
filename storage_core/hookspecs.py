"""The hooks a storage-core plugin can implement; only specifications live here."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pluggy

from storage_core.observers.events import Observer
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


ObserverFactory = Callable[[Mapping[str, Any]], Observer]
"""Builds an observer from the options of its ``storage.observers`` entry (without ``name``)."""


@_hookspec
def storage_register_observers(register: Callable[[str, ObserverFactory], None]) -> None:
    """Register the observers this plugin provides.

    Call ``register(name, factory)`` once per observer. Nothing is built until a
    config names it in ``storage.observers``: then ``factory(options)`` returns an
    object with ``on_operation(event)`` and optionally ``on_lifecycle(event)``, and
    raises :class:`~storage_core.errors.ConfigError` for options it refuses. A plugin
    may register observers and no backend; a duplicate name is a
    :class:`~storage_core.errors.PluginError`.
    """
