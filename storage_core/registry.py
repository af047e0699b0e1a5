"""Finds backends through the ``storage_core`` entry points, lazily and once.

Bundled backends are plugins like any other; the core names them only in
:mod:`storage_core.known_backends`, to say what to install or reinstall. Each plugin is
loaded and checked on its own: a broken one is recorded in :attr:`Registry.broken` with
one :class:`PluginError` naming its distribution and the fix, and breaks only what
selects it. A backend registered by reference (``"module:Class"``) is imported only when
its class is needed.
"""

from __future__ import annotations

import importlib
import inspect
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType, ModuleType
from typing import TYPE_CHECKING

import pluggy

from storage_core import hookspecs
from storage_core.errors import BackendNotFound, PluginError
from storage_core.known_backends import FIRST_PARTY, KNOWN_BACKENDS, known_for_distribution, known_for_scheme
from storage_core.storage import Storage
from storage_core.suggest import did_you_mean

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

__all__ = ["DISABLE_PLUGINS_ENV", "BackendInfo", "BrokenPlugin", "Registry", "available_backends", "get_registry"]

DISABLE_PLUGINS_ENV = "STORAGE_CORE_DISABLE_PLUGINS"
"""Set to 1 to load only the backends this project ships (a kill switch for third parties)."""

_BACKEND_HOOK = "storage_register_backends"
# The public names of the template a backend defines itself; every other one is the template's.
_BACKEND_DEFINED = frozenset({"from_options", "from_url"})
_PRIMITIVES = "_read, _write, _write_if, _delete, _iter_keys"


@dataclass(frozen=True, slots=True)
class BackendInfo:
    """What the registry knows of one installed backend; its class is imported on first use."""

    name: str
    distribution: str
    version: str
    url_schemes: tuple[str, ...]
    target: str
    """Where the class lives, ``"module:Class"``."""
    _resolve: Callable[[], type[Storage]] = field(repr=False, compare=False)

    @property
    def cls(self) -> type[Storage]:
        """The backend class, importing its module the first time.

        Raises:
            PluginError: the module fails to import, or the class breaks the backend contract.
        """
        return self._resolve()


@dataclass(frozen=True, slots=True)
class BrokenPlugin:
    """A plugin that is not loaded, and the error that says what is wrong and what to do."""

    name: str
    distribution: str
    version: str
    error: PluginError


@dataclass(frozen=True, slots=True)
class _Source:
    """Where one plugin comes from, and what to tell a user when it is broken."""

    plugin: str
    distribution: str
    version: str
    module: str

    def error(self, problem: str, fix: str) -> PluginError:
        """One message: which plugin, what is wrong, how its author fixes it, what a user can do now."""
        known = known_for_distribution(self.distribution) if self.distribution in FIRST_PARTY else None
        if known is not None:
            meanwhile = f"this installation of {self.distribution} is broken: reinstall it ({known.how_to_reinstall()})"
        else:
            meanwhile = (
                f"until it is fixed, uninstall it (pip uninstall {self.distribution}) "
                f"or set {DISABLE_PLUGINS_ENV}=1 to skip third-party plugins"
            )
        return PluginError(
            f"the storage plugin {self.plugin!r} from {self.distribution} {self.version} {problem}: {fix}; {meanwhile}"
        )


@dataclass(frozen=True, slots=True)
class _Declared:
    """One ``register(...)`` call, checked."""

    name: str
    url_schemes: tuple[str, ...]
    target: str
    cls: type[Storage] | None  # None until a by-reference backend is imported


