"""Top-10 partners through the gateway with many cities loaded (a script, not a test).

    .venv/bin/python tests/bench/gateway_partners.py [--cities 25000] [--requests 500] [--seed 7]

On a fresh stack (free ports, temporary folder, its own nats-server, SQLite unless
CITYPAIR_<SERVICE>_DATABASE_URL says otherwise) it signs in as the admin, imports N generated
published profiles with themes (the generator of `profiles.py`) through the gateway's import
endpoint in chunks, and waits until matching has handled every `profiles.city.registered.v1`
(read from matching's /metrics). After a short warm-up it sends `GET /api/v1/cities/{id}/partners?k=10`
for random cities, sequentially and signed in, once through the gateway and once straight to the
matching service (interleaved, each over one keep-alive connection), and prints JSON on stdout:
p50/p95/p99/max in ms for both, the gateway/direct ratios, and how long loading took.
Every measured answer must list at least one partner. Target: p99 ≤ 20 ms through the gateway at 25,000 cities.
"""

import argparse
import csv
import io
import json
import os
import platform
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

import httpx
from profiles import ADMIN, PASSWORD, generated_csv, handled_registrations, log
from slice import summary

from citypair_cli.stack import SERVICES, Stack, StackConfig

K = 10
CHUNK = 2500  # rows per import request: each answers well within the gateway's 30 s response timeout
WARMUP = 20  # unmeasured requests per side first
TARGET_GATEWAY_P99_MS = 20.0
LOAD_TIMEOUT_S = 1800


