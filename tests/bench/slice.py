"""Benchmark of the vertical slice on a fresh local stack (a script, not a pytest test).

    .venv/bin/python tests/bench/slice.py [--cities N] [--requests N] [--json]

Starts nats-server, every service and Caddy on free ports in a temporary folder, then measures:

1. Event-to-visible latency: from just before `POST /api/v1/cities` (through the gateway) of a
   city B that perfectly complements an anchor city A, until B is listed in
   `GET /api/v1/cities/{A}/partners?k=100` (through the gateway, polled every 2 ms).
   Every B scores 1.0 with its anchor and ties rank earlier cities first, so B would fall out of
   the top 100 after 100 perfect partners: a fresh anchor with another (need, offer) theme pair
   is registered every `--per-anchor` cities. No city of one group is a perfect match of
   another group's anchor, so each B competes only with its own group.
2. Gateway overhead: the same `GET /api/v1/cities/{id}` sent directly to profiles and through
   the gateway, interleaved request by request, each over one keep-alive connection.

Progress goes to stderr; the table (or, with --json, one JSON object) to stdout. Exit code 0.
"""

import argparse
import itertools
import json
import os
import platform
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from citypair_cli.stack import SERVICES, Stack, StackConfig
from citypair_shared.themes import THEME_IDS

BENCH_ADMIN, BENCH_PASSWORD = "bench@citypair.local", "bench-admin-password"
TARGET_EVENT_P95_MS = 250.0
TARGET_GATEWAY_P50_MS = 1.0
PARTNERS_K = 100  # the API's maximum


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default); None if there are no values."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def summary(values: list[float]) -> dict:
    return {
        "count": len(values),
        "p50_ms": percentile(values, 50),
        "p95_ms": percentile(values, 95),
        "p99_ms": percentile(values, 99),
        "max_ms": max(values) if values else None,
        "mean_ms": sum(values) / len(values) if values else None,
    }


def city_body(name: str, themes: dict, country_code: str = "DE") -> dict:
    # Partners from another country than the anchors': matching excludes same-country pairs by default.
    return {
        "name": name,
        "country_code": country_code,
        "latitude": 52.52,
        "longitude": 13.40,
        "population": 100_000,
        "themes": themes,
    }


def anchor_themes(need_theme: str, offer_theme: str) -> dict:
    # e.g. {"ai": {"offer": 1, "need": 5}, "ecommerce": {"offer": 4, "need": 1}}
    return {need_theme: {"offer": 1, "need": 5}, offer_theme: {"offer": 4, "need": 1}}


def partner_themes(need_theme: str, offer_theme: str) -> dict:
    """The perfect complement of `anchor_themes(need_theme, offer_theme)`: both gains are 1.0."""
    return {need_theme: {"offer": 5, "need": 1}, offer_theme: {"offer": 1, "need": 4}}


def register(client: httpx.Client, body: dict) -> str:
    response = client.post("/api/v1/cities", json=body)
    if response.status_code != 201:
        raise RuntimeError(f"POST /api/v1/cities -> {response.status_code}: {response.text[:300]}")
    return response.json()["id"]


def partner_ids(client: httpx.Client, city_id: str) -> set[str] | None:
    """The ids in the anchor's top 100, or None while matching does not know the anchor yet."""
    response = client.get(f"/api/v1/cities/{city_id}/partners", params={"k": PARTNERS_K})
    if response.status_code == 404:
        return None
    response.raise_for_status()
    return {item["city_id"] for item in response.json()["items"]}


def wait_visible(client: httpx.Client, anchor: str, city_id: str, *, poll: float, timeout: float) -> bool:
    deadline = time.perf_counter() + timeout
    while True:
        ids = partner_ids(client, anchor)
        if ids is not None and city_id in ids:
            return True
        if time.perf_counter() > deadline:
            return False
        time.sleep(poll)


