"""Observers: metrics, tracing and audit for a store, without touching any backend.

Enabled per store with ``storage.observers`` in the config (a list of names, or
``{name: ..., <options>}`` mappings); a plugin provides them through the
``storage_register_observers`` hook. Bundled: ``log`` and ``otel``.
"""

from storage_core.observers.events import LifecycleEvent, LifecycleKind, Observer, OperationEvent
from storage_core.observers.instrument import attach, is_observed

__all__ = ["LifecycleEvent", "LifecycleKind", "Observer", "OperationEvent", "attach", "is_observed"]
