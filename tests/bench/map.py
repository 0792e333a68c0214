"""The map at 25,000 cities, in Debian's Chromium (a script, not a test).

    .venv/bin/python tests/bench/map.py [--cities 25000] [--partnerships 3000] [--json]

On a fresh stack (free ports, temporary folder, SQLite unless CITYPAIR_<SERVICE>_DATABASE_URL says otherwise) it
imports N generated cities and real-looking partnerships among them, waits until matching has taken in every
event they caused (so that nothing else runs while it measures), then signs in as an admin and measures, median of 5:
- `/map`: Navigation Timing, the whole load (`duration`) and the server's part (`responseStart - requestStart`);
- `/map/cities.json` as built by web: the first request after a change (every page read from profiles), the next
  ones (one revalidation at profiles, 304), and the browser's revalidation of its copy (304 from web); its size;
- in the page: from navigation to the map drawn with every city, a zoom, and a filter applied (each to its frame).
Targets: `/map` ≤ 300 ms (issue 18, item 6); the map drawn ≤ 3 s; a zoom or a filter within 100 ms.
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
from citypair_shared.geography import CORRIDORS
from citypair_shared.themes import THEME_IDS

ADMIN, PASSWORD = "bench@citypair.local", "bench-admin-password"
# Codes and the names the twin-city import reads (citypair_profiles.partnering.country_code).
COUNTRIES = {
    "CN": "China",
    "KZ": "Kazakhstan",
    "UZ": "Uzbekistan",
    "PK": "Pakistan",
    "RU": "Russia",
    "TR": "Turkey",
    "IR": "Iran",
    "VN": "Vietnam",
    "TH": "Thailand",
    "MY": "Malaysia",
    "ID": "Indonesia",
    "IN": "India",
    "EG": "Egypt",
    "GR": "Greece",
    "IT": "Italy",
    "PL": "Poland",
}
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
# Click or change, then wait two frames: the time until the map has been drawn again.
TIMED_ACTION = """async (act) => {
  const start = performance.now();
  if (act === "zoom") document.getElementById("map-zoom-in").click();
  else {
    const select = document.getElementById("map-offers");
    select.value = select.value ? "" : "ai";
    select.dispatchEvent(new Event("change", { bubbles: true }));
  }
  await new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)));
  return performance.now() - start;
}"""


def generated(n: int, partnerships: int, seed: int = 7) -> tuple[list[dict], str]:
    """N cities (about half the themes set, up to two corridors) and twin-city rows pairing some of them."""
    rng = random.Random(seed)
    cities = []
    for i in range(n):
        code = rng.choice(sorted(COUNTRIES))
        themes = {t: {"offer": rng.randint(0, 5), "need": rng.randint(0, 5)} for t in THEME_IDS if rng.random() < 0.5}
        cities.append(
            {
                "name": f"Map Bench {i}",
                "country_code": code,
                "latitude": round(rng.uniform(-55, 70), 4),
                "longitude": round(rng.uniform(-180, 180), 4),
                "population": rng.randint(50_000, 20_000_000),
                "themes": themes,
                "corridors": rng.sample(sorted(CORRIDORS), rng.randint(0, 2)),
            }
        )
    rows = ["city1,country1,lat1,lng1,city2,country2,lat2,lng2"]
    for a, b in (rng.sample(cities, 2) for _ in range(partnerships)):
        rows.append(
            f"{a['name']},{COUNTRIES[a['country_code']]},{a['latitude']},{a['longitude']},"
            f"{b['name']},{COUNTRIES[b['country_code']]},{b['latitude']},{b['longitude']}"
        )
    return cities, "\n".join(rows) + "\n"


def handled_events(matching_url: str) -> float:
    """Every event matching has handled (registrations, and the updates the partnerships made)."""
    text = httpx.get(matching_url + "/metrics").text
    return sum(float(v) for v in re.findall(r"^events_handled_total\{[^}]*\} (\S+)", text, re.M))


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def median(samples: list[float]) -> float:
    return round(statistics.median(samples), 1)


def load(config: StackConfig, n: int, partnerships: int) -> dict:
    token = httpx.post(f"{config.gateway_url}/api/v1/auth/token", data={"username": ADMIN, "password": PASSWORD})
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    cities, twins = generated(n, partnerships)
    start = time.perf_counter()
    with httpx.Client(base_url=config.gateway_url, headers=headers, timeout=600) as client:
        for chunk in (cities[i : i + 10_000] for i in range(0, n, 10_000)):
            response = client.post("/api/v1/cities/import", json=chunk)
            assert response.status_code == 200 and response.json()["accepted"] == len(chunk), response.text[:500]
        created = client.post(
            "/api/v1/cities/partnerships/import", content=twins, headers={"Content-Type": "text/csv"}
        ).json()["created"]
    log(f"imported {n} cities and {created} partnerships in {time.perf_counter() - start:.0f} s; waiting for matching")
    handled, quiet_since = -1.0, time.perf_counter()
    while time.perf_counter() - quiet_since < 5:  # nothing handled for 5 s: matching has caught up
        if time.perf_counter() - start > 1200:
            raise TimeoutError("matching did not catch up in 20 minutes")
        now = handled_events(config.service_url("matching"))
        if now != handled or now < n:
            handled, quiet_since = now, time.perf_counter()
        time.sleep(0.5)
    log(f"matching has handled {handled:.0f} events, the last {time.perf_counter() - start - 5:.0f} s after the start")
    return {"cities": n, "partnerships": created}


def measure(config: StackConfig) -> dict:
    from playwright.sync_api import sync_playwright

    base = config.gateway_url
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.goto(base + "/")
        page.fill("#email", ADMIN)
        page.fill("#password", PASSWORD)
        page.click("form[action='/sign-in'] button[type=submit]")
        page.wait_for_url(base + "/")

        def timed_get(**headers) -> tuple[float, object]:
            start = time.perf_counter()
            response = context.request.get(base + "/map/cities.json", headers=headers)
            return (time.perf_counter() - start) * 1000, response

        first, response = timed_get(**{"Accept-Encoding": "gzip"})
        body, etag, sent = response.body(), response.headers["etag"], int(response.headers["content-length"])
        again = [timed_get()[0] for _ in range(5)]
        revalidated = [timed_get(**{"If-None-Match": etag})[0] for _ in range(5)]

        whole, server, drawn, zooms, filters = [], [], [], [], []
        for _ in range(5):
            start = time.perf_counter()
            page.goto(base + "/map")
            page.wait_for_selector("#map-view[data-ready=true]", timeout=60_000)
            drawn.append((time.perf_counter() - start) * 1000)
            timing = page.evaluate("JSON.parse(JSON.stringify(performance.getEntriesByType('navigation')[0]))")
            whole.append(timing["duration"])
            server.append(timing["responseStart"] - timing["requestStart"])
            zooms.append(page.evaluate(TIMED_ACTION, "zoom"))
            filters.append(page.evaluate(TIMED_ACTION, "filter"))
        browser.close()
    figures = {
        "map_page_duration_median_ms": median(whole),
        "map_page_server_median_ms": median(server),
        "cities_json_first_build_ms": round(first, 1),
        "cities_json_median_ms": median(again),
        "cities_json_revalidated_median_ms": median(revalidated),
        "cities_json_bytes": len(body),
        "cities_json_sent_bytes": sent,
        "map_drawn_median_ms": median(drawn),
        "zoom_redraw_median_ms": median(zooms),
        "filter_redraw_median_ms": median(filters),
    }
    figures["targets_met"] = {
        "/map ≤ 300 ms": figures["map_page_duration_median_ms"] <= 300,
        "map drawn ≤ 3 s": figures["map_drawn_median_ms"] <= 3000,
        "zoom and filter ≤ 100 ms": max(figures["zoom_redraw_median_ms"], figures["filter_redraw_median_ms"]) <= 100,
    }
    return figures


def run(cities: int, partnerships: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="citypair-bench-") as tmp:
        env = {f"{s.env_prefix}LOG_LEVEL": "WARNING" for s in SERVICES}
        env |= {"CITYPAIR_ADMIN_EMAIL": ADMIN, "CITYPAIR_ADMIN_PASSWORD": PASSWORD}
        config = StackConfig.on_free_ports(Path(tmp) / "var", extra_env=env)
        with Stack(config):
            loaded = load(config, cities, partnerships)
            return {**loaded, **measure(config)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cities", type=int, default=25_000)
    parser.add_argument("--partnerships", type=int, default=3000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    print(json.dumps(run(args.cities, args.partnerships), ensure_ascii=False, indent=None if args.json else 2))
