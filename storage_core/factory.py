"""``open_storage``: from a config file, a mapping or a URL to an initialized store."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from storage_core.config import StorageConfig, build_backend, load_config, take_read_only
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
    read_only: bool | None = None,
) -> Storage:
    """Build the configured backend, initialize it and return it (use it in ``with``).

    *source* is a config file path, a mapping, a :class:`StorageConfig`, a URL such as
    ``redis://host:6379/0`` or ``local:///var/lib/agent/state.db``, or None for
    ``./agent.yaml`` if present, else the embedded default. *namespace*, *consistency*
    and *read_only* override the config. Read-only (also ``read_only: true`` in the
    config, or ``?read_only=true`` on a URL) creates nothing, and every write raises
    ``ReadOnly`` before any I/O.

    Raises:
        ConfigError, BackendNotFound, ConnectionFailed, AuthenticationFailed
    """
    if is_url(source):
        assert isinstance(source, str)
        try:
            source, url_read_only = take_read_only(source)
        except ConfigError as exc:
            raise exc.with_source(redact_url(source)) from None
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
        config = StorageConfig(backend=cls.name, source=redact_url(source), read_only=url_read_only)
    else:
        config = source if isinstance(source, StorageConfig) else load_config(source)
        store = build_backend(config)
    store.configure(
        namespace=config.namespace if namespace is None else namespace,
        consistency=config.consistency if consistency is None else consistency,
        read_only=config.read_only if read_only is None else read_only,
    )
    store.initialize()
    return store
