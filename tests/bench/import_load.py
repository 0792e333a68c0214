"""A 20 MB import while the directory is in use, and whole-directory exports (a script, not a test).

    .venv/bin/python tests/bench/import_load.py [--base 10000] [--json]

On a fresh stack (free ports, temporary folder, SQLite unless CITYPAIR_PROFILES_DATABASE_URL says otherwise)
it imports `--base` cities (imports go straight to profiles; everything else through the gateway), then
measures the directory's latency through the gateway with nothing else
running (the baseline, measured again before the JSON import and the exports: the directory has grown), then the
same requests while a ~20 MB CSV import of 50,000 rows (the row cap) runs,
and while a ~20 MB JSON import runs; then exports the whole directory as CSV and as JSON. For each: the
directory's p50/p99 during it and their ratio to the baseline, and how far the profiles process's resident
memory rose above where it started (its peak, VmHWM, after resetting it; with its bulk worker process, whole
if the phase started it).
matching is stopped first (its events wait in JetStream): the figures are the profiles service's and the
gateway's alone on this 2-core machine, not those of matching taking in 70,000 new cities meanwhile.
Targets: directory p99 ≤ 100 ms during an import, profiles' memory +≤ 200 MB.
"""

import argparse
import json
import os
import random
import re
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from citypair_cli.stack import SERVICES, Stack, StackConfig
from citypair_profiles.tabular import COLUMNS
from citypair_shared.geography import CORRIDORS, INDICATORS
from citypair_shared.themes import THEME_IDS

ADMIN, PASSWORD = "bench@citypair.local", "bench-admin-password"
COUNTRIES = ["CN", "KZ", "UZ", "PK", "RU", "TR", "IR", "VN", "TH", "MY", "ID", "IN", "EG", "GR", "IT", "PL"]
GATEWAY_LIMIT = 20_000_000  # the gateway's 20MB (SI)
CSV_ROWS = 50_000


def city(rng: random.Random, i: int, tag: str) -> dict:
    """A profile with every field the import reads filled (wide rows: 50,000 make ~20 MB of CSV)."""
    return {
        "external_id": f"{tag}-{i}",
        "name": f"Bench {tag} City {i}",
        "local_name": f"本地城市 {i}",
        "alternate_names": [f"Alt {tag} {i}", f"Другое {i}"],
        "country_code": rng.choice(COUNTRIES),
        "admin_region": f"Region {rng.randint(1, 40)}",
        "latitude": round(rng.uniform(-60, 70), 4),
        "longitude": round(rng.uniform(-180, 180), 4),
        "population": rng.randint(50_000, 20_000_000),
        "timezone": "Asia/Almaty",
        "capacity": rng.randint(1, 10),
        "languages": ["en", "ru"],
        "corridors": rng.sample(sorted(CORRIDORS), 2),
        "preferred_countries": ["CN"],
        "themes": {t: {"offer": rng.randint(0, 5), "need": rng.randint(0, 5)} for t in THEME_IDS},
        "indicators": {
            key: {"value": round(rng.uniform(low, high), 1), "year": 2023}
            for key, (_, _, low, high) in INDICATORS.items()
        },
        "contacts": {"email": f"office{i}@example.org", "website": f"https://city-{i}.example.org/"},
    }


def as_csv_row(c: dict) -> dict:
    row = {k: c[k] for k in ("external_id", "name", "local_name", "country_code", "admin_region", "latitude",
                            "longitude", "population", "timezone", "capacity")}  # fmt: skip
    for column in ("alternate_names", "languages", "corridors", "preferred_countries"):
        row[column] = "|".join(c[column])
    for theme, levels in c["themes"].items():
        row[f"offer_{theme}"], row[f"need_{theme}"] = levels["offer"], levels["need"]
    for key, indicator in c["indicators"].items():
        row[key], row[f"{key}_year"] = indicator["value"], indicator["year"]
    row["contact_email"], row["contact_website"] = c["contacts"]["email"], c["contacts"]["website"]
    return row


def csv_body(count: int, tag: str, seed: int) -> bytes:
    rng = random.Random(seed)
    lines = [",".join(COLUMNS)]
    for i in range(count):
        row = as_csv_row(city(rng, i, tag))
        lines.append(",".join(str(row.get(column, "")) for column in COLUMNS))
    return ("\n".join(lines) + "\n").encode()


def json_body(limit: int, tag: str, seed: int) -> tuple[bytes, int]:
    """As many profiles as fit in `limit` bytes of JSON, and how many."""
    rng = random.Random(seed)
    parts, size, i = [], 2, 0
    while True:
        item = json.dumps(city(rng, i, tag), ensure_ascii=False).encode()
        if size + len(item) + 1 > limit:
            return b"[" + b",".join(parts) + b"]", i
        parts.append(item)
        size += len(item) + 1
        i += 1


