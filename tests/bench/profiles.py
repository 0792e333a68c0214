"""Profiles at 10,000 cities (a script, not a test).

    .venv/bin/python tests/bench/profiles.py [--cities 10000] [--queries 400] [--json]

On a fresh stack (free ports, temporary folder, SQLite unless CITYPAIR_<SERVICE>_DATABASE_URL says
otherwise) it imports N generated profiles through the gateway in one CSV request and times it
until every `profiles.city.registered.v1` has been handled by matching (read from matching's
/metrics); then it sends filtered directory queries straight to the profiles service and reports
their p50/p95 next to an unfiltered first page in the same run.
Targets: import of 10,000 rows ≤ 30 s including events reaching matching; a filtered directory
page p95 ≤ 50 ms at the service.
"""

import argparse
import json
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from citypair_cli.stack import SERVICES, Stack, StackConfig
from citypair_profiles.tabular import COLUMNS
from citypair_shared.geography import CORRIDORS
from citypair_shared.themes import THEME_IDS

ADMIN, PASSWORD = "bench@citypair.local", "bench-admin-password"
COUNTRIES = ["CN", "KZ", "UZ", "PK", "RU", "TR", "IR", "VN", "TH", "MY", "ID", "IN", "EG", "GR", "IT", "PL"]


def generated_csv(n: int, seed: int = 7) -> str:
    rng = random.Random(seed)
    header = [
        c
        for c in COLUMNS
        if not c.startswith(("contact_",))
        and not c.endswith("_year")
        and c
        not in (
            "local_name",
            "admin_region",
            "timezone",
            "alternate_names",
            "preferred_countries",
            "excluded_countries",
            "demo",
        )
        and not c.endswith(("_pct", "_per_100", "_index"))
    ]
    lines = [",".join(header)]
    for i in range(n):
        row = {
            "external_id": f"bench-{i}",
            "geonames_id": "",
            "name": f"Bench City {i}",
            "country_code": rng.choice(COUNTRIES),
            "latitude": f"{rng.uniform(-60, 70):.4f}",
            "longitude": f"{rng.uniform(-180, 180):.4f}",
            "population": str(rng.randint(50_000, 20_000_000)),
            "capacity": str(rng.randint(1, 10)),
            "languages": "en",
            "corridors": "|".join(rng.sample(sorted(CORRIDORS), rng.randint(0, 2))),
        }
        for theme in THEME_IDS:
            if rng.random() < 0.5:
                row[f"offer_{theme}"], row[f"need_{theme}"] = str(rng.randint(0, 5)), str(rng.randint(0, 5))
        lines.append(",".join(row.get(c, "") for c in header))
    return "\n".join(lines) + "\n"


def handled_registrations(matching_url: str) -> float:
    text = httpx.get(matching_url + "/metrics").text
    pattern = r'events_handled_total\{[^}]*outcome="handled"[^}]*type="profiles\.city\.registered\.v1"[^}]*\} (\S+)'
    return sum(float(v) for v in re.findall(pattern, text))


def percentile(samples: list[float], q: int) -> float:
    return statistics.quantiles(samples, n=100)[q - 1]


def outbox_backlog(service_url: str) -> float:
    found = re.search(r"^outbox_backlog (\S+)$", httpx.get(service_url + "/metrics").text, re.MULTILINE)
    return float(found.group(1)) if found else float("nan")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(cities: int, queries: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="citypair-bench-") as tmp:
        env = {f"{s.env_prefix}LOG_LEVEL": "WARNING" for s in SERVICES}
        env |= {"CITYPAIR_ADMIN_EMAIL": ADMIN, "CITYPAIR_ADMIN_PASSWORD": PASSWORD}
        config = StackConfig.on_free_ports(Path(tmp) / "var", extra_env=env)
        with Stack(config):
            token = httpx.post(
                f"{config.gateway_url}/api/v1/auth/token", data={"username": ADMIN, "password": PASSWORD}
            ).json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            body = generated_csv(cities)
            log(f"importing {cities} rows ({len(body) / 1e6:.1f} MB) ...")
            start = time.perf_counter()
            response = httpx.post(
                f"{config.gateway_url}/api/v1/cities/import",
                content=body,
                timeout=600,
                headers={**headers, "Content-Type": "text/csv"},
            )
            accepted_at = time.perf_counter() - start
            assert response.status_code == 200, response.text[:500]
            assert response.json()["accepted"] == cities, response.json()["rejected"]
            matching, profiles = config.service_url("matching"), config.service_url("profiles")
            published_at = None  # when profiles' outbox had published every event: which side the rest is
            while handled_registrations(matching) < cities:
                if time.perf_counter() - start > 600:
                    raise TimeoutError("matching did not catch up in 10 minutes")
                if published_at is None and outbox_backlog(profiles) == 0:
                    published_at = time.perf_counter() - start
                time.sleep(0.05)
            import_total = time.perf_counter() - start
            published_at = published_at or import_total
            log(f"imported in {accepted_at:.1f} s; events published by {published_at:.1f} s, "
                f"handled by matching after {import_total:.1f} s")  # fmt: skip

            rng = random.Random(11)
            filters = [
                lambda: {"country": rng.choice(COUNTRIES)},
                lambda: {"offers": f"{rng.choice(THEME_IDS)}:{rng.randint(3, 5)}"},
                lambda: {"needs": f"{rng.choice(THEME_IDS)}:4", "country": rng.choice(COUNTRIES)},
                lambda: {"q": f"city {rng.randint(1, 9999)}"},
                lambda: {"population_min": 1_000_000, "population_max": 5_000_000, "sort": "-population"},
                lambda: {"corridor": rng.choice(sorted(CORRIDORS)), "offers": "ai:2", "sort": "-population"},
            ]
            timings: dict[str, list[float]] = {"filtered": [], "unfiltered": []}
            with httpx.Client(base_url=config.service_url("profiles"), headers=headers) as client:
                for i in range(queries + 40):
                    for kind in ("filtered", "unfiltered"):
                        params = {**rng.choice(filters)(), "limit": 20} if kind == "filtered" else {"limit": 20}
                        t = time.perf_counter()
                        page = client.get("/api/v1/cities", params=params)
                        elapsed = (time.perf_counter() - t) * 1000
                        assert page.status_code == 200, page.text
                        if i >= 40:
                            timings[kind].append(elapsed)
    figures = {
        "cities": cities,
        "import_accepted_s": round(accepted_at, 2),
        "import_to_matching_s": round(import_total, 2),
        "events_published_s": round(published_at, 2),
        "import_rows_per_s": round(cities / import_total),
        **{f"directory_{k}_p50_ms": round(statistics.median(v), 2) for k, v in timings.items()},
        **{f"directory_{k}_p95_ms": round(percentile(v, 95), 2) for k, v in timings.items()},
    }
    figures["filtered_vs_unfiltered_p95"] = round(
        figures["directory_filtered_p95_ms"] / figures["directory_unfiltered_p95_ms"], 2
    )
    figures["targets_met"] = {
        "import ≤ 30 s incl. matching": import_total <= 30,
        "filtered directory p95 ≤ 50 ms": figures["directory_filtered_p95_ms"] <= 50,
    }
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cities", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=400)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args.cities, args.queries)
    print(json.dumps(result, ensure_ascii=False, indent=None if args.json else 2))
