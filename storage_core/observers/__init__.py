"""Observers: metrics, tracing and audit for a store, without touching any backend.

Enabled per store with ``storage.observers`` in the config (a list of names, or
``{name: ..., <options>}`` mappings); a plugin provides them through the
``storage_register_observers`` hook. Bundled: ``log`` and ``otel``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from storage_core.observers.events import LifecycleEvent, LifecycleKind, Observer, OperationEvent

if TYPE_CHECKING:
    from storage_core.observers.instrument import attach, is_observed

__all__ = ["LifecycleEvent", "LifecycleKind", "Observer", "OperationEvent", "attach", "is_observed"]

# Loaded on first use: the config reads storage.observers through this package, and a
# store without observers should not import the instrumentation (nor logging) for it.
_LAZY = {"attach": "instrument", "is_observed": "instrument"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
