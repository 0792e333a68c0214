"""Every page's server time with 25,000 cities, in Debian's Chromium (a script, not a test).

    .venv/bin/python tests/bench/pages.py [--cities 25000] [--partnerships 3000] [--runs 5] [--json]

On a fresh stack (free ports, temporary folder, SQLite unless CITYPAIR_<SERVICE>_DATABASE_URL says otherwise) it
imports N generated cities and partnerships among them as tests/bench/map.py does, waits until matching has taken
in every registration, then creates what the pages need (tests/e2e/browser/site.py: cities, users, proposals, a
round) and opens every page as each kind of user that sees it differently, `--runs` times, measuring with Navigation
Timing: the server's part (`responseStart - requestStart`) and the whole load (`duration`). It prints a table on
stderr and JSON on stdout: the medians per page, the load average (the machine may be shared) and the pages over
the target, ≤ 300 ms server time (issue 18, item 6).
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

from citypair_cli.stack import REPO_ROOT, SERVICES, Stack, StackConfig

sys.path.insert(0, str(REPO_ROOT))  # run as a script: make `tests.*` importable
from tests.bench.map import ADMIN, CHROMIUM_ARGS, PASSWORD, load, log  # noqa: E402
from tests.e2e.browser.site import ROLES, seed, signed_in  # noqa: E402
from tests.support import client_for  # noqa: E402

TARGET_SERVER_MS = 300
PAGE_TIMEOUT_MS = 120_000
NAVIGATION = "JSON.parse(JSON.stringify(performance.getEntriesByType('navigation')[0]))"


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def measure(config: StackConfig, runs: int) -> list[dict]:
    from playwright.sync_api import sync_playwright

    base = config.gateway_url
    with client_for(base, ADMIN, PASSWORD) as admin:
        site = seed(base, admin, (ADMIN, PASSWORD))
    rows = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        pages = {role: signed_in(browser, base, site.users.get(role)) for role in ROLES}
        for visit in site.visits:
            page, server, whole, statuses = pages[visit.role], [], [], set()
            for _ in range(runs):
                # A page slower than the gateway's timeout comes back as its error page: counted, and said.
                statuses.add(page.goto(visit.url(base), timeout=PAGE_TIMEOUT_MS).status)
                timing = page.evaluate(NAVIGATION)
                server.append(timing["responseStart"] - timing["requestStart"])
                whole.append(timing["duration"])
            row = {
                "role": visit.role,
                "path": visit.path,
                "server_median_ms": round(statistics.median(server), 1),
                "duration_median_ms": round(statistics.median(whole), 1),
                "server_ms": [round(x, 1) for x in server],
                "statuses": sorted(statuses),
                "expected_status": visit.status,
                "loadavg": loadavg(),
            }
            answered = "" if statuses == {visit.status} else f"  answered {sorted(statuses)}"
            log(
                f"  {row['server_median_ms']:7.0f} {row['duration_median_ms']:7.0f}  {visit.role:<12} {visit.path}"
                + answered
            )
            rows.append(row)
        browser.close()
    return rows


def run(cities: int, partnerships: int, runs: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="citypair-bench-") as tmp:
        env = {f"{s.env_prefix}LOG_LEVEL": "WARNING" for s in SERVICES}
        env |= {"CITYPAIR_ADMIN_EMAIL": ADMIN, "CITYPAIR_ADMIN_PASSWORD": PASSWORD}
        config = StackConfig.on_free_ports(Path(tmp) / "var", extra_env=env)
        with Stack(config):
            loaded = load(config, cities, partnerships)
            log(f"server and whole time in ms, median of {runs}; load average {loadavg()}")
            rows = measure(config, runs)
    over = [f"{r['role']} {r['path']}" for r in rows if r["server_median_ms"] > TARGET_SERVER_MS]
    failed = [f"{r['role']} {r['path']}: {r['statuses']}" for r in rows if r["statuses"] != [r["expected_status"]]]
    return {
        **loaded,
        "runs": runs,
        "cpus": os.cpu_count(),
        "pages": rows,
        "target_server_ms": TARGET_SERVER_MS,
        "over_target": over,
        "wrong_status": failed,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cities", type=int, default=25_000)
    parser.add_argument("--partnerships", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures = run(args.cities, args.partnerships, args.runs)
    print(json.dumps(figures, ensure_ascii=False, indent=None if args.json else 2))
