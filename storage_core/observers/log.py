"""The ``log`` observer: one structured record per operation on the ``storage_core.audit`` logger.

The message reads well in a plain log; the same fields ride along as ``record.storage``
(a dict) for a JSON formatter. Nothing is built when the logger would drop the record.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self

from storage_core.errors import ConfigError
from storage_core.observers.events import LifecycleEvent, OperationEvent
from storage_core.options import parse_options

__all__ = ["AUDIT_LOGGER", "LogObserver"]

AUDIT_LOGGER = "storage_core.audit"
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}


@dataclass(frozen=True, slots=True)
class _Options:
    level: str = "info"


class LogObserver:
    """Logs each operation (and each lifecycle event) at one level, default INFO."""

    def __init__(self, level: int = logging.INFO, logger: logging.Logger | None = None) -> None:
        self._level = level
        self._logger = logger or logging.getLogger(AUDIT_LOGGER)

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Self:
        """Options: ``level`` (debug, info or warning)."""
        level = parse_options(_Options, options, section="").level
        if level.lower() not in _LEVELS:
            raise ConfigError(f"expected one of {', '.join(_LEVELS)}, got {level!r:.40}", field="level")
        return cls(_LEVELS[level.lower()])

    def on_operation(self, event: OperationEvent) -> None:
        if not self._logger.isEnabledFor(self._level):
            return
        self._logger.log(
            self._level,
            "storage %s %s key=%r keys=%d consistency=%s outcome=%s duration_s=%.6f retries=%d",
            event.backend,
            event.operation,
            event.key,
            event.keys,
            event.consistency,
            event.outcome,
            event.duration_s,
            event.retries,
            extra={"storage": _fields(event)},
        )

    def on_lifecycle(self, event: LifecycleEvent) -> None:
        if not self._logger.isEnabledFor(self._level):
            return
        self._logger.log(
            self._level,
            "storage %s %s operation=%s attempt=%d error=%s",
            event.backend,
            event.kind,
            event.operation,
            event.attempt,
            event.error,
            extra={"storage": _fields(event)},
        )


def _fields(event: OperationEvent | LifecycleEvent) -> dict[str, Any]:
    # Not dataclasses.asdict: it deep-copies, and every field here is already a plain value.
    return {name: getattr(event, name) for name in event.__slots__}