class _Collector:
    """The ``register`` callback one plugin's hook receives: each call is checked at once."""

    def __init__(self, source: _Source) -> None:
        self.source = source
        self.backends: list[_Declared] = []

    def __call__(self, backend: object, target: object = None, *, url_schemes: object = ()) -> None:
        if not isinstance(backend, str):
            if target is not None or url_schemes != ():
                raise self.source.error(
                    f"called register({_short(backend)}, ...) with more than the class",
                    "pass only the class (its url_schemes come from the class), or register by reference: "
                    "register(name, 'module:Class', url_schemes=(...))",
                )
            cls = _check_backend_class(backend, self.source)
            self.backends.append(_Declared(cls.name, tuple(cls.url_schemes), _target_of(cls), cls))
            return
        if not backend.isidentifier():
            raise self.source.error(
                f"registered a backend named {backend!r}", "a backend's name is a Python identifier such as 'local'"
            )
        module, _, attribute = target.partition(":") if isinstance(target, str) else ("", "", "")
        if not (module and attribute):
            raise self.source.error(
                f"registered the backend {backend!r} with target {target!r}",
                "by reference, register(name, 'package.module:Class', url_schemes=(...)) names the class",
            )
        if isinstance(url_schemes, str) or not isinstance(url_schemes, Iterable):
            raise self.source.error(
                f"registered the backend {backend!r} with url_schemes={url_schemes!r}",
                "url_schemes is a tuple of str such as ('redis', 'rediss')",
            )
        schemes = tuple(url_schemes)
        if not all(isinstance(s, str) and s for s in schemes):
            raise self.source.error(
                f"registered the backend {backend!r} with url_schemes={schemes!r}",
                "url_schemes is a tuple of non-empty str such as ('redis', 'rediss')",
            )
        self.backends.append(_Declared(backend, schemes, str(target), None))


class _LazyClass:
    """Imports a by-reference backend once, checks it, and remembers the class or the error."""

    def __init__(self, declared: _Declared, source: _Source, on_broken: Callable[[_Source, PluginError], None]) -> None:
        self._declared = declared
        self._source = source
        self._on_broken = on_broken
        self._lock = threading.Lock()
        self._cls = declared.cls
        self._error: PluginError | None = None

    def __call__(self) -> type[Storage]:
        if self._cls is None and self._error is None:
            with self._lock:
                if self._cls is None and self._error is None:
                    try:
                        self._cls = self._import()
                    except PluginError as exc:
                        self._error = exc
                        self._on_broken(self._source, exc)
        if self._error is not None:
            raise PluginError(*self._error.args)
        assert self._cls is not None
        return self._cls

    def _import(self) -> type[Storage]:
        declared, source = self._declared, self._source
        module_name, _, attribute = declared.target.partition(":")
        try:
            obj: object = importlib.import_module(module_name)
            for part in attribute.split("."):
                obj = getattr(obj, part)
        except Exception as exc:
            raise source.error(
                f"cannot import its backend {declared.name!r} from {declared.target} ({type(exc).__name__}: {exc})",
                f"check the target given to register() and that {source.distribution}'s dependencies are installed",
            ) from exc
        cls = _check_backend_class(obj, source)
        if cls.name != declared.name or tuple(cls.url_schemes) != declared.url_schemes:
            raise source.error(
                f"registered {declared.name!r} with url_schemes={declared.url_schemes!r}, but {declared.target} "
                f"has name={cls.name!r} and url_schemes={tuple(cls.url_schemes)!r}",
                "make the register() call say what the class says",
            )
        return cls


