"""Capacity per operation under closed-loop load, through the gateway (a script, not a test).

    .venv/bin/python tests/bench/capacity.py [--mode single|cluster|both] [--concurrency 16] [--seconds 30]
        [--cities 2000] [--postgres URL]

Starts its own stack on free ports in a temporary folder: `single` is one process per service (SQLite, or fresh
PostgreSQL databases when --postgres or CITYPAIR_TEST_POSTGRES_URL gives a server), `cluster` two replicas of
every service and three clustered nats-servers (PostgreSQL required). It seeds it: the admin signs in, creates a
coordinator, imports N varied cities (JSON, 500 a request), waits until matching knows the last one, then creates
an official of the first 20 cities, who drafts 40 pilot-zone proposals.
Then, one operation at a time, `--concurrency` clients each send the next request as soon as the previous one
is answered, for `--seconds` (after an unmeasured warm-up), all to the gateway's loopback address. Operations:
the gateway's baseline (`GET /healthz`, which Caddy passes to web), directory search, profile read, partners,
the pilot-zone list, an edit (PATCH population), a create (POST with an Idempotency-Key) and an official's
decline (`too_far`, each on a pair not decided before). After the writes it lets the events settle.
Prints, per mode, a table: requests, successful req/s, p50/p99 of successful answers, errors (any other
status, or no answer), req/s as a percentage of /healthz's, and the busiest parts: how many cores each kept busy
while measured (CPU seconds from /proc over the wall time; `client` is this script, `postgres` every PostgreSQL
process); with `--mode both` also cluster/single per operation. The load generator is one asyncio thread on the
same machine: it competes with the stack for the CPUs, and a part near 1.00 is one Python process at its limit.
Progress goes to stderr, the tables to stdout.
"""

import argparse
import asyncio
import contextlib
import datetime
import itertools
import os
import platform
import random
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
from sqlalchemy.engine import make_url

from citypair_cli.stack import REPO_ROOT, SERVICES, Stack, StackConfig
from citypair_shared.idempotency import HEADER as IDEMPOTENCY_KEY
from citypair_shared.idempotency import new_key
from citypair_shared.themes import THEME_IDS

sys.path.insert(0, str(REPO_ROOT))  # run as a script: make `tests.support` importable
from tests.support import ADMIN_EMAIL, ADMIN_PASSWORD, PASSWORD, city_body, client_for, create_user, sign_in  # noqa: E402

BATCH = 500  # cities per import request
OFFICIAL_CITIES = 20  # the official's cities (a user has at most 50)
PROPOSALS = 40
WARMUP_S = 1.0
REQUEST_TIMEOUT_S = 30.0
SETTLE_TIMEOUT_S = 300.0
COUNTRIES = ["CN", "KZ", "UZ", "PK", "RU", "TR", "IR", "VN", "TH", "MY", "ID", "IN", "EG", "GR", "IT", "PL"]
PREFIXES = ["Al", "Bar", "Kar", "Tash", "Sam", "Nov", "Os", "Ur", "Bel", "Xin", "Lan", "Mer", "Dor", "Ker", "Pol"]
SUFFIXES = ["abad", "grad", "kent", "pur", "ton", "ville", "stan", "an", "sk", "ia", "ova", "hai", "tepe", "zhou"]
ENV = {
    "CITYPAIR_ADMIN_EMAIL": ADMIN_EMAIL,
    "CITYPAIR_ADMIN_PASSWORD": ADMIN_PASSWORD,
    "CITYPAIR_IDENTITY_ACCESS_TOKEN_MINUTES": "15",  # outlasts any phase (--seconds ≤ 600); signed in per phase
    **{f"{s.env_prefix}LOG_LEVEL": "WARNING" for s in SERVICES},
}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- the stack ---------------------------------------------------------------------------------------------


def create_databases(admin_url: str, mode: str) -> dict[str, str]:
    """A fresh PostgreSQL database per service (shared by its replicas), as tests/support.py makes them."""
    server = make_url(admin_url)
    urls = {}
    with psycopg.connect(server.set(drivername="postgresql").render_as_string(False), autocommit=True) as conn:
        for spec in (s for s in SERVICES if s.has_database):
            name = f"citypair_bench_{mode}_{spec.name}_{uuid.uuid4().hex[:8]}"
            conn.execute(f'CREATE DATABASE "{name}"')
            urls[spec.name] = server.set(drivername="postgresql+asyncpg", database=name).render_as_string(False)
    return urls


