"""Finds backends through the ``storage_core`` entry points, lazily and once.

Bundled backends are plugins like any other: nothing here names one, except to tell a
user which package to install for a backend that is known but missing.
"""

from __future__ import annotations

import inspect
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType, ModuleType
from typing import TYPE_CHECKING

import pluggy

from storage_core import hookspecs
from storage_core.errors import BackendNotFound, PluginError
from storage_core.storage import Storage

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

__all__ = ["DISABLE_PLUGINS_ENV", "BackendInfo", "ObserverInfo", "Registry", "available_backends", "get_registry"]

DISABLE_PLUGINS_ENV = "STORAGE_CORE_DISABLE_PLUGINS"
"""Set to 1 to load only the backends this project ships (a kill switch for third parties)."""

FIRST_PARTY = frozenset({"storage-core", "storage-redis"})

# Backends we know of that live in other distributions: how to get them, and their schemes.
INSTALL_HINTS: Mapping[str, str] = MappingProxyType({"redis": "pip install 'storage-core[redis]'"})
_KNOWN_SCHEMES: Mapping[str, str] = MappingProxyType(
    dict.fromkeys(("redis", "rediss", "unix", "redis+sentinel", "redis+cluster"), "redis")
)


@dataclass(frozen=True, slots=True)
class BackendInfo:
    """What the registry knows of one installed backend."""

    name: str
    cls: type[Storage]
    distribution: str
    version: str
    url_schemes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ObserverInfo:
    """What the registry knows of one installed observer (built only when a config enables it)."""

    name: str
    factory: hookspecs.ObserverFactory
    plugin: str
    distribution: str
    version: str


def _canonical(dist_name: str) -> str:
    return dist_name.lower().replace("_", "-").replace(".", "-")


