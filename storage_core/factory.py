"""``open_storage``: from a config file, a mapping or a URL to an initialized store."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from storage_core.config import StorageConfig, load_config
from storage_core.consistency import Consistency
from storage_core.errors import ConfigError
from storage_core.redact import redact_url
from storage_core.registry import get_registry
from storage_core.storage import Storage

__all__ = ["is_url", "open_storage"]


def is_url(source: object) -> bool:
    """Whether *source* is a store URL (``scheme://...``) rather than a config file path."""
    return isinstance(source, str) and "://" in source


def open_storage(
    source: str | os.PathLike[str] | Mapping[str, Any] | StorageConfig | None = None,
    *,
    namespace: str | None = None,
    consistency: Consistency | str | None = None,
) -> Storage:
    """Build the configured backend, initialize it and return it (use it in ``with``).

    *source* is a config file path, a mapping, a :class:`StorageConfig`, a URL such as
    ``redis://host:6379/0`` or ``local:///var/lib/agent/state.db``, or None for
    ``./agent.yaml`` if present, else the embedded default. *namespace* and
    *consistency* override the config.

    Raises:
        ConfigError, BackendNotFound, ConnectionFailed, AuthenticationFailed
    """
    if is_url(source):
        assert isinstance(source, str)
        scheme = source.partition("://")[0].lower()
        cls = get_registry().for_scheme(scheme).cls
        try:
            store: Storage = cls.from_url(source)
        except ConfigError as exc:
            raise exc.with_source(redact_url(source)) from None
        except ValueError as exc:  # urllib's own complaints, e.g. "Invalid IPv6 URL"
            raise ConfigError(
                f"not a valid {scheme} URL ({exc}); check its form, and percent-encode special "
                "characters in a password",
                source=redact_url(source),
            ) from None
        config = StorageConfig(backend=cls.name, source=redact_url(source))
    else:
        config = source if isinstance(source, StorageConfig) else load_config(source)
        cls = get_registry().get(config.backend).cls
        try:
            store = cls.from_options(config.options_for(config.backend))
        except ConfigError as exc:
            raise exc.with_source(config.source) from None
    store.configure(
        namespace=config.namespace if namespace is None else namespace,
        consistency=config.consistency if consistency is None else consistency,
    )
    if config.observers:
        from storage_core.observers.enable import enable_observers  # noqa: PLC0415 - only for stores that have some

        enable_observers(store, config.observers, source=config.source)
    store.initialize()
    return store
