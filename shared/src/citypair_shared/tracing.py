"""OpenTelemetry tracing: spans go over OTLP (gRPC) when an endpoint is set, and nothing is recorded otherwise.

The trace context crosses the bus in the event itself, as the CloudEvents distributed-tracing extension
(`traceparent`, `tracestate`): it is the context the event was created in, which survives the outbox,
so the relay's publish span and each consumer's handler span join the trace of the request that made it.
Without a configured endpoint the API's tracer records nothing and events carry no trace context.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import FastAPI
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind
from sqlalchemy.ext.asyncio import AsyncEngine

TRACE_CONTEXT_ATTRIBUTES = ("traceparent", "tracestate")
UNTRACED_PATHS = "healthz,readyz,metrics"  # probes and scrapes every few seconds: noise, not requests

tracer = trace.get_tracer("citypair")
_provider = None


def configure_tracing(*, service: str, endpoint: str | None) -> bool:
    """Export this process's spans to `endpoint` (OTLP gRPC, e.g. http://collector:4317); True if tracing is on."""
    global _provider
    if not endpoint:
        return False
    if _provider is None:
        # Imported here: a process without an endpoint never loads the SDK, gRPC or the instrumentations.
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        _provider = TracerProvider(resource=Resource.create({"service.name": service}))
        _provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
        trace.set_tracer_provider(_provider)
        HTTPXClientInstrumentor().instrument()  # every outgoing call (web → gateway, JWKS) carries the context
    return True


def tracing_enabled() -> bool:
    return _provider is not None


def instrument_app(app: FastAPI) -> None:
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(app, excluded_urls=UNTRACED_PATHS, tracer_provider=_provider)


def instrument_engine(engine: AsyncEngine) -> None:
    if _provider is not None:
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

        # Its declared range stops below SQLAlchemy 2.1, whose engine events it uses unchanged (the test shows
        # the statements' spans); without skip_dep_check it would instrument nothing.
        SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine, tracer_provider=_provider, skip_dep_check=True)


def flush() -> None:
    """Send what is buffered (at shutdown: spans of the last second would be lost otherwise)."""
    if _provider is not None:
        _provider.force_flush(timeout_millis=5000)


def current_trace_context() -> dict[str, str]:
    """The current span's context as CloudEvents extension attributes (empty when nothing is traced)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return {k: v for k, v in carrier.items() if k in TRACE_CONTEXT_ATTRIBUTES}


@contextmanager
def event_span(event, name: str, kind: SpanKind, **attributes: str) -> Iterator[None]:
    """A span about `event` (a CloudEvent), in the trace the event was created in; nothing when nothing traces
    (a span that records nothing still took a fifth of the outbox relay's time publishing an import's events)."""
    if _provider is None:
        yield
        return
    extensions = event.model_extra or {}
    parent = propagate.extract({k: extensions[k] for k in TRACE_CONTEXT_ATTRIBUTES if k in extensions})
    span_attributes = {"messaging.system": "nats", "messaging.destination.name": event.type}
    span_attributes |= {"messaging.message.id": event.id, **attributes}
    with tracer.start_as_current_span(f"{name} {event.type}", context=parent, kind=kind, attributes=span_attributes):
        yield