def bench_event_to_visible(gateway: httpx.Client, args: argparse.Namespace, run: str) -> dict:
    pairs = itertools.permutations(THEME_IDS, 2)
    anchor: str | None = None
    group = 0
    in_group = args.per_anchor  # forces an anchor first
    latencies: list[float] = []
    timeouts = 0
    anchors = 0
    total = args.event_warmup + args.cities
    for i in range(total):
        if in_group >= args.per_anchor:
            try:
                need_theme, offer_theme = next(pairs)
            except StopIteration:
                raise SystemExit("too many cities for the distinct theme pairs; raise --per-anchor") from None
            group += 1
            anchor = register(gateway, city_body(f"bench-{run}-anchor-{group}", anchor_themes(need_theme, offer_theme)))
            anchors += 1
            # The anchor itself must be in matching's index before B's latency means anything.
            if not wait_visible_anchor(gateway, anchor, timeout=args.timeout):
                raise RuntimeError(f"anchor {anchor} never reached matching")
            in_group = 0
        body = city_body(f"bench-{run}-b-{i}", partner_themes(need_theme, offer_theme), country_code="PL")
        t0 = time.perf_counter()
        city_id = register(gateway, body)
        seen = wait_visible(gateway, anchor, city_id, poll=args.poll_ms / 1000, timeout=args.timeout)
        elapsed_ms = (time.perf_counter() - t0) * 1000
        in_group += 1
        if i < args.event_warmup:
            continue
        if seen:
            latencies.append(elapsed_ms)
        else:
            timeouts += 1
        done = i + 1 - args.event_warmup
        if done % 50 == 0:
            log(f"  event-to-visible: {done}/{args.cities}")
    return {**summary(latencies), "timeouts": timeouts, "anchors": anchors, "warmup": args.event_warmup}


def wait_visible_anchor(client: httpx.Client, anchor: str, *, timeout: float) -> bool:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if partner_ids(client, anchor) is not None:
            return True
        time.sleep(0.005)
    return False


def timed_get(client: httpx.Client, path: str) -> float:
    t0 = time.perf_counter_ns()
    response = client.get(path)
    elapsed = time.perf_counter_ns() - t0
    if response.status_code != 200:
        raise RuntimeError(f"GET {client.base_url}{path} -> {response.status_code}")
    return elapsed / 1e6


def bench_gateway_overhead(direct: httpx.Client, gateway: httpx.Client, city_id: str, args) -> dict:
    path = f"/api/v1/cities/{city_id}"
    for _ in range(args.warmup):
        timed_get(direct, path)
        timed_get(gateway, path)
    direct_ms: list[float] = []
    gateway_ms: list[float] = []
    for i in range(args.requests):
        # Alternate which goes first, so neither side always follows the other.
        if i % 2 == 0:
            direct_ms.append(timed_get(direct, path))
            gateway_ms.append(timed_get(gateway, path))
        else:
            gateway_ms.append(timed_get(gateway, path))
            direct_ms.append(timed_get(direct, path))
    d, g = summary(direct_ms), summary(gateway_ms)
    return {
        "path": "GET /api/v1/cities/{id} (profiles)",
        "warmup": args.warmup,
        "direct": d,
        "gateway": g,
        "overhead_p50_ms": g["p50_ms"] - d["p50_ms"],
        "overhead_p95_ms": g["p95_ms"] - d["p95_ms"],
        "ratio_p50": g["p50_ms"] / d["p50_ms"],
        "ratio_p95": g["p95_ms"] / d["p95_ms"],
    }


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:8.2f}"


