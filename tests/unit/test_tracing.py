"""The trace context an event carries: the CloudEvents distributed-tracing extension, only when traced."""

from opentelemetry.sdk.trace import TracerProvider

from citypair_shared.events import CloudEvent, TokensRevoked, new_event

REVOKED = TokensRevoked(user_id="u1", min_token_version=2, reason="test")


def test_an_event_made_outside_a_trace_carries_no_trace_context():
    event = new_event(REVOKED, source="/citypair/identity")
    assert "traceparent" not in event.model_dump()


def test_an_event_made_in_a_span_carries_that_spans_context():
    with TracerProvider().get_tracer("test").start_as_current_span("request") as request:
        event = new_event(REVOKED, source="/citypair/identity")
    context = request.get_span_context()
    wire = CloudEvent.model_validate_json(event.model_dump_json())  # as a consumer reads it from the bus
    version, trace_id, parent_id, _flags = wire.model_extra["traceparent"].split("-")
    assert (version, trace_id, parent_id) == ("00", f"{context.trace_id:032x}", f"{context.span_id:016x}")
    # tests/e2e/test_tracing.py shows the relay's and the consumers' spans joining that trace.
