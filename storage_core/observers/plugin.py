"""storage-core's own observers, registered through its entry point like any plugin's.

Each factory imports its observer only when a config enables it, so OpenTelemetry is
never imported by a store that does not use ``otel``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from storage_core.errors import ConfigError
from storage_core.hookspecs import ObserverFactory, hookimpl
from storage_core.observers.events import Observer


def _log(options: Mapping[str, Any]) -> Observer:
    from storage_core.observers.log import LogObserver  # noqa: PLC0415 - only when enabled

    return LogObserver.from_options(options)


def _otel(options: Mapping[str, Any]) -> Observer:
    try:
        from storage_core.observers.otel import OtelObserver  # noqa: PLC0415 - OpenTelemetry only when enabled
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith("opentelemetry"):
            raise
        raise ConfigError(
            f"the otel observer needs OpenTelemetry, which is not installed ({exc.name}); "
            "install it with: pip install 'storage-core[otel]'"
        ) from None
    return OtelObserver.from_options(options)


@hookimpl
def storage_register_observers(register: Callable[[str, ObserverFactory], None]) -> None:
    """Provide ``log`` and ``otel``."""
    register("log", _log)
    register("otel", _otel)