class Registry:
    """Backends by name and by URL scheme, and the plugins that are broken; read-only views once loaded."""

    def __init__(self, entry_points: list[EntryPoint] | None = None) -> None:
        self._entry_points = entry_points
        self._lock = threading.Lock()
        self._loaded = False
        self._backends: dict[str, BackendInfo] = {}
        self._broken: dict[str, BrokenPlugin] = {}
        self._backends_view = MappingProxyType(self._backends)
        self._broken_view = MappingProxyType(self._broken)

    def _ensure_loaded(self) -> None:
        if not self._loaded:
            with self._lock:
                if not self._loaded:
                    self._load()
                    self._loaded = True

    @property
    def backends(self) -> Mapping[str, BackendInfo]:
        """Every backend a working plugin registered, by name (loads the plugins on first use)."""
        self._ensure_loaded()
        return self._backends_view

    @property
    def broken(self) -> Mapping[str, BrokenPlugin]:
        """Each broken plugin by its entry-point name, with the error that says what is wrong and what to do."""
        self._ensure_loaded()
        return self._broken_view

    def known_names(self) -> frozenset[str]:
        """Every name a config may hold a section for: registered, broken, or bundled but not installed."""
        self._ensure_loaded()
        return frozenset(self._backends) | frozenset(self._broken) | frozenset(KNOWN_BACKENDS)

    def get(self, name: str) -> BackendInfo:
        """The backend called *name*.

        Raises:
            PluginError: the plugin called *name* is broken.
            BackendNotFound: listing what is installed, and how to install a known one.
        """
        self._ensure_loaded()
        if name in self._backends:
            return self._backends[name]
        if name in self._broken:
            raise PluginError(*self._broken[name].error.args)
        known = KNOWN_BACKENDS.get(name)
        todo = (
            f"install it with: {known.how_to_install()}"
            if known
            else "check the spelling, or install the plugin that provides it"
        )
        suggestion = did_you_mean(name, [*self._backends, *KNOWN_BACKENDS])
        raise BackendNotFound(
            f"no storage backend named {name!r} is installed{suggestion} ({todo}); "
            f"installed: {', '.join(sorted(self._backends)) or 'none'}{self._broken_note()}"
        )

    def for_scheme(self, scheme: str) -> BackendInfo:
        """The backend that declares URL *scheme*.

        Raises:
            PluginError: the bundled plugin for *scheme* is installed but broken.
            BackendNotFound: listing the installed schemes, and how to install a known one.
        """
        self._ensure_loaded()
        for info in self._backends.values():
            if scheme in info.url_schemes:
                return info
        known = known_for_scheme(scheme)
        if known is not None and known.name in self._broken:
            raise PluginError(*self._broken[known.name].error.args)
        installed = sorted(s for info in self._backends.values() for s in info.url_schemes)
        todo = f"install it with: {known.how_to_install()}" if known else "use one of the installed schemes"
        suggestion = did_you_mean(scheme, [*installed, *(s for k in KNOWN_BACKENDS.values() for s in k.url_schemes)])
        raise BackendNotFound(
            f"no installed storage backend handles URLs of scheme {scheme!r}{suggestion} ({todo}); "
            f"installed: {', '.join(installed) or 'none'}{self._broken_note()}"
        )

    def _broken_note(self) -> str:
        if not self._broken:
            return ""
        return f"; broken plugins, not loaded: {', '.join(sorted(self._broken))} (see `storage backends`)"

    def _record_broken(self, source: _Source, error: PluginError, key: str | None = None) -> None:
        broken = BrokenPlugin(key or source.plugin, source.distribution, source.version, error)
        self._broken.setdefault(broken.name, broken)

    # -- loading ------------------------------------------------------------------------

    def _load(self) -> None:
        manager = pluggy.PluginManager(hookspecs.PROJECT)
        manager.add_hookspecs(hookspecs)
        schemes: dict[str, str] = {}  # URL scheme -> backend name
        for source, plugin in self._register_plugins(manager):
            try:
                declared = _call_backend_hook(manager, source, plugin)
                # A plugin's contributions are collected per hook, then judged together here: one
                # that provides nothing at all is the error (a further hook adds its own list).
                if not declared:
                    raise source.error(*_why_nothing_registered(manager, plugin))
                self._claim(declared, source, schemes)
            except PluginError as exc:
                self._record_broken(source, exc)
                manager.unregister(plugin)
        manager.check_pending()  # never fails: a plugin with a hook lacking its spec was set aside

    def _claim(self, declared: list[_Declared], source: _Source, schemes: dict[str, str]) -> None:
        """Add one plugin's backends, all or none, refusing a name or scheme already taken."""
        names: set[str] = set()
        claimed: dict[str, str] = {}
        for backend in declared:
            if backend.name in self._backends or backend.name in names:
                owner = self._backends[backend.name].distribution if backend.name in self._backends else "itself"
                raise source.error(
                    f"registers a backend named {backend.name!r}, which {owner} already registered",
                    "give the backend another name (its class attribute `name`)",
                )
            names.add(backend.name)
            for scheme in backend.url_schemes:
                taken = schemes.get(scheme) or claimed.get(scheme)
                if taken is not None:
                    raise source.error(
                        f"claims URLs of scheme {scheme!r} for the backend {backend.name!r}, which the backend "
                        f"{taken!r} already handles",
                        "choose another scheme (url_schemes)",
                    )
                claimed[scheme] = backend.name
        schemes.update(claimed)
        for backend in declared:
            resolve = _LazyClass(backend, source, self._record_broken)
            info = BackendInfo(
                backend.name, source.distribution, source.version, backend.url_schemes, backend.target, resolve
            )
            self._backends[backend.name] = info

    def _register_plugins(self, manager: pluggy.PluginManager) -> Iterator[tuple[_Source, object]]:
        """Import each entry point's module into *manager*; the broken ones are recorded, not yielded."""
        only_first_party = os.environ.get(DISABLE_PLUGINS_ENV, "").strip().lower() in ("1", "true", "yes")
        entry_points = self._entry_points
        if entry_points is None:
            from importlib import metadata  # noqa: PLC0415 - here only: it is a fifth of import time

            entry_points = list(metadata.entry_points(group=hookspecs.PROJECT))
        sources = [_source_of(ep) for ep in entry_points]
        # Our own plugins first, so a third party that takes one of their names is the one refused.
        order = sorted(range(len(sources)), key=lambda i: sources[i].distribution not in FIRST_PARTY)
        seen: dict[str, _Source] = {}
        for index in order:
            source, ep = sources[index], entry_points[index]
            if only_first_party and source.distribution not in FIRST_PARTY:
                continue
            first = seen.get(source.plugin)
            if first is not None:
                if (first.distribution, first.module) != (source.distribution, source.module):
                    error = source.error(
                        f"has the plugin name {source.plugin!r} of {first.module} from {first.distribution}",
                        "give the entry point in group 'storage_core' another name",
                    )
                    self._record_broken(source, error, key=f"{source.plugin} ({source.distribution})")
                continue  # else: the same distribution seen twice on sys.path
            seen[source.plugin] = source
            try:
                plugin = _import_plugin(manager, ep, source)
            except PluginError as exc:
                self._record_broken(source, exc)
                continue
            yield source, plugin


