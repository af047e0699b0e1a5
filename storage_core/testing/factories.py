"""Store factories for the conformance suite: picklable, so child processes can use them.

The process-contention tests start workers with multiprocessing's ``spawn`` context and
hand each one the factory, so a factory must survive ``pickle``: a module-level function,
or an instance of a module-level class such as :class:`ConfigFactory`. A lambda or a
closure defined inside a test will not do.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from storage_core.factory import open_storage
from storage_core.storage import Storage

__all__ = ["ConfigFactory", "StorageFactory", "config_factory"]


class StorageFactory(Protocol):
    """``factory(namespace)`` returns an *initialized* store using that namespace.

    Every store a factory returns must share one backing store (same file, same server),
    so that stores with different namespaces can prove they do not see each other.
    """

    def __call__(self, namespace: str) -> Storage: ...


@dataclass(frozen=True)
class ConfigFactory:
    """Opens stores with :func:`~storage_core.open_storage` from one config.

    ``config`` is what ``open_storage`` accepts, restricted to what pickles: a plain
    mapping (shaped like ``agent.yaml`` or its ``storage`` section), a file path or a URL.
    """

    config: Mapping[str, Any] | str

    def __call__(self, namespace: str) -> Storage:
        return open_storage(self.config, namespace=namespace)


def config_factory(config: Mapping[str, Any] | str | os.PathLike[str]) -> ConfigFactory:
    """A picklable :class:`StorageFactory` opening stores from *config*.

    Mappings are copied to plain dicts (a ``MappingProxyType`` does not pickle) and paths
    to str, so the factory can cross into a spawned process.
    """
    if isinstance(config, Mapping):
        return ConfigFactory(_plain(config))
    return ConfigFactory(os.fspath(config))


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
