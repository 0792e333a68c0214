"""How soon imported cities reach the consumers of their events (a script, not a test; prints JSON).

    .venv/bin/python tests/bench/event_throughput.py [--cities 10000] [--batch 10000] [--postgres URL]

Starts its own stack on free ports in a temporary folder (SQLite; with --postgres or CITYPAIR_TEST_POSTGRES_URL
also a second run on fresh PostgreSQL databases), signs in as the admin and imports `--cities` varied cities
through the gateway (`POST /api/v1/cities/import`, `--batch` a request: one request by default, well under the
row cap). From the moment the last import request returned it records, in seconds:
- `published_s`: the profiles outbox relay has put every event on the PROFILES stream;
- `matching_visible_s`: matching answers `GET /cities/{last id}/partners` with 200 (its in-memory index, which
  its follower fills), and `matching_inbox_s`: its durable consumer has an inbox row for every city event;
- `pilot_zones_inbox_s`: pilot_zones' inbox holds a row for every city event (its database, read directly).
Events/s are the cities over the time from the import returning. The baseline, in the same run: JetStream's raw
delivery of those events to a plain pull consumer (`jetstream_raw_events_per_s`, fetching 256 at a time).
"""

import argparse
import asyncio
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from sqlalchemy.engine import make_url

from citypair_cli.stack import REPO_ROOT, Stack

sys.path.insert(0, str(REPO_ROOT))  # run as a script: make `tests.*` importable
from tests.bench.capacity import (  # noqa: E402
    create_databases,
    drop_databases,
    interrupts_deferred,
    log,
    new_city,
    stack_config,
)
from tests.support import ADMIN_EMAIL, ADMIN_PASSWORD, client_for, connect_nats  # noqa: E402

TIMEOUT_S = 600.0
CITY_EVENTS = "type LIKE 'profiles.city.%'"


