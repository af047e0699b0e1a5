"""The ``storage.observers`` field: which observers a store gets, and their options.

Parsed with the rest of the config, without loading any plugin: whether a name is
installed is checked when a store is opened (see :mod:`storage_core.observers.enable`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from storage_core.errors import ConfigError

__all__ = ["FIELD", "ObserverSpec", "parse_observers"]

FIELD = "storage.observers"
_FORMS = "a list of observer names (such as 'log') or {name: ..., <options>} mappings"


@dataclass(frozen=True, slots=True)
class ObserverSpec:
    """One entry of ``storage.observers``: the observer's name and its options (without ``name``)."""

    name: str
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


def parse_observers(value: object) -> tuple[ObserverSpec, ...]:
    """The entries of ``storage.observers`` (None or absent: none).

    Raises:
        ConfigError: naming the entry, for anything but a name or a mapping with a ``name``.
    """
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ConfigError(f"expected {_FORMS}, got {type(value).__name__}", field=FIELD)
    return tuple(_entry(entry, f"{FIELD}[{index}]") for index, entry in enumerate(value))


def _entry(entry: object, where: str) -> ObserverSpec:
    if isinstance(entry, str):
        name: object = entry
        options: dict[Any, Any] = {}
    elif isinstance(entry, Mapping):
        if "name" not in entry:
            hint = ""
            if len(entry) == 1:
                (only,) = entry
                hint = f"; to give {only!r} options, write {{name: {only}, <option>: ...}}"
            raise ConfigError(f"expected a mapping with a 'name' field{hint}", field=where)
        name = entry["name"]
        options = {key: option for key, option in entry.items() if key != "name"}
        if not all(isinstance(key, str) for key in options):
            raise ConfigError("expected option names to be strings", field=where)
    else:
        raise ConfigError(f"expected an observer name or a mapping, got {type(entry).__name__}", field=where)
    if not isinstance(name, str) or not name:
        raise ConfigError(f"expected an observer name such as 'log', got {name!r:.80}", field=f"{where}.name")
    return ObserverSpec(name, MappingProxyType(options))
