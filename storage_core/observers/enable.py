"""From ``storage.observers`` to observers attached to a store: names checked, factories called."""

from __future__ import annotations

from collections.abc import Sequence

from storage_core.errors import ConfigError
from storage_core.observers.events import Observer
from storage_core.observers.instrument import attach
from storage_core.observers.specs import FIELD, ObserverSpec
from storage_core.registry import Registry, get_registry
from storage_core.storage import Storage
from storage_core.suggest import did_you_mean

__all__ = ["enable_observers"]


def enable_observers(
    store: Storage, specs: Sequence[ObserverSpec], *, source: str, registry: Registry | None = None
) -> None:
    """Build each observer *specs* name and attach them all to *store*.

    Raises:
        ConfigError: naming *source* and the entry, for a name no installed plugin
            provides (listing those that are) or options its factory refuses.
    """
    registry = registry or get_registry()
    installed = registry.observers
    built: dict[str, Observer] = {}
    for index, spec in enumerate(specs):
        where = f"{FIELD}[{index}]"
        info = installed.get(spec.name)
        if info is None:
            names = ", ".join(sorted(installed)) or "none"
            # The plugin meant to provide it may be one of these.
            broken = registry.broken
            note = (
                f"; broken plugins, not loaded: {', '.join(sorted(broken))} (see `storage backends`)" if broken else ""
            )
            raise ConfigError(
                f"no observer named {spec.name!r} is installed{did_you_mean(spec.name, installed)}; "
                f"installed: {names} (a plugin provides more through the storage_register_observers hook){note}",
                field=where,
                source=source,
            )
        try:
            observer = info.factory(spec.options)
        except ConfigError as exc:
            exc.field = f"{where}.{exc.field.lstrip('.')}" if exc.field else where
            raise exc.with_source(source) from None
        except Exception as exc:
            raise ConfigError(
                f"the observer {spec.name!r} from {info.distribution} could not be built "
                f"({type(exc).__name__}: {exc}); check its options, or fix or reinstall {info.distribution}",
                field=where,
                source=source,
            ) from exc
        label = spec.name if spec.name not in built else f"{spec.name}[{index}]"
        built[label] = observer
    try:
        attach(store, built)
    except TypeError as exc:
        raise ConfigError(f"{exc}; its plugin's factory must return an observer", field=FIELD, source=source) from None