def count_inbox(database_url: str) -> int:
    """Rows of city events in a service's inbox (SQLite file or PostgreSQL), read straight from its database."""
    url = make_url(database_url)
    query = f"SELECT count(*) FROM inbox WHERE {CITY_EVENTS}"  # noqa: S608 (a constant)
    if url.get_backend_name() == "sqlite":
        with sqlite3.connect(f"file:{url.database}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute(query).fetchone()[0]
    with psycopg.connect(url.set(drivername="postgresql").render_as_string(False)) as conn:
        return conn.execute(query).fetchone()[0]


async def stream_messages(stack: Stack) -> int:
    nc = await connect_nats(stack)
    try:
        return (await nc.jetstream().stream_info("PROFILES")).state.messages
    finally:
        await nc.close()


async def raw_delivery(stack: Stack, count: int) -> float:
    """Events/s at which JetStream hands the stream's last `count` city events to a plain pull consumer."""
    nc = await connect_nats(stack)
    try:
        js = nc.jetstream()
        last = (await js.stream_info("PROFILES")).state.last_seq
        config = ConsumerConfig(
            ack_policy=AckPolicy.NONE,
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=max(last - count + 1, 1),
        )
        sub = await js.pull_subscribe("profiles.city.>", stream="PROFILES", config=config)
        started, got = time.perf_counter(), 0
        while got < count:
            got += len(await sub.fetch(min(256, count - got), timeout=10))
        seconds = time.perf_counter() - started
        await sub.unsubscribe()
        return got / seconds
    finally:
        await nc.close()


def profile(stack: Stack, folder: Path, database: str, seconds: int = 12) -> list[subprocess.Popen]:
    """py-spy recordings (raw, for flame graphs) of the consuming services from the import's return on."""
    folder.mkdir(parents=True, exist_ok=True)
    spy = Path(sys.executable).parent / "py-spy"
    spies = []
    for name in ("profiles", "matching", "pilot_zones"):
        out = folder / f"{database.lower()}-{name}.txt"
        pid = str(stack.processes[name].pid)
        args = [str(spy), "record", "-p", pid, "-d", str(seconds), "-f", "raw", "-o", str(out), "--nonblocking"]
        spies.append(subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    return spies


def until(what: str, done: Callable[[], bool], since: float, poll: float = 0.05) -> float:
    """Seconds from `since` until `done()` holds."""
    deadline = time.perf_counter() + TIMEOUT_S
    while not done():
        if time.perf_counter() > deadline:
            raise TimeoutError(f"{what} not within {TIMEOUT_S:.0f} s")
        time.sleep(poll)
    seconds = time.perf_counter() - since
    log(f"  {what}: {seconds:.2f} s after the import returned")
    return seconds


def run(database: str, cities: int, batch: int, urls: dict[str, str], profile_dir: Path | None = None) -> dict:
    rng = random.Random(7)
    with tempfile.TemporaryDirectory(prefix="citypair-events-") as tmp:
        config = stack_config("single", Path(tmp) / "var", urls)
        stack = Stack(config)
        try:
            with interrupts_deferred("started"):
                stack.start(timeout=120)
            before = asyncio.run(stream_messages(stack))
            bodies = [
                [new_city(rng, f"Events {i}") for i in range(s, min(s + batch, cities))]
                for s in range(0, cities, batch)
            ]
            with client_for(config.gateway_url, ADMIN_EMAIL, ADMIN_PASSWORD) as admin:
                log(f"[{database}] importing {cities} cities, {batch} a request ...")
                started = time.perf_counter()
                ids: list[str] = []
                for rows in bodies:
                    response = admin.post("/api/v1/cities/import", json=rows, timeout=600)
                    assert response.status_code == 200, response.text[:500]
                    ids += [r["id"] for r in response.json()["rows"] if r["action"] != "rejected"]
                returned = time.perf_counter()
                assert len(ids) == cities, len(ids)
                log(f"  import returned after {returned - started:.1f} s")
                load_at_return = os.getloadavg()[0]
                spies = profile(stack, profile_dir, database) if profile_dir else []
                partners = f"/api/v1/cities/{ids[-1]}/partners"
                matching_db, pilot_db = config.database_url("matching"), config.database_url("pilot_zones")
                figures = {
                    "published_s": until(
                        "published", lambda: asyncio.run(stream_messages(stack)) - before >= cities, returned
                    ),
                    "matching_visible_s": until(
                        "visible in matching", lambda: admin.get(partners).status_code == 200, returned
                    ),
                    "matching_inbox_s": until("matching inbox", lambda: count_inbox(matching_db) >= cities, returned),
                    "pilot_zones_inbox_s": until(
                        "pilot_zones inbox", lambda: count_inbox(pilot_db) >= cities, returned
                    ),
                }
            for spy in spies:
                spy.wait()
            raw = asyncio.run(raw_delivery(stack, cities))
        finally:
            with interrupts_deferred("stopped"):
                stack.stop()
    result = {"database": database, "cities": cities, "per_request": batch, "import_s": round(returned - started, 2)}
    result |= {k: round(v, 2) for k, v in figures.items()}
    for name in ("matching_visible", "matching_inbox", "pilot_zones_inbox"):
        result[f"{name}_events_per_s"] = round(cities / figures[f"{name}_s"])
    result["jetstream_raw_events_per_s"] = round(raw)
    result["load_average_at_return"] = load_at_return
    result["target_met (matching visible <= 5 s)"] = figures["matching_visible_s"] <= 5.0
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cities", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=10_000, help="cities per import request (cap: 50,000)")
    parser.add_argument("--postgres", default=os.environ.get("CITYPAIR_TEST_POSTGRES_URL", ""))
    parser.add_argument("--profile", type=Path, help="a folder for py-spy recordings of the services meanwhile")
    parser.add_argument("--no-sqlite", action="store_true", help="only the PostgreSQL run")
    args = parser.parse_args(argv)
    runs = []
    if not args.no_sqlite:
        runs.append(run("SQLite", args.cities, args.batch, {}, args.profile))
    if args.postgres:
        urls = create_databases(args.postgres, "events")
        try:
            runs.append(run("PostgreSQL", args.cities, args.batch, urls, args.profile))
        finally:
            drop_databases(args.postgres, urls)
    print(json.dumps({"cpus": os.cpu_count(), "runs": runs}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