class Memory:
    """The profiles service's resident memory: its process and its bulk worker (the import's process, started at
    the first import): where each is, and its peak since `reset`. A worker started after `reset` counts whole."""

    def __init__(self, pid: int):
        self.pid = pid

    def _pids(self) -> list[int]:
        children = []
        for task in Path(f"/proc/{self.pid}/task").iterdir():
            children += [int(c) for c in (task / "children").read_text().split()]
        return [self.pid, *children]

    @staticmethod
    def _kilobytes(pid: int, field: str) -> int:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise KeyError(field)

    def reset(self) -> None:
        self.start = {}
        for pid in self._pids():
            Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM starts again from the current RSS
            self.start[pid] = self._kilobytes(pid, "VmRSS") / 1024

    def growth(self) -> float:
        return sum(self._kilobytes(pid, "VmHWM") / 1024 - self.start.get(pid, 0) for pid in self._pids())


class DirectoryLoad:
    """Threads sending directory requests through the gateway, one after another each, timing every one."""

    def __init__(self, base_url: str, sign_in, threads: int = 2):
        self.base_url, self.sign_in, self.threads = base_url, sign_in, threads
        self.samples: list[tuple[float, float, str]] = []  # (start, seconds, the filter: what slows shows by kind)
        self.errors = 0
        self._stop = threading.Event()

    def _run(self, seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(base_url=self.base_url, headers=self.sign_in(), timeout=30) as client:
            while not self._stop.is_set():
                params = rng.choice([{}, {"country": rng.choice(COUNTRIES)}, {"offers": f"ai:{rng.randint(2, 5)}"},
                                     {"q": f"city {rng.randint(1, 9999)}"}, {"sort": "-population"}])  # fmt: skip
                start = time.perf_counter()
                response = client.get("/api/v1/cities", params={**params, "limit": 20})
                self.samples.append((start, time.perf_counter() - start, ",".join(params) or "none"))
                if response.status_code == 401:  # the access token expired (a phase can outlast it)
                    client.headers.update(self.sign_in())
                self.errors += response.status_code != 200
                time.sleep(0.01)

    def __enter__(self) -> "DirectoryLoad":
        self._workers = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(self.threads)]
        for worker in self._workers:
            worker.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join()

    def between(self, start: float, end: float) -> list[float]:
        return [seconds * 1000 for begun, seconds, _ in self.samples if start <= begun <= end]

    def p99_by_kind(self, start: float, end: float) -> dict[str, float]:
        kinds: dict[str, list[float]] = {}
        for begun, seconds, kind in self.samples:
            if start <= begun <= end:
                kinds.setdefault(kind, []).append(seconds * 1000)
        return {kind: round(percentile(found, 99), 1) for kind, found in sorted(kinds.items())}


def outbox_drained(profiles_url: str, timeout: float = 900) -> None:
    """Wait until the profiles outbox relay has published every event (its backlog gauge stays at 0)."""
    deadline, zeros = time.monotonic() + timeout, 0
    time.sleep(2)  # the relay's first pass after a commit sets the gauge
    while zeros < 2:
        found = re.search(r"^outbox_backlog (\S+)$", httpx.get(profiles_url + "/metrics").text, re.MULTILINE)
        zeros = zeros + 1 if found and float(found.group(1)) == 0 else 0
        if time.monotonic() > deadline:
            raise TimeoutError("the outbox did not drain")
        time.sleep(1)


def percentile(samples: list[float], q: int) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1] if len(samples) > 1 else samples[0]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def during(load: DirectoryLoad, memory: Memory, action) -> dict:
    """Run `action()` under the directory load: its time, the directory's latency meanwhile, memory growth."""
    memory.reset()
    start = time.perf_counter()
    result = action()
    end = time.perf_counter()
    latencies = load.between(start, end)
    return {
        "seconds": round(end - start, 2),
        "directory_requests": len(latencies),
        "directory_p50_ms": round(statistics.median(latencies), 1),
        "directory_p99_ms": round(percentile(latencies, 99), 1),
        "directory_max_ms": round(max(latencies), 1),
        "directory_p99_ms_by_filter": load.p99_by_kind(start, end),
        "rss_growth_mb": round(memory.growth(), 1),
        **(result or {}),
    }