def drop_databases(admin_url: str, urls: dict[str, str]) -> None:
    server = make_url(admin_url).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(server, autocommit=True) as conn:
        for url in urls.values():
            conn.execute(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')


@contextmanager
def interrupts_deferred(what: str) -> Iterator[None]:
    """Ctrl-C (or SIGTERM) while the stack starts or stops could land between a child's fork and its bookkeeping
    in Stack, leaving it running untracked: note it, and raise KeyboardInterrupt once `what` is done."""
    received: list[int] = []

    def note(signum, _frame) -> None:
        received.append(signum)
        log(f"signal {signum}: stopping once the stack has {what}")

    previous = {s: signal.signal(s, note) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if received:
        raise KeyboardInterrupt(f"signal {received[0]}")


def stack_config(mode: str, var_dir: Path, database_urls: dict[str, str]) -> StackConfig:
    cluster = {"replicas": 2, "nats_nodes": 3} if mode == "cluster" else {}
    return StackConfig.on_free_ports(var_dir, database_urls=database_urls, extra_env=ENV, **cluster)


# --- seeding -----------------------------------------------------------------------------------------------


def new_city(rng: random.Random, name: str) -> dict:
    """A published profile with a few themes, somewhere on the map."""
    themes = {t: {"offer": rng.randint(0, 5), "need": rng.randint(0, 5)} for t in rng.sample(THEME_IDS, 4)}
    return city_body(
        name,
        country_code=rng.choice(COUNTRIES),
        latitude=round(rng.uniform(-45, 65), 4),
        longitude=round(rng.uniform(-170, 170), 4),
        population=rng.randint(20_000, 20_000_000),
        themes=themes,
    )


def city_name(rng: random.Random, i: int) -> str:
    return f"{rng.choice(PREFIXES)}{rng.choice(SUFFIXES)} {i}"


def import_cities(client: httpx.Client, count: int, rng: random.Random) -> list[str]:
    """Import `count` cities in batches; their ids, in order."""
    ids: list[str] = []
    for start in range(0, count, BATCH):
        rows = [new_city(rng, city_name(rng, i)) for i in range(start, min(start + BATCH, count))]
        response = client.post("/api/v1/cities/import", json=rows, timeout=300)
        assert response.status_code == 200, response.text[:500]
        report = response.json()
        assert report["accepted"] == len(rows), [r for r in report["rows"] if r["action"] == "rejected"][:3]
        ids += [r["id"] for r in report["rows"]]
        log(f"  imported {len(ids)} / {count}")
    return ids


def wait_known(client: httpx.Client, city_id: str, what: str, times: int = 8) -> None:
    """Until matching lists partners for the city `times` answers in a row (every replica has it, very likely)."""
    deadline, streak = time.monotonic() + SETTLE_TIMEOUT_S, 0
    while streak < times:
        streak = streak + 1 if client.get(f"/api/v1/cities/{city_id}/partners").status_code == 200 else 0
        if time.monotonic() > deadline:
            raise TimeoutError(f"matching did not learn of {what} within {SETTLE_TIMEOUT_S:.0f} s")
        time.sleep(0.05 if streak else 0.5)


def draft_proposals(client: httpx.Client, pairs: list[tuple[str, str]]) -> None:
    """Pilot-zone drafts; pilot_zones may not know every city yet: a 422 is retried a while."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    for n, (a, b) in enumerate(pairs):
        body = {"title": f"Pilot zone {n}", "city_ids": [a, b], "themes": ["ai", "ecommerce"]}
        while (response := client.post("/api/v1/pilot-zones", json=body)).status_code == 422:
            if time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert response.status_code == 201, response.text[:500]


@dataclass
class Seeded:
    ids: list[str]
    official_ids: list[str]
    coordinator: str  # emails (the password is tests.support.PASSWORD)
    official: str


def seed(gateway_url: str, cities: int, rng: random.Random) -> Seeded:
    started = time.perf_counter()
    with client_for(gateway_url, ADMIN_EMAIL, ADMIN_PASSWORD) as admin:
        coordinator = create_user(admin, ["coordinator"])["email"]
        log(f"importing {cities} cities ...")
        ids = import_cities(admin, cities, rng)
        wait_known(admin, ids[-1], "the last imported city")
        official_ids = ids[:OFFICIAL_CITIES]
        official = create_user(admin, ["official"], official_ids)["email"]
    with client_for(gateway_url, official) as client:
        partners = ids[OFFICIAL_CITIES : OFFICIAL_CITIES + PROPOSALS]
        draft_proposals(client, [(official_ids[i % OFFICIAL_CITIES], b) for i, b in enumerate(partners)])
    log(f"seeded in {time.perf_counter() - started:.1f} s")
    return Seeded(ids, official_ids, coordinator, official)


# --- the load ----------------------------------------------------------------------------------------------

Request = tuple[str, dict]  # path, httpx keyword arguments


@dataclass
class Operation:
    name: str
    method: str
    expect: int
    next_request: Callable[[], Request | None]  # None: nothing left to send
    as_official: bool = False
    on_ok: Callable[[httpx.Response], None] | None = None
    write: bool = False


@dataclass
class Result:
    name: str
    latencies_ms: list[float] = field(default_factory=list)  # of successful answers
    errors: int = 0
    seconds: float = 0.0
    first_errors: list[str] = field(default_factory=list)
    busy: dict[str, float] = field(default_factory=dict)  # cores each part kept busy while measured

    def busiest(self, parts: int = 2) -> str:
        top = sorted(self.busy.items(), key=lambda item: -item[1])[:parts]
        return ", ".join(f"{name} {cores:.2f}" for name, cores in top)

    def failed(self, what: str) -> None:
        self.errors += 1
        if len(self.first_errors) < 3:
            self.first_errors.append(what)

    @property
    def requests(self) -> int:
        return len(self.latencies_ms) + self.errors

    @property
    def rate(self) -> float:
        return len(self.latencies_ms) / self.seconds if self.seconds else 0.0

    def percentile(self, q: int) -> float | None:
        samples = self.latencies_ms
        if len(samples) < 2:
            return samples[0] if samples else None
        return statistics.quantiles(samples, n=100, method="inclusive")[q - 1]


def operations(seeded: Seeded, rng: random.Random, last_created: list[str]) -> list[Operation]:
    ids, officials = seeded.ids, set(seeded.official_ids)
    edited = itertools.cycle(ids)  # a city is edited again only after all others: no two edits of one at once
    created = itertools.count()
    tag = uuid.uuid4().hex[:6]
    pairs = ((o, x) for x in ids if x not in officials for o in seeded.official_ids)  # each decided once
    decline = {"decision": "decline", "reason": "too_far"}

    def create() -> Request:
        body = new_city(rng, f"{city_name(rng, next(created))} {tag}")
        return "/api/v1/cities", {"json": body, "headers": {IDEMPOTENCY_KEY: new_key()}}

    def decide() -> Request | None:
        pair = next(pairs, None)
        return (f"/api/v1/matches/{pair[0]}/{pair[1]}/decision", {"json": decline}) if pair else None

    return [
        Operation("GET /healthz", "GET", 200, lambda: ("/healthz", {})),
        Operation("GET /cities?q=a", "GET", 200, lambda: ("/api/v1/cities", {"params": {"q": "a", "limit": 20}})),
        Operation("GET /cities/{id}", "GET", 200, lambda: (f"/api/v1/cities/{rng.choice(ids)}", {})),
        Operation("GET /cities/{id}/partners", "GET", 200, lambda: (f"/api/v1/cities/{rng.choice(ids)}/partners", {})),
        Operation("GET /pilot-zones", "GET", 200, lambda: ("/api/v1/pilot-zones", {"params": {"limit": 20}})),
        Operation(
            "PATCH /cities/{id}",
            "PATCH",
            200,
            lambda: (f"/api/v1/cities/{next(edited)}", {"json": {"population": rng.randint(20_000, 20_000_000)}}),
            write=True,
        ),
        Operation(
            "POST /cities",
            "POST",
            201,
            create,
            on_ok=lambda r: last_created.__setitem__(0, r.headers["location"].rsplit("/", 1)[-1]),
            write=True,
        ),
        Operation("POST /matches/{a}/{b}/decision", "POST", 201, decide, as_official=True, write=True),
    ]


async def closed_loop(client: httpx.AsyncClient, op: Operation, concurrency: int, seconds: float) -> Result:
    """`concurrency` workers, each sending its next request when the previous is answered, until time is up."""
    result = Result(op.name)
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < deadline and (request := op.next_request()) is not None:
            path, kwargs = request
            t0 = time.perf_counter()
            try:
                response = await client.request(op.method, path, **kwargs)
            except httpx.HTTPError as exc:
                result.failed(repr(exc))
                continue
            if response.status_code == op.expect:
                result.latencies_ms.append((time.perf_counter() - t0) * 1000)
                if op.on_ok:
                    op.on_ok(response)
            else:
                result.failed(f"{response.status_code} {response.text[:200]}")

    started = time.perf_counter()
    # Bounded: no request is sent after the deadline, and none waits longer than its timeout.
    async with asyncio.timeout(seconds + REQUEST_TIMEOUT_S + 5):
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.seconds = time.perf_counter() - started
    return result


def cpu_seconds(parts: dict[str, list[int]]) -> dict[str, float]:
    """CPU seconds (user + system) each group of processes has used so far, read from /proc (Linux; elsewhere
    nothing). `postgres` is every PostgreSQL process of the machine; a backend that ends meanwhile is missed."""
    if not Path("/proc/self/stat").exists():
        return {}
    groups = {**parts, "client": [os.getpid()], "postgres": []}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == "postgres":
                    groups["postgres"].append(int(entry.name))
    used = {}
    for name, pids in groups.items():
        used[name] = 0.0
        for pid in pids:
            with contextlib.suppress(OSError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                used[name] += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
    return used


async def measure_one(
    gateway_url: str, headers: dict, op: Operation, concurrency: int, seconds: float, parts: dict[str, list[int]]
) -> Result:
    """One operation's closed loop, and how many cores each part (`parts`: name -> pids) kept busy meanwhile."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=gateway_url, headers=headers, timeout=REQUEST_TIMEOUT_S, limits=limits, trust_env=False
    ) as client:
        await closed_loop(client, op, concurrency, min(WARMUP_S, seconds / 3))  # opens the connections
        before = cpu_seconds(parts)
        result = await closed_loop(client, op, concurrency, seconds)
        after = cpu_seconds(parts)
    result.busy = {name: (after[name] - before.get(name, 0.0)) / result.seconds for name in after}
    return result


def bearer(gateway_url: str, email: str, password: str = PASSWORD) -> dict[str, str]:
    response = sign_in(gateway_url, email, password)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def settle(gateway_url: str, headers: dict, last_created: str | None) -> None:
    """After a write phase: let its events reach matching before the next phase is measured."""
    time.sleep(2)  # edits' events have no cheap marker: a moment for them
    if last_created:
        with httpx.Client(base_url=gateway_url, headers=headers, timeout=30, trust_env=False) as client:
            wait_known(client, last_created, "the last created city")


def stack_pids(stack: Stack) -> dict[str, list[int]]:
    """The stack's process ids by what they run, a service's replicas together."""
    return {
        service: [stack.processes[part].pid for part in parts] for service, parts in stack.parts_by_service().items()
    }


def measure(stack: Stack, seeded: Seeded, args: argparse.Namespace) -> list[Result]:
    gateway_url = stack.config.gateway_url
    results = []
    last_created: list[str] = [""]
    for op in operations(seeded, random.Random(11), last_created):
        headers = bearer(gateway_url, seeded.official if op.as_official else seeded.coordinator)
        log(f"  {op.name}: {args.concurrency} clients for {args.seconds:g} s ...")
        result = asyncio.run(measure_one(gateway_url, headers, op, args.concurrency, args.seconds, stack_pids(stack)))
        cores = result.busiest(len(result.busy))
        log(f"    {result.requests} requests, {result.rate:.1f}/s, {result.errors} errors; cores: {cores}")
        for error in result.first_errors:
            log(f"    e.g. {error}")
        results.append(result)
        if op.write:
            settle(gateway_url, headers, last_created[0] if op.name == "POST /cities" else None)
    return results


# --- the run -----------------------------------------------------------------------------------------------


def run_mode(mode: str, args: argparse.Namespace) -> tuple[list[Result], float]:
    """Start a stack, seed it, measure every operation, stop it; the results and the load average at start."""
    load_at_start = os.getloadavg()[0]
    urls = create_databases(args.postgres, mode) if args.postgres else {}
    try:
        with tempfile.TemporaryDirectory(prefix=f"citypair-capacity-{mode}-") as tmp:
            config = stack_config(mode, Path(tmp) / "var", urls)
            stack = Stack(config)
            try:
                log(f"[{mode}] starting the stack in {tmp} (gateway {config.gateway_url}) ...")
                with interrupts_deferred("started"):
                    stack.start(timeout=240 if mode == "cluster" else 120)
                seeded = seed(config.gateway_url, args.cities, random.Random(7))
                log(f"[{mode}] measuring ...")
                return measure(stack, seeded, args), load_at_start
            finally:
                log(f"[{mode}] stopping the stack ...")
                with interrupts_deferred("stopped"):
                    stack.stop()
    finally:
        if urls:
            drop_databases(args.postgres, urls)


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table(mode: str, results: list[Result], load_at_start: float, database: str) -> str:
    shape = "2 replicas per service, 3 nats-servers" if mode == "cluster" else "one process per service"
    lines = [
        f"\n{mode}: {shape}, {database}; load average at its start {load_at_start:.2f}",
        f"{'operation (paths: /api/v1/...)':<32} {'requests':>9} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'errors':>7} {'% healthz':>10}  busiest parts (cores)",
    ]
    baseline = results[0].rate
    for r in results:
        share = f"{100 * r.rate / baseline:.1f}%" if baseline else "-"
        lines.append(
            f"{r.name:<32} {r.requests:>9} {r.rate:>9.1f} {fmt(r.percentile(50)):>8} {fmt(r.percentile(99)):>8} "
            f"{r.errors:>7} {share:>10}  {r.busiest()}"
        )
    return "\n".join(lines)


def ratios(single: list[Result], cluster: list[Result]) -> str:
    lines = [
        "\ncluster / single (req/s)",
        f"{'operation':<32} {'single':>9} {'cluster':>9} {'ratio':>7}",
    ]
    for s, c in zip(single, cluster, strict=True):
        ratio = f"{c.rate / s.rate:.2f}" if s.rate else "-"
        lines.append(f"{s.name:<32} {s.rate:>9.1f} {c.rate:>9.1f} {ratio:>7}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["single", "cluster", "both"], default="single")
    parser.add_argument("--concurrency", type=int, default=16, help="clients in the closed loop (default 16)")
    parser.add_argument("--seconds", type=float, default=30, help="measured seconds per operation (default 30)")
    parser.add_argument("--cities", type=int, default=2000, help="cities imported first (default 2000)")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("CITYPAIR_TEST_POSTGRES_URL", ""),
        help="PostgreSQL server URL to create fresh databases on (default $CITYPAIR_TEST_POSTGRES_URL; "
        "required for cluster); without it single mode uses SQLite",
    )
    args = parser.parse_args(argv)
    if args.concurrency < 1 or not 0 < args.seconds <= 600:
        parser.error("--concurrency must be positive and --seconds in (0, 600]")
    if args.cities < OFFICIAL_CITIES + PROPOSALS + 40:
        parser.error(f"--cities must be at least {OFFICIAL_CITIES + PROPOSALS + 40}")
    if args.mode in ("cluster", "both") and not args.postgres:
        parser.error(
            "cluster mode needs PostgreSQL (its replicas share databases): "
            "pass --postgres postgresql://user@host:5432/postgres or set CITYPAIR_TEST_POSTGRES_URL"
        )

    # SIGTERM unwinds like Ctrl-C (which asyncio.run turns into a clean cancellation), so every stack is stopped.
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started in the background
    signal.signal(signal.SIGTERM, lambda *_: signal.raise_signal(signal.SIGINT))
    database = "PostgreSQL" if args.postgres else "SQLite"
    print(f"citypair capacity, {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}")
    print(
        f"machine: {os.cpu_count()} CPUs, load average at start {os.getloadavg()[0]:.2f}, "
        f"{platform.platform()}, Python {platform.python_version()}"
    )
    print(f"closed loop: {args.concurrency} clients, {args.seconds:g} s per operation, {args.cities} cities")
    sys.stdout.flush()
    runs = {}
    try:
        for mode in ("single", "cluster") if args.mode == "both" else (args.mode,):
            runs[mode] = run_mode(mode, args)
            print(table(mode, *runs[mode], database), flush=True)
    except KeyboardInterrupt:
        log("interrupted: stacks stopped")
        return 130
    if len(runs) == 2:
        print(ratios(runs["single"][0], runs["cluster"][0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
