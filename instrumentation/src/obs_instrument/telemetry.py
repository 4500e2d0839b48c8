"""OpenTelemetry traces and logs, exported over OTLP/HTTP to the collector.

Endpoint: `OTEL_EXPORTER_OTLP_ENDPOINT` (default http://otelcol:4318); `/v1/traces` and `/v1/logs` are
appended as the OTLP exporter specification says. The SDK's own variables (OTEL_TRACES_SAMPLER,
OTEL_BSP_*, OTEL_BLRP_*, OTEL_RESOURCE_ATTRIBUTES, OTEL_EXPORTER_OTLP_HEADERS, ...) apply as usual.
Batch processors export from a background thread with bounded queues, so a collector outage drops
telemetry instead of blocking or growing requests.
"""
from __future__ import annotations

import logging

from opentelemetry import trace
from opentelemetry._logs import set_logger_provider
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from .config import Settings

log = logging.getLogger("obs_instrument")
_global_set = {"traces": False, "logs": False}


def resource_for(settings: Settings) -> Resource:
    # Resource.create also merges OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME.
    return Resource.create({
        "service.name": settings.service_name,
        "service.version": settings.service_version,
        "deployment.environment.name": settings.environment,
    })


def tracer_provider(settings: Settings, resource: Resource, exporter: SpanExporter | None) -> TracerProvider:
    provider = TracerProvider(resource=resource)
    if exporter is None and settings.otlp_enabled:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        exporter = OTLPSpanExporter(endpoint=f"{settings.otlp_endpoint}/v1/traces")
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    if not _global_set["traces"]:
        # Only the first instrumented app in a process becomes the global provider (the API allows one).
        trace.set_tracer_provider(provider)
        _global_set["traces"] = True
    return provider


def logger_provider(settings: Settings, resource: Resource, exporter: LogRecordExporter | None) -> LoggerProvider | None:
    if exporter is None and settings.otlp_enabled:
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
        exporter = OTLPLogExporter(endpoint=f"{settings.otlp_endpoint}/v1/logs")
    if exporter is None:
        return None
    provider = LoggerProvider(resource=resource)
    provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
    if not _global_set["logs"]:
        set_logger_provider(provider)
        _global_set["logs"] = True
    return provider