class Registry:
    """Backends by name and by URL scheme; a read-only view once loaded."""

    def __init__(self, entry_points: list[EntryPoint] | None = None) -> None:
        self._entry_points = entry_points
        self._lock = threading.Lock()
        self._backends: Mapping[str, BackendInfo] | None = None
        self._observers: Mapping[str, ObserverInfo] = MappingProxyType({})

    @property
    def backends(self) -> Mapping[str, BackendInfo]:
        """Every installed backend by name (loads the plugins on first use)."""
        if self._backends is None:
            with self._lock:
                if self._backends is None:
                    self._backends = MappingProxyType(self._load())
        return self._backends

    @property
    def observers(self) -> Mapping[str, ObserverInfo]:
        """Every installed observer by name (loads the plugins on first use)."""
        self.backends  # noqa: B018 - loads both tables at once
        return self._observers

    def get(self, name: str) -> BackendInfo:
        """The backend called *name*.

        Raises:
            BackendNotFound: listing what is installed, and how to install a known one.
        """
        try:
            return self.backends[name]
        except KeyError:
            pass
        installed = ", ".join(sorted(self.backends)) or "none"
        hint = INSTALL_HINTS.get(name)
        todo = f"install it with: {hint}" if hint else "check the spelling, or install the plugin that provides it"
        raise BackendNotFound(f"no storage backend named {name!r} is installed ({todo}); installed: {installed}")

    def for_scheme(self, scheme: str) -> BackendInfo:
        """The backend that declares URL *scheme*."""
        for info in self.backends.values():
            if scheme in info.url_schemes:
                return info
        known = sorted(s for info in self.backends.values() for s in info.url_schemes)
        hint = INSTALL_HINTS.get(_KNOWN_SCHEMES.get(scheme, ""))
        todo = f"install it with: {hint}" if hint else "use one of the installed schemes"
        raise BackendNotFound(
            f"no installed storage backend handles URLs of scheme {scheme!r} ({todo}); "
            f"installed: {', '.join(known) or 'none'}"
        )

    def _load(self) -> dict[str, BackendInfo]:
        manager = pluggy.PluginManager(hookspecs.PROJECT)
        manager.add_hookspecs(hookspecs)
        sources = self._register_plugins(manager)
        try:
            manager.check_pending()
        except pluggy.PluginValidationError as exc:
            raise PluginError(
                f"the storage plugin {manager.get_name(exc.plugin)!r} implements a hook storage-core does not have: "
                f"{exc}; fix or uninstall it, or set {DISABLE_PLUGINS_ENV}=1 to skip third-party plugins"
            ) from None
        observers = _collect_observers(manager, sources)
        self._observers = MappingProxyType(observers)
        return _collect_backends(manager, sources, {info.plugin for info in observers.values()})

    def _register_plugins(self, manager: pluggy.PluginManager) -> dict[str, tuple[str, str]]:
        """Load each entry point's module into *manager*; map plugin name -> (distribution, version)."""
        only_first_party = os.environ.get(DISABLE_PLUGINS_ENV, "").strip().lower() in ("1", "true", "yes")
        entry_points = self._entry_points
        if entry_points is None:
            from importlib import metadata  # noqa: PLC0415 - here only: it is a fifth of import time

            entry_points = list(metadata.entry_points(group=hookspecs.PROJECT))
        sources: dict[str, tuple[str, str]] = {}
        targets: dict[str, tuple[str, str]] = {}  # plugin name -> (distribution, module)
        for ep in entry_points:
            dist = ep.dist
            dist_name = _canonical(dist.name) if dist is not None else "unknown"
            if only_first_party and dist_name not in FIRST_PARTY:
                continue
            if ep.name in targets:
                if targets[ep.name] == (dist_name, ep.value):
                    continue  # the same distribution seen twice on sys.path
                first_dist, first_value = targets[ep.name]
                raise PluginError(
                    f"two storage plugins are named {ep.name!r}: {first_value} from {first_dist} and "
                    f"{ep.value} from {dist_name}; uninstall one"
                )
            targets[ep.name] = (dist_name, ep.value)
            try:
                plugin = ep.load()
            except Exception as exc:
                raise PluginError(
                    f"the storage plugin {ep.name!r} from {dist_name} failed to import: {exc!r}; "
                    f"fix or uninstall it, or set {DISABLE_PLUGINS_ENV}=1 to skip third-party plugins"
                ) from exc
            try:
                manager.register(plugin, name=ep.name)
            except pluggy.PluginValidationError as exc:
                raise PluginError(f"the storage plugin {ep.name!r} from {dist_name} is invalid: {exc}") from None
            except ValueError:  # pluggy: this module is already registered under another name
                raise PluginError(
                    f"the storage plugin {ep.name!r} from {dist_name} points at {ep.value}, which the plugin "
                    f"{manager.get_name(plugin)!r} already registered; each module may be advertised once"
                ) from None
            sources[ep.name] = (dist_name, dist.version if dist is not None else "unknown")
        return sources


def _collect_backends(
    manager: pluggy.PluginManager, sources: dict[str, tuple[str, str]], observing: set[str]
) -> dict[str, BackendInfo]:
    """Call each plugin's hook on its own, so a plugin that registers nothing is named.

    A plugin in *observing* (it registered observers) may register no backend.
    """
    backends: dict[str, BackendInfo] = {}
    schemes: dict[str, str] = {}  # URL scheme -> backend name
    for plugin_name, (dist_name, version) in sources.items():
        plugin = manager.get_plugin(plugin_name)
        others = [p for p in manager.get_plugins() if p is not plugin]
        caller = manager.subset_hook_caller("storage_register_backends", remove_plugins=others)
        found: list[type[Storage]] = []
        caller(register=found.append)
        if not found and plugin_name not in observing:
            where = plugin.__file__ if isinstance(plugin, ModuleType) else plugin
            raise PluginError(
                f"the storage plugin {plugin_name!r} from {dist_name} ({where}) registered no backend and no "
                "observer: its storage_register_backends hook must call register(BackendClass) (a plugin of "
                "observers only: its storage_register_observers hook must call register(name, factory))"
            )
        for cls in found:
            _check_backend_class(cls, plugin_name)
            if cls.name in backends:
                raise PluginError(
                    f"two plugins register a storage backend named {cls.name!r}: "
                    f"{backends[cls.name].distribution} and {dist_name}; uninstall one"
                )
            for scheme in cls.url_schemes:
                if scheme in schemes:
                    raise PluginError(
                        f"the storage backends {schemes[scheme]!r} and {cls.name!r} ({dist_name}) both claim "
                        f"URLs of scheme {scheme!r}; uninstall one"
                    )
                schemes[scheme] = cls.name
            backends[cls.name] = BackendInfo(cls.name, cls, dist_name, version, tuple(cls.url_schemes))
    return backends


