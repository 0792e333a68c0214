"""Tracing end to end: one request through the gateway is one trace, from Caddy through profiles, its outbox
relay and the bus to matching's handler, as a real OTLP receiver (gRPC, the collector's protocol) gets it."""

import secrets
import threading
from collections import defaultdict
from concurrent import futures

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from tests.e2e.conftest import start_stack
from tests.support import ADMIN_EMAIL, ADMIN_PASSWORD, city_body, client_for, eventually, free_port


class Receiver(trace_service_pb2_grpc.TraceServiceServicer):
    """An OTLP trace receiver that keeps every span, by trace id, with its service's name."""

    def __init__(self):
        self.spans = defaultdict(list)
        self.lock = threading.Lock()

    def Export(self, request, context):  # noqa: N802 - the gRPC method's name
        with self.lock:
            for resource_spans in request.resource_spans:
                attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                service = attributes.get("service.name", "?")
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        self.spans[span.trace_id.hex()].append((service, span))
        return trace_service_pb2.ExportTraceServiceResponse()

    def trace(self, trace_id: str) -> list:
        with self.lock:
            return list(self.spans[trace_id])


@pytest.fixture(scope="module")
def receiver():
    receiver = Receiver()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(receiver, server)
    port = free_port()
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    receiver.endpoint = f"http://127.0.0.1:{port}"
    yield receiver
    server.stop(grace=None)


@pytest.fixture(scope="module")
def stack(tmp_path_factory, receiver):
    """Every part exports to the receiver, each batch within 200 ms."""
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "200"}
    stack = start_stack(tmp_path_factory.mktemp("traced"), **env)
    yield stack
    stack.stop()


def ancestors(span, by_id: dict) -> list:
    """`span`'s parents up to the trace's root, nearest first."""
    chain = []
    while span.parent_span_id and span.parent_span_id in by_id:
        span = by_id[span.parent_span_id][1]
        chain.append(span)
    return chain


def test_one_city_registration_is_one_trace_from_the_gateway_to_matchings_handler(stack, receiver):
    trace_id, parent_id = secrets.token_hex(16), secrets.token_hex(8)
    with client_for(stack.config.gateway_url, ADMIN_EMAIL, ADMIN_PASSWORD) as admin:
        traceparent = {"traceparent": f"00-{trace_id}-{parent_id}-01"}
        response = admin.post("/api/v1/cities", json=city_body("Lanzhou (traced)"), headers=traceparent)
        assert response.status_code == 201, response.text

    def whole_trace():
        spans = receiver.trace(trace_id)
        names = {(service, span.name) for service, span in spans}
        wanted = [
            ("gateway", "gateway"),
            ("profiles", "POST /api/v1/cities"),
            ("profiles", "publish profiles.city.registered.v1"),
            ("matching", "process profiles.city.registered.v1"),
        ]
        # each part's spans leave in batches of their own: the request's is not always first
        return spans if all(w in names for w in wanted) else None

    spans = eventually(whole_trace, what="the trace's spans at the receiver")
    by_id = {span.span_id: (service, span) for service, span in spans}
    services = {service for service, _ in spans}
    assert {"gateway", "profiles", "matching"} <= services, services

    (gateway,) = [span for service, span in spans if service == "gateway"]
    assert gateway.parent_span_id.hex() == parent_id  # Caddy continued the client's trace
    (request,) = [s for svc, s in spans if svc == "profiles" and s.kind == s.SPAN_KIND_SERVER]
    assert gateway in ancestors(request, by_id)
    (published,) = [s for svc, s in spans if s.name == "publish profiles.city.registered.v1"]
    (handled,) = [s for svc, s in spans if svc == "matching" and s.name == "process profiles.city.registered.v1"]
    # The relay (a background task, long after the request) and matching's handler both join the request.
    for span in (published, handled):
        assert request in ancestors(span, by_id)
        assert gateway in ancestors(span, by_id)
    # Each layer instrumented: the database statements of the request and of the handler are spans too.
    assert any(svc == "profiles" and s.name.split()[0] in ("INSERT", "connect") for svc, s in spans)
    assert any(svc == "matching" and handled in ancestors(s, by_id) for svc, s in spans)
