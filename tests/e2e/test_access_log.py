"""Logs and metrics an operator reads: one access-log line per request at the gateway and at each service,
with the request id the gateway passed on, and the metrics of sign-ins, matching's index and its ranking."""

import json
import uuid

from tests.support import eventually


def access_lines(stack, service: str, request_id: str) -> list[dict]:
    lines = (stack.log_dir / f"{service}.log").read_text(errors="replace").splitlines()
    records = [json.loads(line) for line in lines if line.startswith("{") and request_id in line]
    return [r for r in records if r.get("event") == "http.request"]


def test_each_request_is_logged_once_with_route_status_duration_and_user(stack, admin):
    request_id = f"trace-{uuid.uuid4().hex}"
    response = admin.get("/api/v1/cities", params={"limit": 1}, headers={"X-Request-ID": request_id})
    assert response.status_code == 200 and response.headers["X-Request-ID"] == request_id
    me = admin.get("/api/v1/me").json()
    (line,) = eventually(lambda: access_lines(stack, "profiles", request_id), what="the access-log line")
    assert line["method"] == "GET" and line["route"] == "/api/v1/cities" and line["status"] == 200
    assert line["user_id"] == me["id"] and line["duration_ms"] >= 0
    assert access_lines(stack, "matching", request_id) == []  # logged where it was served only


def test_probes_are_not_logged(stack):
    import httpx

    httpx.get(stack.config.service_url("profiles") + "/healthz", headers={"X-Request-ID": "probe-xyz"})
    assert access_lines(stack, "profiles", "probe-xyz") == []


def test_the_gateway_logs_each_request_and_gives_it_an_id_the_service_logs_too(stack, admin):
    response = admin.get("/api/v1/cities", params={"limit": 2})  # no X-Request-ID: the gateway makes one
    request_id = response.headers["X-Request-ID"]
    assert len(request_id) >= 32
    (line,) = eventually(lambda: access_lines(stack, "profiles", request_id), what="the service's line")
    assert line["route"] == "/api/v1/cities"

    def gateway_lines() -> list[dict]:
        lines = (stack.log_dir / "gateway.log").read_text(errors="replace").splitlines()
        records = [json.loads(line) for line in lines if line.startswith("{") and request_id in line]
        return [r for r in records if r.get("logger", "").startswith("http.log.access")]

    (access,) = eventually(gateway_lines, what="the gateway's access-log line")
    assert access["status"] == 200 and access["request"]["uri"].startswith("/api/v1/cities")
    assert access["request"]["headers"]["Authorization"] == ["REDACTED"]  # the token never reaches a log


def metric(stack, service: str, sample: str) -> float:
    """One sample's value from a service's /metrics (0 if absent)."""
    import httpx

    for line in httpx.get(stack.config.service_url(service) + "/metrics").text.splitlines():
        if line.startswith(sample + " "):
            return float(line.split()[-1])
    return 0.0


def test_operator_metrics_count_sign_ins_index_and_ranking(stack, admin, anonymous):
    failed = 'identity_sign_ins_total{outcome="failed"}'
    before = metric(stack, "identity", failed)
    wrong = anonymous.post("/api/v1/auth/token", data={"username": "nobody@example.org", "password": "x" * 12})
    assert wrong.status_code == 401
    assert metric(stack, "identity", failed) == before + 1
    city = admin.post(
        "/api/v1/cities",
        json={
            "name": f"Metric {uuid.uuid4().hex[:6]}",
            "country_code": "CN",
            "latitude": 30.0,
            "longitude": 100.0,
            "population": 10_000,
        },
    ).json()
    eventually(lambda: admin.get(f"/api/v1/cities/{city['id']}/partners").status_code == 200, what="matching")
    assert metric(stack, "matching", "matching_index_cities") >= 1
    assert metric(stack, "matching", "matching_ranking_seconds_count") >= 1
