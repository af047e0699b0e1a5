"""The ``otel`` observer: a span, a duration and a count per operation, in OpenTelemetry's terms.

Named after the database-client semantic conventions: the stable histogram
``db.client.operation.duration`` (seconds) with ``db.system.name``,
``db.operation.name``, ``db.namespace`` and ``error.type``, and a span of kind CLIENT
named ``{db.operation.name} {db.namespace}``. The conventions define no operation
counter; ``db.client.operations`` follows their pattern. It reports to the global
providers the application configured (or to those it is given), and needs the extra
``storage-core[otel]``: this module is imported only when a config enables ``otel``.

The span is made once the operation has returned, with its measured start and end, so
it nests under the caller's span but does not parent spans the backend's client makes.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Self

from opentelemetry import metrics, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from storage_core.observers.events import OperationEvent
from storage_core.options import parse_options

__all__ = ["COUNT_METRIC", "DURATION_METRIC", "OtelObserver"]

DURATION_METRIC = "db.client.operation.duration"
COUNT_METRIC = "db.client.operations"
_SCOPE = "storage_core"
# The conventions' buckets for this histogram: client operations take ms, rarely s.
_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0)
# db.system.name of the bundled backends' engines; any other reports its backend name,
# or the ``system_name`` option.
_SYSTEMS = {"local": "sqlite", "redis": "redis"}
_BATCHES = frozenset({"read_many", "write_many", "transaction"})


@dataclass(frozen=True, slots=True)
class _Options:
    spans: bool = True
    metrics: bool = True
    system_name: str | None = None


class OtelObserver:
    """Records operations to the given (or global) tracer and meter providers."""

    def __init__(
        self,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
        spans: bool = True,
        record_metrics: bool = True,
        system_name: str | None = None,
    ) -> None:
        version = metadata.version("storage-core")
        self._tracer = trace.get_tracer(_SCOPE, version, tracer_provider) if spans else None
        self._system_name = system_name
        self._duration: metrics.Histogram | None = None
        self._count: metrics.Counter | None = None
        if record_metrics:
            meter = metrics.get_meter(_SCOPE, version, meter_provider)
            self._duration = meter.create_histogram(
                DURATION_METRIC,
                unit="s",
                description="Duration of database client operations.",
                explicit_bucket_boundaries_advisory=_BUCKETS,
            )
            self._count = meter.create_counter(
                COUNT_METRIC, unit="{operation}", description="Number of database client operations."
            )

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Self:
        """Options: ``spans`` and ``metrics`` (both true by default), ``system_name``."""
        parsed = parse_options(_Options, options, section="")
        return cls(spans=parsed.spans, record_metrics=parsed.metrics, system_name=parsed.system_name)

    def on_operation(self, event: OperationEvent) -> None:
        attributes: dict[str, str | int] = {
            "db.system.name": self._system_name or _SYSTEMS.get(event.backend, event.backend),
            "db.operation.name": event.operation,
        }
        if event.namespace:
            attributes["db.namespace"] = event.namespace
        if event.outcome != "ok":
            attributes["error.type"] = event.outcome
        if self._duration is not None and self._count is not None:
            self._duration.record(event.duration_s, attributes)
            self._count.add(1, attributes)
        if self._tracer is not None:
            _span(self._tracer, event, attributes)


def _span(tracer: trace.Tracer, event: OperationEvent, attributes: dict[str, str | int]) -> None:
    end = time.time_ns()
    details = dict(attributes)
    if event.operation in _BATCHES and event.keys > 1:
        details["db.operation.batch.size"] = event.keys
    if event.key is not None:
        details["storage_core.key"] = event.key
    if event.consistency is not None:
        details["storage_core.consistency"] = event.consistency
    details["storage_core.retries"] = event.retries
    name = f"{event.operation} {event.namespace}" if event.namespace else event.operation
    span = tracer.start_span(
        name, kind=SpanKind.CLIENT, start_time=end - round(event.duration_s * 1e9), attributes=details
    )
    if event.outcome != "ok":
        span.set_status(Status(StatusCode.ERROR, event.outcome))
    span.end(end_time=end)