def run(base: int, rows: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="citypair-bench-") as tmp:
        env = {f"{s.env_prefix}LOG_LEVEL": "WARNING" for s in SERVICES}
        env |= {"CITYPAIR_ADMIN_EMAIL": ADMIN, "CITYPAIR_ADMIN_PASSWORD": PASSWORD}
        config = StackConfig.on_free_ports(Path(tmp) / "var", extra_env=env)
        with Stack(config) as stack:
            stack.stop_part("matching")

            def sign_in() -> dict:
                token = httpx.post(
                    f"{config.gateway_url}/api/v1/auth/token", data={"username": ADMIN, "password": PASSWORD}
                ).json()["access_token"]
                return {"Authorization": f"Bearer {token}"}

            gateway = httpx.Client(base_url=config.gateway_url, timeout=600)
            memory = Memory(stack.processes["profiles"].pid)

            # Straight to the service: on a machine this loaded a 50,000-row import can take longer than the
            # gateway's 5 minutes for an import's answer (it took 162 s alone, and more under the directory load).
            profiles = httpx.Client(base_url=config.service_url("profiles"), timeout=1800)

            def import_(body: bytes, media: str, rows: int) -> dict:
                headers = {**sign_in(), "Content-Type": media}
                response = profiles.post("/api/v1/cities/import", content=body, headers=headers)
                assert response.status_code == 200, response.text[:500]
                report = response.json()
                assert report["accepted"] == rows, (report["accepted"], report["rejected"], report["rows"][:3])
                return {"rows": rows, "mb": round(len(body) / 1e6, 1)}

            def export(fmt: str) -> dict:
                start = time.perf_counter()
                first, size = None, 0
                params, headers = {"format": fmt}, sign_in()
                with gateway.stream("GET", "/api/v1/cities/export", params=params, headers=headers) as response:
                    assert response.status_code == 200
                    for chunk in response.iter_bytes():
                        first = first or time.perf_counter() - start
                        size += len(chunk)
                return {"first_byte_s": round(first, 3), "mb": round(size / 1e6, 1)}

            log(f"importing a base of {base} cities ...")
            import_(csv_body(base, "base", 1), "text/csv", base)
            profiles_url = config.service_url("profiles")
            outbox_drained(profiles_url)
            csv_20mb = csv_body(rows, "csv", 2)
            json_20mb, json_rows = json_body(GATEWAY_LIMIT - 1000, "json", 3)
            # Other work on the machine shows in every figure: the load average says how much there was.
            figures: dict = {"base_cities": base, "load_average_at_start": os.getloadavg()[0]}
            with DirectoryLoad(config.gateway_url, sign_in) as load:
                time.sleep(1)
                figures["baseline"] = during(load, memory, lambda: time.sleep(15))
                log(f"baseline: {figures['baseline']}")
                figures["csv_import"] = during(load, memory, lambda: import_(csv_20mb, "text/csv", rows))
                log(f"csv import: {figures['csv_import']}")
                # Then the outbox relay publishes the import's 50,000 events (not part of the import's figures).
                figures["csv_import_events_published"] = during(load, memory, lambda: outbox_drained(profiles_url))
                log(f"its events published: {figures['csv_import_events_published']}")
                # The directory is 50,000 cities larger now: its own latency is measured again before each phase
                figures["baseline_before_json"] = during(load, memory, lambda: time.sleep(15))
                log(f"baseline before the JSON import: {figures['baseline_before_json']}")
                figures["json_import"] = during(load, memory, lambda: import_(json_20mb, "application/json", json_rows))
                log(f"json import: {figures['json_import']}")
                outbox_drained(profiles_url)
                figures["baseline_before_exports"] = during(load, memory, lambda: time.sleep(15))
                log(f"baseline before the exports: {figures['baseline_before_exports']}")
                total = gateway.get("/api/v1/cities", params={"limit": 1}, headers=sign_in()).json()["total"]
                for fmt in ("csv", "json"):
                    figures[f"{fmt}_export"] = {"cities": total, **during(load, memory, lambda f=fmt: export(f))}
                    log(f"{fmt} export: {figures[f'{fmt}_export']}")
            figures["directory_errors"] = load.errors
            figures["load_average_at_end"] = os.getloadavg()[0]
    baselines = {"csv_import": "baseline", "csv_import_events_published": "baseline",
                 "json_import": "baseline_before_json", "csv_export": "baseline_before_exports",
                 "json_export": "baseline_before_exports"}  # fmt: skip
    for phase, baseline in baselines.items():
        figures[phase]["p99_vs_baseline"] = round(
            figures[phase]["directory_p99_ms"] / figures[baseline]["directory_p99_ms"], 2
        )
    figures["targets_met"] = {
        f"{phase}: directory p99 ≤ 100 ms, memory +≤ 200 MB": figures[phase]["directory_p99_ms"] <= 100
        and figures[phase]["rss_growth_mb"] <= 200
        for phase in ("csv_import", "json_import")
    }
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=int, default=10_000, help="cities imported before the measured phases")
    parser.add_argument("--rows", type=int, default=CSV_ROWS, help="rows of the CSV import (50,000: ~19 MB)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args.base, args.rows)
    print(json.dumps(result, ensure_ascii=False, indent=None if args.json else 2))
