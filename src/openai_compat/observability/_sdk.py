"""The SDK's providers with the exporters the ``OTEL_*_EXPORTER`` variables name.

Imported only by `_setup` when the environment asks for telemetry: the SDK is the ``[otel]``
extra's, never the core's.
"""

from __future__ import annotations

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

__all__ = ["providers"]


def providers(traces: list[str], metric_exporters: list[str]) -> list[object]:
    """Set the global tracer and meter providers; return them (to shut down on exit).

    The sampler comes from ``OTEL_TRACES_SAMPLER``, the resource from ``OTEL_SERVICE_NAME``
    and ``OTEL_RESOURCE_ATTRIBUTES`` (the SDK reads them); ``otlp`` means OTLP over HTTP.
    """
    resource = Resource.create({"service.name": _service_name()})
    made: list[object] = []
    if any(name in ("otlp", "console") for name in traces):
        tracer_provider = TracerProvider(resource=resource)
        for name in traces:
            if name == "otlp":
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
                    OTLPSpanExporter,
                )

                tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
            elif name == "console":
                tracer_provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
        trace.set_tracer_provider(tracer_provider)
        made.append(tracer_provider)
    readers: list[MetricReader] = []
    for name in metric_exporters:
        if name == "otlp":
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

            readers.append(PeriodicExportingMetricReader(OTLPMetricExporter()))
        elif name == "console":
            readers.append(PeriodicExportingMetricReader(ConsoleMetricExporter()))
    if readers:
        meter_provider = MeterProvider(resource=resource, metric_readers=readers)
        metrics.set_meter_provider(meter_provider)
        made.append(meter_provider)
    return made


def _service_name() -> str:
    import os

    # OTEL_SERVICE_NAME wins in Resource.create; this is the name without it.
    return os.environ.get("OTEL_SERVICE_NAME") or "openai-compat"