def sign_in(gateway_url: str) -> dict[str, str]:
    """Authorization headers for the admin (tokens live 10 minutes: sign in again after a long load)."""
    response = httpx.post(f"{gateway_url}/api/v1/auth/token", data={"username": ADMIN, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def chunks(body: str, size: int) -> list[tuple[str, list[dict]]]:
    """The generated CSV cut into files of `size` rows, each with the header, and its rows as dicts."""
    header, *lines = body.splitlines()
    return [
        ("\n".join([header, *part]) + "\n", list(csv.DictReader(io.StringIO("\n".join([header, *part])))))
        for part in (lines[i : i + size] for i in range(0, len(lines), size))
    ]


def two_sided(row: dict) -> bool:
    """Offers something and needs something: some other city can gain from it and give to it."""

    def any_positive(prefix: str) -> bool:
        return any(v and int(v) > 0 for c, v in row.items() if c.startswith(prefix))

    return any_positive("offer_") and any_positive("need_")


def load(gateway_url: str, matching_url: str, headers: dict, cities: int, seed: int) -> tuple[list[str], dict]:
    """Import the cities; the ids of those with offers and needs, and the timings."""
    body = generated_csv(cities, seed)
    log(f"importing {cities} rows ({len(body) / 1e6:.1f} MB) in chunks of {CHUNK} ...")
    start = time.perf_counter()
    ids: list[str] = []
    done = 0
    with httpx.Client(base_url=gateway_url, headers={**headers, "Content-Type": "text/csv"}, timeout=120) as client:
        for text, rows in chunks(body, CHUNK):
            response = client.post("/api/v1/cities/import", content=text)
            assert response.status_code == 200, response.text[:500]
            report = response.json()
            assert report["accepted"] == len(rows), [r for r in report["rows"] if r["action"] == "rejected"][:3]
            ids += [r["id"] for r, row in zip(report["rows"], rows, strict=True) if two_sided(row)]
            done += len(rows)
            log(f"  accepted {done:>6} / {cities}  ({time.perf_counter() - start:.1f} s)")
    accepted = time.perf_counter() - start
    while (handled := handled_registrations(matching_url)) < cities:
        if time.perf_counter() - start > LOAD_TIMEOUT_S:
            raise TimeoutError(f"matching handled {handled:.0f} of {cities} events in {LOAD_TIMEOUT_S} s")
        time.sleep(0.5)
    loaded = time.perf_counter() - start
    log(f"accepted in {accepted:.1f} s; every event handled by matching after {loaded:.1f} s")
    return ids, {
        "import_accepted_s": round(accepted, 2),
        "loaded_s": round(loaded, 2),
        "rows_per_s": round(cities / loaded),
        "cities_offering_and_needing": len(ids),
    }


def timed_partners(client: httpx.Client, city_id: str) -> float:
    t0 = time.perf_counter_ns()
    response = client.get(f"/api/v1/cities/{city_id}/partners", params={"k": K})
    elapsed = (time.perf_counter_ns() - t0) / 1e6
    if response.status_code != 200:
        raise RuntimeError(f"GET {client.base_url} partners of {city_id} -> {response.status_code}: {response.text}")
    items = response.json()["items"]
    assert 0 < len(items) <= K, f"{len(items)} partners for {city_id}"
    return elapsed


def measure(gateway: httpx.Client, direct: httpx.Client, ids: list[str], requests: int, seed: int) -> dict:
    rng = random.Random(seed + 1)
    warmup = {"gateway": [], "direct": []}
    timings = {"gateway": [], "direct": []}
    for i in range(WARMUP + requests):
        city_id = rng.choice(ids)
        # Alternate which goes first, so neither side always follows the other.
        order = (("gateway", gateway), ("direct", direct)) if i % 2 == 0 else (("direct", direct), ("gateway", gateway))
        for name, client in order:
            (warmup if i < WARMUP else timings)[name].append(timed_partners(client, city_id))
    g, d = summary(timings["gateway"]), summary(timings["direct"])
    rounded = {
        name: {k: round(v, 3) if isinstance(v, float) else v for k, v in s.items()}
        for name, s in (("gateway", g), ("direct", d))
    }
    return {
        **rounded,
        "ratio": {q: round(g[f"{q}_ms"] / d[f"{q}_ms"], 2) for q in ("p50", "p95", "p99", "max")},
        "overhead_p50_ms": round(g["p50_ms"] - d["p50_ms"], 3),
        "warmup": {
            "requests": WARMUP,
            "first_gateway_ms": round(warmup["gateway"][0], 2),
            "first_direct_ms": round(warmup["direct"][0], 2),
            "max_ms": round(max(warmup["gateway"] + warmup["direct"]), 2),
        },
    }


def run(cities: int, requests: int, seed: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="citypair-bench-") as tmp:
        env = {f"{s.env_prefix}LOG_LEVEL": "WARNING" for s in SERVICES}
        env |= {"CITYPAIR_ADMIN_EMAIL": ADMIN, "CITYPAIR_ADMIN_PASSWORD": PASSWORD}
        config = StackConfig.on_free_ports(Path(tmp) / "var", extra_env=env)
        log(f"starting stack in {tmp} (gateway {config.gateway_url}) ...")
        started = time.perf_counter()
        with Stack(config):
            stack_s = time.perf_counter() - started
            log(f"stack ready in {stack_s:.1f} s")
            matching = config.service_url("matching")
            ids, loading = load(config.gateway_url, matching, sign_in(config.gateway_url), cities, seed)
            log(f"partners?k={K}: {requests} requests each way (+{WARMUP} warm-up) over {len(ids)} cities ...")
            opts = {"headers": sign_in(config.gateway_url), "timeout": 30.0, "trust_env": False}
            with (
                httpx.Client(base_url=config.gateway_url, **opts) as gateway,
                httpx.Client(base_url=matching, **opts) as direct,
            ):
                figures = measure(gateway, direct, ids, requests, seed)
            log("stopping stack ...")
    return {
        "endpoint": f"GET /api/v1/cities/{{id}}/partners?k={K}",
        "cities": cities,
        "requests": requests,
        "seed": seed,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "stack_start_s": round(stack_s, 2),
        "loading": loading,
        **figures,
        "target_gateway_p99_ms": TARGET_GATEWAY_P99_MS,
        "target_met": figures["gateway"]["p99_ms"] <= TARGET_GATEWAY_P99_MS,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cities", type=int, default=25_000, help="generated cities to import (default 25000)")
    parser.add_argument("--requests", type=int, default=500, help="measured requests each way (default 500)")
    parser.add_argument("--seed", type=int, default=7, help="generator and city-choice seed (default 7)")
    args = parser.parse_args(argv)
    if args.cities < 2 or args.requests < 1:
        parser.error("--cities must be at least 2 and --requests positive")

    # SIGTERM unwinds like Ctrl-C, so the stack's context manager stops every child.
    def _terminate(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, _terminate)
    print(json.dumps(run(args.cities, args.requests, args.seed), ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
