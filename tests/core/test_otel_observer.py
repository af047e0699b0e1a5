"""The ``otel`` observer, read back through the OpenTelemetry SDK's in-memory exporters."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from storage_core import KeyNotFound
from storage_core.observers import attach
from storage_core.observers.otel import COUNT_METRIC, DURATION_METRIC, OtelObserver
from storage_local import LocalStorage


class Telemetry:
    """A tracer and a meter provider whose output the test reads back."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def spans(self) -> tuple[ReadableSpan, ...]:
        return self.exporter.get_finished_spans()

    def points(self, name: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        assert data is not None
        return [
            point
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
            if metric.name == name
            for point in metric.data.data_points
        ]


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    got = Telemetry()
    yield got
    got.tracer_provider.shutdown()
    got.meter_provider.shutdown()


@pytest.fixture
def local(tmp_path: Path) -> Iterator[LocalStorage]:
    store = LocalStorage.from_options({"path": str(tmp_path / "state.db")})
    store.configure(namespace="fleet")
    yield store
    store.close()


def test_a_client_span_per_operation_named_by_the_conventions(telemetry: Telemetry, local: LocalStorage) -> None:
    observer = OtelObserver(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider)
    attach(local, {"otel": observer})
    tracer = telemetry.tracer_provider.get_tracer("agent")
    with local, tracer.start_as_current_span("agent step") as parent:
        local.write_many({"a": 1, "b": {"secret": "hunter2"}}, consistency="eventual")
        with pytest.raises(KeyNotFound):
            local.read("missing")
    spans = {span.name: span for span in telemetry.spans()}
    batch, failed = spans["write_many fleet"], spans["read fleet"]
    assert batch.kind is SpanKind.CLIENT
    assert batch.parent is not None
    assert batch.parent.span_id == parent.get_span_context().span_id
    assert dict(batch.attributes or {}) == {
        "db.system.name": "sqlite",
        "db.operation.name": "write_many",
        "db.namespace": "fleet",
        "db.operation.batch.size": 2,
        "storage_core.key": "a",
        "storage_core.consistency": "eventual",
        "storage_core.retries": 0,
    }
    assert batch.start_time is not None
    assert batch.end_time is not None
    assert 0 < batch.end_time - batch.start_time < 5e9
    assert failed.status.status_code is StatusCode.ERROR
    assert (failed.attributes or {})["error.type"] == "KeyNotFound"
    assert "hunter2" not in repr([dict(s.attributes or {}) for s in telemetry.spans()])


def test_duration_histogram_and_operation_counter(telemetry: Telemetry, local: LocalStorage) -> None:
    observer = OtelObserver(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider)
    attach(local, {"otel": observer})
    with local:
        for i in range(3):
            local.write(f"k{i}", i)
        local.get("k0")
    durations = {p.attributes["db.operation.name"]: p for p in telemetry.points(DURATION_METRIC)}
    assert durations["write"].count == 3
    assert durations["get"].count == 1
    assert dict(durations["write"].attributes) == {
        "db.system.name": "sqlite",
        "db.operation.name": "write",
        "db.namespace": "fleet",
    }
    counts = {p.attributes["db.operation.name"]: p.value for p in telemetry.points(COUNT_METRIC)}
    assert counts == {"write": 3, "get": 1}


def test_options_turn_spans_or_metrics_off_and_name_the_system(telemetry: Telemetry, local: LocalStorage) -> None:
    no_metrics = OtelObserver.from_options({"metrics": "false", "system_name": "other_sql"})
    assert no_metrics._duration is None
    observer = OtelObserver(
        tracer_provider=telemetry.tracer_provider,
        meter_provider=telemetry.meter_provider,
        spans=False,
        system_name="other_sql",
    )
    attach(local, {"otel": observer})
    with local:
        local.write("a", 1)
    assert telemetry.spans() == ()
    assert [p.attributes["db.system.name"] for p in telemetry.points(DURATION_METRIC)] == ["other_sql"]


def test_enabled_from_the_config_it_reports_to_the_global_providers(tmp_path: Path) -> None:
    # The global providers can be set once per process, so this runs in a child.
    script = f"""
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from storage_core import open_storage

exporter, reader = InMemorySpanExporter(), InMemoryMetricReader()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
config = {{"backend": "local", "local": {{"path": {str(tmp_path / "state.db")!r}}}, "observers": ["otel"]}}
with open_storage(config) as store:
    store.write("a", 1)
names = [m.name for r in reader.get_metrics_data().resource_metrics for s in r.scope_metrics for m in s.metrics]
print([s.name for s in exporter.get_finished_spans()], sorted(names))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60)
    assert done.stdout.strip() == f"['write'] {sorted([COUNT_METRIC, DURATION_METRIC])}"


def test_opentelemetry_is_imported_only_when_otel_is_enabled(tmp_path: Path) -> None:
    # Made unimportable in the child: any import of it by a store without otel fails.
    script = f"""
import sys
sys.modules["opentelemetry"] = None
from storage_core import open_storage
config = {{"backend": "local", "local": {{"path": {str(tmp_path / "state.db")!r}}}, "observers": ["log"]}}
with open_storage(config) as store:
    store.write("a", 1)
print("storage_core.observers.otel" in sys.modules)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60)
    assert done.stdout.strip() == "False"


def test_without_providers_it_reports_to_the_global_ones(local: LocalStorage) -> None:
    # None configured here: the API's no-op providers take the records and drop them.
    observer = OtelObserver()
    assert observer._tracer is not None
    attach(local, {"otel": observer})
    with local:
        local.write("a", 1)
