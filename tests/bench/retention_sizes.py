"""What a PostgreSQL stack keeps after a large load, and what pruning takes back (a script, not a test).

    .venv/bin/python tests/bench/retention_sizes.py [--cities 50000] [--postgres URL]

Starts a stack on free ports with a fresh PostgreSQL database per service (the server of --postgres or
CITYPAIR_TEST_POSTGRES_URL), imports `--cities` cities through the gateway (capacity.py's seeding, 500 a
request), and waits until every event is handled (matching knows the last city; pilot_zones' and identity's
inboxes stop growing). Then prints, per service: the database's size, the outbox's and inbox's rows and
table sizes, and the JetStream store on disk. Then prunes as each service's hourly job would 40 days later
(`retention.prune_once` with the default retention and `now` moved on: a sent outbox row is kept 7 days, an
inbox row the streams' 30 days and a day more), VACUUMs, and prints the same again. The streams themselves
drop events older than their max age (30 days) on their own; that cannot be hastened here, so the JetStream
figure is what 30 days of such a load hold at most.
"""

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from importlib import import_module
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))  # capacity.py beside this file
import capacity  # noqa: E402

from citypair_cli.stack import SERVICES, Stack  # noqa: E402
from citypair_shared.bus import STREAM_MAX_AGE  # noqa: E402
from citypair_shared.db import create_engine, create_session_factory  # noqa: E402
from citypair_shared.retention import Retention, prune_once  # noqa: E402

LATER = timedelta(days=40)
MB = 1024 * 1024


def plain(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def sizes(urls: dict[str, str], nats_dir: Path) -> dict:
    report = {}
    for name, url in urls.items():
        with psycopg.connect(plain(url), autocommit=True) as conn:
            row = {"database_mb": conn.execute("SELECT pg_database_size(current_database())").fetchone()[0] / MB}
            for table in ("outbox", "inbox"):
                if conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()[0] is None:
                    continue
                count = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608 - fixed names
                size = conn.execute("SELECT pg_total_relation_size(%s)", (table,)).fetchone()[0]
                row |= {f"{table}_rows": count, f"{table}_mb": size / MB}
        report[name] = {k: round(v, 1) if isinstance(v, float) else v for k, v in row.items()}
    used = subprocess.run(["du", "-sb", str(nats_dir)], capture_output=True, text=True, check=True).stdout.split()[0]
    report["jetstream_store_mb"] = round(int(used) / MB, 1)
    return report


def inbox_rows(urls: dict[str, str]) -> dict[str, int]:
    counts = {}
    for name, url in urls.items():
        with psycopg.connect(plain(url), autocommit=True) as conn:
            if conn.execute("SELECT to_regclass('inbox')").fetchone()[0] is not None:
                counts[name] = conn.execute("SELECT count(*) FROM inbox").fetchone()[0]
    return counts


def wait_until_settled(urls: dict[str, str], quiet_s: float = 10, timeout_s: float = 900) -> None:
    """Until no inbox has grown for `quiet_s` seconds."""
    deadline, last, since = time.monotonic() + timeout_s, None, time.monotonic()
    while time.monotonic() < deadline:
        counts = inbox_rows(urls)
        if counts != last:
            last, since = counts, time.monotonic()
            capacity.log(f"  inboxes: {counts}")
        elif time.monotonic() - since >= quiet_s:
            return
        time.sleep(2)
    raise TimeoutError("the consumers did not settle")


async def prune_later(urls: dict[str, str]) -> dict[str, dict[str, int]]:
    """Each service's prune, as its hourly job would run it LATER from now, with the default retention."""
    retention = Retention(outbox_kept=timedelta(days=7), stream_max_age=STREAM_MAX_AGE)
    pruned = {}
    for spec in SERVICES:
        if spec.name not in urls:
            continue
        models = import_module(f"{spec.package}.models")
        engine = create_engine(urls[spec.name])
        try:
            pruned[spec.name] = await prune_once(
                create_session_factory(engine),
                retention,
                outbox_model=getattr(models, "Outbox", None),
                inbox_model=getattr(models, "Inbox", None),
                idempotency_model=getattr(models, "IdempotencyRecord", None),
                now=datetime.now(UTC) + LATER,
            )
        finally:
            await engine.dispose()
    return pruned


def vacuum(urls: dict[str, str]) -> None:
    for url in urls.values():
        with psycopg.connect(plain(url), autocommit=True) as conn:
            conn.execute("VACUUM (ANALYZE)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cities", type=int, default=50_000)
    parser.add_argument("--postgres", default=os.environ.get("CITYPAIR_TEST_POSTGRES_URL"))
    args = parser.parse_args(argv)
    if not args.postgres:
        parser.error("a PostgreSQL server is needed: --postgres URL or CITYPAIR_TEST_POSTGRES_URL")
    urls = capacity.create_databases(args.postgres, "sizes")
    try:
        with tempfile.TemporaryDirectory(prefix="citypair-sizes-") as tmp:
            config = capacity.stack_config("single", Path(tmp) / "var", urls)
            stack = Stack(config)
            try:
                capacity.log(f"starting the stack in {tmp} ...")
                stack.start(timeout=120)
                started = time.perf_counter()
                capacity.seed(config.gateway_url, args.cities, random.Random(7))
                wait_until_settled(urls)
                loaded_s = time.perf_counter() - started
                before = sizes(urls, config.var_dir / "nats")
                pruned = asyncio.run(prune_later(urls))
                vacuum(urls)
                after = sizes(urls, config.var_dir / "nats")
            finally:
                stack.stop()
    finally:
        capacity.drop_databases(args.postgres, urls)
    report = {
        "cities": args.cities,
        "load_and_settle_s": round(loaded_s, 1),
        "after_the_load": before,
        f"pruned_as_{LATER.days}_days_later": pruned,
        "after_pruning_and_vacuum": after,
        "note": "VACUUM makes the space reusable inside each table; the files shrink only with VACUUM FULL",
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
