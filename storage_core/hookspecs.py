"""The hooks a storage-core plugin can implement; only specifications live here."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

import pluggy

from storage_core.storage import Storage

PROJECT = "storage_core"
"""One name for the hook markers, the ``PluginManager`` and the entry-point group."""

_hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class RegisterBackend(Protocol):
    """The ``register`` callback :func:`storage_register_backends` receives."""

    def __call__(
        self, backend: type[Storage] | str, target: str | None = None, *, url_schemes: Iterable[str] = ()
    ) -> None: ...


@_hookspec
def storage_register_backends(register: RegisterBackend) -> None:
    """Register the backends this plugin provides, once per backend, in one of two forms.

    ``register(BackendClass)``: the class itself. It subclasses
    :class:`~storage_core.Storage`, has a class attribute ``name`` (a Python identifier:
    the word used in ``agent.yaml``), optionally ``url_schemes`` (a tuple of str), a
    ``from_options`` classmethod and every abstract primitive, and overrides no public
    method of ``Storage`` (``from_options`` and ``from_url`` excepted). Checked at once.

    ``register(name, "package.module:Class", url_schemes=(...))``: by reference, so the
    module (and what it imports, such as a client library) is imported only when a config
    or URL selects the backend, or when ``storage backends`` lists it. *name* and
    *url_schemes* must equal the class's ``name`` and ``url_schemes``; the class gets the
    same checks when it is imported. Prefer this form when the backend's module is slow
    to import: opening another backend then never pays for it.

    Each mistake (nothing registered, an instance instead of a class, a name or URL scheme
    another plugin already has, a broken class) is one
    :class:`~storage_core.errors.PluginError` naming the plugin's distribution and the
    fix. It disables this plugin only: every other backend keeps working, and
    ``storage backends`` lists this one as broken.
    """