def _source_of(ep: EntryPoint) -> _Source:
    dist = ep.dist
    name = dist.name.lower().replace("_", "-").replace(".", "-") if dist is not None else "an unknown distribution"
    return _Source(ep.name, name, dist.version if dist is not None else "", ep.value)


def _import_plugin(manager: pluggy.PluginManager, ep: EntryPoint, source: _Source) -> object:
    """Load and register one plugin module, refusing a hook that has no specification."""
    try:
        plugin = ep.load()
    except Exception as exc:
        raise source.error(
            f"failed to import {source.module} ({type(exc).__name__}: {exc})",
            "fix the import error (the traceback is on this error's __cause__)",
        ) from exc
    try:
        manager.register(plugin, name=source.plugin)
    except pluggy.PluginValidationError as exc:
        detail = " ".join(str(exc).split())
        raise source.error(
            f"is invalid ({detail})", "see storage_core.hookspecs for the hooks and their arguments"
        ) from None
    except ValueError:  # pluggy: this module is already registered under another name
        raise source.error(
            f"points at {source.module}, which the plugin {manager.get_name(plugin)!r} already registered",
            "advertise each module once in the entry-point group 'storage_core'",
        ) from None
    specs = _spec_names(manager)
    for caller in manager.get_hookcallers(plugin) or []:
        if not caller.has_spec() and any(not impl.optionalhook for impl in caller.get_hookimpls()):
            manager.unregister(plugin)
            raise source.error(
                f"implements {caller.name}(), which is not a storage-core hook{did_you_mean(caller.name, specs)}",
                "rename it to one of the hooks in storage_core.hookspecs: " + ", ".join(specs),
            )
    return plugin


def _spec_names(manager: pluggy.PluginManager) -> list[str]:
    return sorted(
        name
        for name, caller in vars(manager.hook).items()
        if isinstance(caller, pluggy.HookCaller) and caller.has_spec()
    )


def _call_backend_hook(manager: pluggy.PluginManager, source: _Source, plugin: object) -> list[_Declared]:
    """Call one plugin's backend hook on its own, so what it registers (or not) is its own."""
    collector = _Collector(source)
    others = [p for p in manager.get_plugins() if p is not plugin]
    caller = manager.subset_hook_caller(_BACKEND_HOOK, remove_plugins=others)
    try:
        caller(register=collector)
    except PluginError:
        raise
    except Exception as exc:
        raise source.error(
            f"failed in its {_BACKEND_HOOK} hook ({type(exc).__name__}: {exc})",
            "fix the hook (the traceback is on this error's __cause__)",
        ) from exc
    return collector.backends