def _collect_observers(manager: pluggy.PluginManager, sources: dict[str, tuple[str, str]]) -> dict[str, ObserverInfo]:
    """Each plugin's observers by name, collected per plugin so a bad one is named."""
    observers: dict[str, ObserverInfo] = {}
    for plugin_name, (dist_name, version) in sources.items():
        plugin = manager.get_plugin(plugin_name)
        others = [p for p in manager.get_plugins() if p is not plugin]
        caller = manager.subset_hook_caller("storage_register_observers", remove_plugins=others)
        for name, factory in _registrations(caller):
            if not isinstance(name, str) or not name.isidentifier():
                raise PluginError(
                    f"the storage plugin {plugin_name!r} registered an observer named {name!r}; "
                    "an observer's name is a word such as 'log'"
                )
            if not callable(factory):
                raise PluginError(
                    f"the storage plugin {plugin_name!r} registered the observer {name!r} with {factory!r:.80}, "
                    "which is not callable: register(name, factory) takes a factory(options) -> observer"
                )
            if name in observers:
                raise PluginError(
                    f"two plugins register a storage observer named {name!r}: "
                    f"{observers[name].distribution} and {dist_name}; uninstall one"
                )
            observers[name] = ObserverInfo(name, factory, plugin_name, dist_name, version)
    return observers


def _registrations(caller: pluggy.HookCaller) -> list[tuple[object, object]]:
    """The ``(name, factory)`` pairs one plugin's hook passes to ``register``, unchecked."""
    found: list[tuple[object, object]] = []

    def register(name: object, factory: object) -> None:
        found.append((name, factory))

    caller(register=register)
    return found


def _check_backend_class(cls: object, plugin_name: str) -> None:
    if not (inspect.isclass(cls) and issubclass(cls, Storage)):
        raise PluginError(f"the storage plugin {plugin_name!r} registered {cls!r}, which is not a Storage subclass")
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name.isidentifier():
        raise PluginError(
            f"the backend {cls.__qualname__} from plugin {plugin_name!r} needs a class attribute "
            f"`name`, a word such as 'local', got {name!r}"
        )
    if inspect.isabstract(cls):
        missing = ", ".join(sorted(cls.__abstractmethods__))
        raise PluginError(f"the backend {name!r} from plugin {plugin_name!r} does not implement: {missing}")
    schemes = cls.url_schemes
    if not isinstance(schemes, tuple) or not all(isinstance(s, str) for s in schemes):
        raise PluginError(f"the backend {name!r} from plugin {plugin_name!r}: url_schemes must be a tuple of str")


_registry: Registry | None = None
_registry_lock = threading.Lock()


def get_registry() -> Registry:
    """The process-wide registry, created on first use (never at import)."""
    global _registry
    if _registry is None:
        with _registry_lock:
            if _registry is None:
                _registry = Registry()
    return _registry


def available_backends() -> Mapping[str, BackendInfo]:
    """Each installed backend's name mapped to its class, distribution, version and URL schemes."""
    return get_registry().backends