def print_table(result: dict) -> None:
    ev, gw = result["event_to_visible"], result["gateway_overhead"]
    t = result["targets"]
    print(f"citypair slice benchmark  ({result['machine']['cpus']} CPUs, Python {result['machine']['python']})")
    print()
    print(
        f"1. Event-to-visible (POST city via gateway -> listed in partners?k={PARTNERS_K} via gateway, "
        f"poll {result['params']['poll_ms']} ms)"
    )
    print(f"   {'count':>8} {'timeouts':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    print(
        f"   {ev['count']:>8} {ev['timeouts']:>8} {ms(ev['p50_ms'])} {ms(ev['p95_ms'])} "
        f"{ms(ev['p99_ms'])} {ms(ev['max_ms'])}"
    )
    print()
    print(f"2. Gateway overhead ({gw['path']}, {result['params']['requests']} each, interleaved, keep-alive)")
    print(f"   {'':10} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for name in ("direct", "gateway"):
        s = gw[name]
        print(f"   {name:10} {ms(s['p50_ms'])} {ms(s['p95_ms'])} {ms(s['p99_ms'])} {ms(s['max_ms'])}")
    print(f"   {'overhead':10} {ms(gw['overhead_p50_ms'])} {ms(gw['overhead_p95_ms'])}")
    print(f"   {'ratio':10} {gw['ratio_p50']:7.2f}x {gw['ratio_p95']:7.2f}x")
    print()
    print("Targets")
    for target in t.values():
        mark = "MET" if target["met"] else "NOT MET"
        print(f"   {target['label']:36} measured {ms(target['measured_ms']).strip():>8} ms   {mark}")


def run(args: argparse.Namespace) -> dict:
    run_id = uuid.uuid4().hex[:8]
    with tempfile.TemporaryDirectory(prefix="citypair-bench-") as tmp:
        extra_env = {f"{s.env_prefix}LOG_LEVEL": "WARNING" for s in SERVICES}
        extra_env |= {"CITYPAIR_ADMIN_EMAIL": BENCH_ADMIN, "CITYPAIR_ADMIN_PASSWORD": BENCH_PASSWORD}
        config = StackConfig.on_free_ports(Path(tmp) / "var", extra_env=extra_env)
        log(f"starting stack in {tmp} (gateway {config.gateway_url}) ...")
        started = time.perf_counter()
        with Stack(config):
            log(f"stack ready in {time.perf_counter() - started:.1f} s")
            # Every request carries a real token, as in production: the figures include the token check.
            credentials = {"username": BENCH_ADMIN, "password": BENCH_PASSWORD}
            token = httpx.post(f"{config.gateway_url}/api/v1/auth/token", data=credentials).json()["access_token"]
            client_opts = {"timeout": 10.0, "trust_env": False, "headers": {"Authorization": f"Bearer {token}"}}
            with (
                httpx.Client(base_url=config.gateway_url, **client_opts) as gateway,
                httpx.Client(base_url=config.service_url("profiles"), **client_opts) as direct,
            ):
                log(f"event-to-visible: {args.cities} cities (+{args.event_warmup} warm-up) ...")
                events = bench_event_to_visible(gateway, args, run_id)
                target_city = register(
                    gateway, city_body(f"bench-{run_id}-get", anchor_themes(THEME_IDS[0], THEME_IDS[1]))
                )
                log(f"gateway overhead: {args.requests} requests each (+{args.warmup} warm-up) ...")
                overhead = bench_gateway_overhead(direct, gateway, target_city, args)
            log("stopping stack ...")
    return {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "params": {
            "cities": args.cities,
            "requests": args.requests,
            "warmup": args.warmup,
            "event_warmup": args.event_warmup,
            "per_anchor": args.per_anchor,
            "poll_ms": args.poll_ms,
            "timeout_s": args.timeout,
        },
        "event_to_visible": events,
        "gateway_overhead": overhead,
        "targets": {
            "event_to_visible_p95": {
                "label": f"p95 event-to-visible ≤ {TARGET_EVENT_P95_MS:g} ms",
                "measured_ms": events["p95_ms"],
                "met": events["p95_ms"] is not None
                and events["p95_ms"] <= TARGET_EVENT_P95_MS
                and events["timeouts"] == 0,
            },
            "gateway_overhead_p50": {
                "label": f"gateway overhead ≤ {TARGET_GATEWAY_P50_MS:g} ms p50",
                "measured_ms": overhead["overhead_p50_ms"],
                "met": overhead["overhead_p50_ms"] <= TARGET_GATEWAY_P50_MS,
            },
        },
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cities", type=int, default=200, help="measured registrations (default 200)")
    parser.add_argument("--requests", type=int, default=2000, help="GETs per side for gateway overhead (default 2000)")
    parser.add_argument("--warmup", type=int, default=200, help="unmeasured GETs per side first (default 200)")
    parser.add_argument("--event-warmup", type=int, default=5, help="unmeasured registrations first (default 5)")
    parser.add_argument("--per-anchor", type=int, default=90, help="cities per anchor, < 100 (default 90)")
    parser.add_argument("--poll-ms", type=float, default=2.0, help="partners poll interval (default 2 ms)")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds before a city counts as timed out")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = parser.parse_args(argv)
    if not 1 <= args.per_anchor < PARTNERS_K:
        parser.error(f"--per-anchor must be between 1 and {PARTNERS_K - 1}")
    if args.cities < 1 or args.requests < 1 or args.warmup < 0 or args.event_warmup < 0:
        parser.error("--cities and --requests must be positive, warm-ups not negative")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    # SIGTERM unwinds like Ctrl-C, so the stack's context manager stops every child.
    def _terminate(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, _terminate)
    result = run(args)
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        print_table(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