def _why_nothing_registered(manager: pluggy.PluginManager, plugin: object) -> tuple[str, str]:
    """Tell apart the ways a plugin ends up registering nothing: each has its own fix."""
    if any(caller.name == _BACKEND_HOOK for caller in manager.get_hookcallers(plugin) or []):
        return (
            f"registered no backend: its {_BACKEND_HOOK} hook ran but never called register()",
            "call register(BackendClass) (or register(name, 'module:Class', url_schemes=...)) in it",
        )
    functions = {n for n, v in inspect.getmembers(plugin, callable) if n.startswith("storage_")}
    specs = _spec_names(manager)
    unmarked = sorted(functions & set(specs))
    if unmarked:
        return (
            f"defines {unmarked[0]}() without the @hookimpl marker, so it is never called",
            "decorate it with @storage_core.hookimpl (from storage_core import hookimpl)",
        )
    for name in sorted(functions):
        suggestion = did_you_mean(name, specs)
        if suggestion:
            return (
                f"defines {name}(), which is not a storage-core hook{suggestion}, and registered no backend",
                "rename it, and decorate it with @storage_core.hookimpl",
            )
    where = plugin.__file__ if isinstance(plugin, ModuleType) else plugin
    return (
        f"has no {_BACKEND_HOOK} hook ({where})",
        "add one, decorated with @storage_core.hookimpl, that calls register(BackendClass)",
    )


def _template_methods() -> frozenset[str]:
    """The public methods and properties of the template, which check before any backend sees the call."""
    names = set()
    for name in dir(Storage):
        value = inspect.getattr_static(Storage, name)
        if not name.startswith("_") and (callable(value) or isinstance(value, (property, classmethod, staticmethod))):
            names.add(name)
    return frozenset(names - _BACKEND_DEFINED)


def _check_backend_class(obj: object, source: _Source) -> type[Storage]:
    """Refuse what cannot work as a backend, before any config selects it."""
    if isinstance(obj, Storage):
        kind = type(obj).__qualname__
        raise source.error(
            f"registered an instance of {kind}, not the class", f"pass the class itself: register({kind})"
        )
    if not (inspect.isclass(obj) and issubclass(obj, Storage)):
        raise source.error(
            f"registered {_short(obj)}, which is not a Storage subclass",
            "register a class that subclasses storage_core.Storage",
        )
    cls: type[Storage] = obj
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name.isidentifier():
        raise source.error(
            f"registered {cls.__qualname__}, whose class attribute `name` is {name!r}",
            "set `name` to a Python identifier such as 'local': the word used in agent.yaml",
        )
    if inspect.isabstract(cls):
        missing = ", ".join(sorted(cls.__abstractmethods__))
        raise source.error(f"registered the backend {name!r}, which does not implement {missing}", "implement them")
    schemes = cls.url_schemes
    if not isinstance(schemes, tuple) or not all(isinstance(s, str) and s for s in schemes):
        raise source.error(
            f"registered the backend {name!r} with url_schemes={schemes!r}",
            "url_schemes is a tuple of non-empty str such as ('redis', 'rediss')",
        )
    overridden = sorted(
        method
        for method in _template_methods()
        if inspect.getattr_static(cls, method) is not inspect.getattr_static(Storage, method)
    )
    if overridden:
        raise source.error(
            f"registered the backend {name!r}, which overrides {', '.join(overridden)} of the Storage template "
            "(the public methods check keys and values before any backend sees them)",
            f"remove the override and implement the protected primitives ({_PRIMITIVES}, ...) instead",
        )
    return cls


def _target_of(cls: type[Storage]) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _short(obj: object) -> str:
    text = repr(obj)
    return text if len(text) <= 80 else f"{text[:77]}..."


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
    """Each installed backend's name mapped to its distribution, version, URL schemes and (lazy) class."""
    return get_registry().backends
