"""Observers on a private redis-server: retries counted through a real stop and restart."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from conftest import OpenRedis, ServerFactory, Sleeps
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from redis_servers import RedisServer

from storage_core import ConnectionFailed, open_storage
from storage_core.observers import LifecycleEvent, OperationEvent, attach
from storage_core.observers.log import AUDIT_LOGGER, LogObserver
from storage_core.observers.otel import DURATION_METRIC, OtelObserver

SECRET = "observer-pass-8d1f"


class Recorder:
    def __init__(self) -> None:
        self.operations: list[OperationEvent] = []
        self.lifecycle: list[LifecycleEvent] = []

    def on_operation(self, event: OperationEvent) -> None:
        self.operations.append(event)

    def on_lifecycle(self, event: LifecycleEvent) -> None:
        self.lifecycle.append(event)


def authed_url(server: RedisServer) -> str:
    return f"redis://:{SECRET}@127.0.0.1:{server.port}/0"


def test_each_observer_sees_redis_operations_and_never_the_password(
    server_factory: ServerFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = server_factory("--requirepass", SECRET)
    config = {"backend": "redis", "namespace": "fleet", "redis": {"url": authed_url(server)}, "observers": ["log"]}
    with caplog.at_level(logging.INFO, logger=AUDIT_LOGGER), open_storage(config) as store:
        store.write("task", {"token": "value-not-for-logs"})
        assert store.read_many(["task", "other"]) == {"task": {"token": "value-not-for-logs"}}
        assert list(store.keys()) == ["task"]
    audit = [r for r in caplog.records if r.name == AUDIT_LOGGER]
    assert [r.storage.get("kind", r.storage.get("operation")) for r in audit] == [  # type: ignore[attr-defined]
        "initialized",
        "write",
        "read_many",
        "keys",
        "closed",
    ]
    assert {r.storage["backend"] for r in audit} == {"redis"}  # type: ignore[attr-defined]
    assert audit[2].storage["keys"] == 2  # type: ignore[attr-defined]
    assert SECRET not in caplog.text
    assert "value-not-for-logs" not in caplog.text


def test_otel_on_redis_names_the_system_redis(server: RedisServer, open_redis: OpenRedis) -> None:
    exporter, reader = InMemorySpanExporter(), InMemoryMetricReader()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    meter_provider = MeterProvider(metric_readers=[reader])
    store = open_redis(server.url, initialize=False)
    attach(store, {"otel": OtelObserver(tracer_provider=tracer_provider, meter_provider=meter_provider)})
    store.initialize()
    store.write("a", 1)
    store.exists("a")
    [span_write, span_exists] = exporter.get_finished_spans()
    assert (span_write.name, span_exists.name) == ("write", "exists")
    assert (span_write.attributes or {})["db.system.name"] == "redis"
    data = reader.get_metrics_data()
    assert data is not None
    names = [m.name for r in data.resource_metrics for s in r.scope_metrics for m in s.metrics]
    assert DURATION_METRIC in names
    tracer_provider.shutdown()
    meter_provider.shutdown()


def test_a_server_killed_and_restarted_is_one_retry_in_the_event(
    server: RedisServer, open_redis: OpenRedis, caplog: pytest.LogCaptureFixture
) -> None:
    # Restarted from the policy's own sleep, so no timer races the retries.
    sleeps = Sleeps(real=True, before=lambda failures: server.start() if failures == 1 else None)
    store = open_redis(server.url, sleep=sleeps, initialize=False)
    recorder = Recorder()
    attach(store, {"recorder": recorder, "log": LogObserver()})
    store.initialize()
    store.write("task", [1])
    server.kill()
    with caplog.at_level(logging.INFO, logger=AUDIT_LOGGER):
        store.write("task", [1, 2])
    assert store.read("task") == [1, 2]
    write = recorder.operations[1]
    assert (write.operation, write.outcome, write.retries) == ("write", "ok", len(sleeps))
    assert len(sleeps) == 1
    retrying = [e for e in recorder.lifecycle if e.kind == "retrying"]
    assert [(e.operation, e.attempt) for e in retrying] == [("write", 1)]
    assert retrying[0].error is not None
    assert retrying[0].delay_s == pytest.approx(sleeps[0])
    assert recorder.operations[2].retries == 0  # the read found the server back
    assert "retries=1" in [r.getMessage() for r in caplog.records if r.name == AUDIT_LOGGER][-1]


def test_a_server_down_for_good_is_connection_failed_after_the_configured_retries(
    server: RedisServer, open_redis: OpenRedis
) -> None:
    store = open_redis(server.url, sleep=Sleeps(), initialize=False, max_retries=2)
    recorder = Recorder()
    attach(store, {"recorder": recorder})
    store.initialize()
    server.kill()
    with pytest.raises(ConnectionFailed):
        store.read("task")
    read = recorder.operations[-1]
    assert (read.operation, read.key, read.outcome, read.retries) == ("read", "task", "ConnectionFailed", 2)
    assert [(e.kind, e.attempt) for e in recorder.lifecycle] == [
        ("initialized", 0),
        ("retrying", 1),
        ("retrying", 2),
        ("connection_failed", 2),
    ]
    server.start()
    assert store.get("task") is None
    assert recorder.operations[-1].retries <= 1  # a pooled connection may notice the restart once
