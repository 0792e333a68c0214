"""Prometheus metrics every service exposes at /metrics."""

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from starlette.responses import Response

from citypair_shared.logging import get_logger

access_log = get_logger("citypair.access")
# Probes and scrapes, every few seconds from every checker: counted, not logged.
QUIET_ROUTES = {"/healthz", "/readyz", "/metrics"}

REQUESTS = Counter("http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
OUTBOX_BACKLOG = Gauge("outbox_backlog", "Outbox events not yet acknowledged by JetStream")
OUTBOX_OLDEST_AGE = Gauge("outbox_oldest_unsent_age_seconds", "Age of the oldest unsent outbox event")
EVENTS_PUBLISHED = Counter("events_published_total", "Events published and acknowledged", ["type"])
EVENTS_HANDLED = Counter("events_handled_total", "Events handled", ["consumer", "type", "outcome"])
CONSUMER_LAG = Gauge("consumer_lag", "Messages pending for a durable consumer", ["consumer"])
REDELIVERIES = Counter("consumer_redeliveries_total", "Messages delivered more than once", ["consumer"])
DEAD_LETTERS = Counter("dead_letters_total", "Messages moved to the dead-letter stream", ["consumer", "subject"])
ROWS_PRUNED = Counter("rows_pruned_total", "Rows deleted by the retention job", ["table"])


def record_request(scope: dict, status: int, elapsed: float) -> None:
    """Count and time a request, and write its access-log line (the request id is added by the logger)."""
    path = getattr(scope.get("route"), "path", "unmatched")
    method = scope["method"]
    LATENCY.labels(method, path).observe(elapsed)
    REQUESTS.labels(method, path, str(status)).inc()
    if path not in QUIET_ROUTES:
        user_id = scope.get("state", {}).get("user_id")
        access_log.info(
            "http.request",
            method=method,
            route=path,
            status=status,
            duration_ms=round(elapsed * 1000, 1),
            user_id=user_id,
        )


def metrics_response() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
