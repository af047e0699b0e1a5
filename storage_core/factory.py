"""``open_storage``: from a config file, a mapping or a URL to an initialized store."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

from storage_core.config import StorageConfig, load_config, take_read_only
from storage_core.consistency import Consistency
from storage_core.errors import ConfigError
from storage_core.redact import redact_url
from storage_core.registry import BackendInfo, get_registry
from storage_core.storage import Storage

__all__ = ["build_backend", "is_url", "open_storage"]

# A string this short in an exception text is too common to be worth masking.
_MIN_MASKED = 4


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
        info = get_registry().for_scheme(scheme)
        cls = info.cls
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
        except Exception as exc:
            raise _plugin_failed(info, exc, secrets=_url_secrets(source), source=redact_url(source)) from exc
        config = StorageConfig(backend=cls.name, source=redact_url(source), read_only=url_read_only)
    else:
        config = source if isinstance(source, StorageConfig) else load_config(source)
        store = build_backend(config)
    store.configure(
        namespace=config.namespace if namespace is None else namespace,
        consistency=config.consistency if consistency is None else consistency,
        change_feed=config.change_feed or None,
        change_retention=config.change_retention,
        read_only=config.read_only if read_only is None else read_only,
    )
    if config.observers:
        from storage_core.observers.enable import enable_observers  # noqa: PLC0415 - only for stores that have some

        enable_observers(store, config.observers, source=config.source)
    store.initialize()
    return store


def build_backend(config: StorageConfig) -> Storage:
    """The selected backend, built from its section with no I/O: what ``doctor`` checks a config with.

    Raises:
        BackendNotFound: the backend is not installed.
        ConfigError: the backend's section is wrong, naming the file and the field.
    """
    info = get_registry().get(config.backend)
    options = config.options_for(config.backend)
    try:
        return info.cls.from_options(options)
    except ConfigError as exc:
        raise exc.with_source(config.source) from None
    except Exception as exc:
        raise _plugin_failed(
            info, exc, secrets=_strings(options), source=config.source, field=f"storage.{config.backend}"
        ) from exc


def _plugin_failed(
    info: BackendInfo, exc: Exception, *, secrets: Iterable[str], source: str | None, field: str | None = None
) -> ConfigError:
    """A backend's ``from_options``/``from_url`` broke its contract (only ConfigError is allowed): say so.

    The exception's text may quote the options it was given, so every option string is masked.
    """
    text = str(exc)
    for secret in sorted({s for s in secrets if len(s) >= _MIN_MASKED}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return ConfigError(
        f"the {info.name!r} backend ({info.distribution} {info.version}) failed to read its options with "
        f"{type(exc).__name__}: {text} (a bug in that plugin: a bad option should be a ConfigError); "
        "check the section against the plugin's documentation, and report it to its authors",
        field=field,
        source=source,
    )


def _strings(value: object) -> Iterator[str]:
    """Every str value inside a config section, for masking (the field names are no secret)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def _url_secrets(url: str) -> list[str]:
    """The URL and its password, for masking."""
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    return [url, *([unquote(password), password] if password else [])]
