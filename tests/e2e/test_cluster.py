"""The cluster under load and faults (issue 14): two replicas of every service, three clustered nats-servers
with every stream on all three, PostgreSQL; the supervisor restarts what dies.

A steady load of writes (cities, edits, imports, decisions) and reads runs while one NATS node, then one
replica of each service, is killed with SIGKILL. Every request goes into a ledger; at the end: no
acknowledged write lost, no effect applied twice, every projection equal to its source, no 5xx for a read
(a read cut mid-answer at a kill is sent again, as any client retries a GET), and a write's 5xx only at a kill,
covered by retrying it with its `Idempotency-Key`. The ledger is printed.
"""

import collections
import random
import threading
import time
import uuid

import httpx
import pytest

from citypair_cli.stack import SERVICES, Stack, StackConfig
from citypair_shared.idempotency import HEADER as IDEMPOTENCY_KEY
from citypair_shared.idempotency import new_key
from tests.support import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    POSTGRES_ADMIN_URL,
    city_body,
    client_for,
    create_user,
    eventually,
    fresh_database_url,
    query,
)

pytestmark = pytest.mark.skipif(not POSTGRES_ADMIN_URL, reason="replicas share PostgreSQL databases (CI sets it)")

LOAD_SECONDS = 55
KILL_NATS_AT, KILL_REPLICAS_AT = 12, 30
WORKERS = 4
WRITE_ATTEMPTS = 20  # a write retried (same key) this often, 0.5 s apart, before it counts as failed


class Ledger:
    """Every request's outcome, per operation."""

    def __init__(self):
        self.lock = threading.Lock()
        self.counts = collections.defaultdict(collections.Counter)
        self.server_errors: list[tuple[float, str, int]] = []
        self.created: dict[str, str] = {}  # idempotency key -> city id, acknowledged
        self.unacknowledged: list[str] = []  # keys whose every attempt failed
        self.unanswered_reads: list[tuple[float, str]] = []  # reads whose retry failed too
        self.population: dict[str, int] = {}  # city id -> last acknowledged population
        self.imported: dict[str, str] = {}  # external id -> name, acknowledged
        self.accepted: list[tuple[str, str]] = []

    def note(self, operation: str, status: int, started: float) -> None:
        with self.lock:
            self.counts[operation][status if status < 500 else "5xx"] += 1
            if status >= 500 or status == 0:
                self.server_errors.append((round(started, 1), operation, status))

    def table(self) -> str:
        lines = [f"{'operation':<12} " + " ".join(f"{k!s:>6}" for k in ("2xx", "4xx", "5xx", "conn"))]
        for operation, counter in sorted(self.counts.items()):
            buckets = collections.Counter()
            for status, n in counter.items():
                key = "5xx" if status == "5xx" else "conn" if status == 0 else f"{status // 100}xx"
                buckets[key] += n
            lines.append(f"{operation:<12} " + " ".join(f"{buckets[k]:>6}" for k in ("2xx", "4xx", "5xx", "conn")))
        return "\n".join(lines)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    var_dir = tmp_path_factory.mktemp("cluster")
    urls = {s.name: fresh_database_url(s.name, var_dir) for s in SERVICES if s.has_database}
    env = {"CITYPAIR_ADMIN_EMAIL": ADMIN_EMAIL, "CITYPAIR_ADMIN_PASSWORD": ADMIN_PASSWORD}
    config = StackConfig.on_free_ports(var_dir, replicas=2, nats_nodes=3, database_urls=urls, extra_env=env)
    stack = Stack(config)
    restarts: list[str] = []
    stopping = threading.Event()
    supervisor = threading.Thread(target=stack.supervise, args=(stopping, restarts.append), daemon=True)
    try:
        stack.start(timeout=240)
        supervisor.start()
        yield stack, restarts
    finally:
        stopping.set()
        if supervisor.is_alive():
            supervisor.join(timeout=5)
        stack.stop()


def send(client: httpx.Client, ledger: Ledger, operation: str, method: str, url: str, t0: float, **kwargs):
    started = time.monotonic() - t0
    try:
        response = client.request(method, url, **kwargs)
    except httpx.HTTPError:
        ledger.note(operation, 0, started)
        return None
    ledger.note(operation, response.status_code, started)
    return response


def read(client: httpx.Client, ledger: Ledger, operation: str, path: str, t0: float) -> None:
    """A GET; one cut before its answer came whole (a replica killed while sending it: the gateway retries only
    what a replica never began to answer) is sent once more, as an HTTP client retries an idempotent request."""
    if send(client, ledger, operation, "GET", path, t0) is None:
        response = send(client, ledger, operation, "GET", path, t0)
        if response is None or response.status_code >= 500:
            with ledger.lock:
                ledger.unanswered_reads.append((round(time.monotonic() - t0, 1), operation))


def write(client, ledger, operation, method, url, t0, **kwargs):
    """A write, retried with the same Idempotency-Key (POST) while the gateway says the service did not answer."""
    headers = {IDEMPOTENCY_KEY: new_key()} if method == "POST" else {}
    for _ in range(WRITE_ATTEMPTS):
        response = send(client, ledger, operation, method, url, t0, headers=headers, **kwargs)
        if response is not None and response.status_code < 500 and response.status_code != 409:
            return response
        if response is not None and response.status_code == 409 and "in-progress" not in response.text:
            return response
        time.sleep(0.5)
    return None


def worker(n: int, stack: Stack, token: str, ledger: Ledger, pairs: list, until: float, t0: float) -> None:
    rng = random.Random(n)
    mine: list[str] = []
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=stack.config.gateway_url, timeout=30, headers=auth) as client:
        while time.monotonic() < until:
            roll = rng.random()
            if roll < 0.25 or not mine:
                name = f"Cluster {n} {uuid.uuid4().hex[:8]}"
                body = city_body(name, country_code=rng.choice(["CN", "KZ", "UZ", "PK"]))
                response = write(client, ledger, "create", "POST", "/api/v1/cities", t0, json=body)
                if response is not None and response.status_code == 201:
                    with ledger.lock:
                        ledger.created[name] = response.json()["id"]
                    mine.append(response.json()["id"])
                elif response is None:
                    ledger.unacknowledged.append(name)
            elif roll < 0.40:
                city, population = rng.choice(mine), rng.randrange(1_000, 50_000_000)
                path = f"/api/v1/cities/{city}"
                response = write(client, ledger, "edit", "PATCH", path, t0, json={"population": population})
                if response is not None and response.status_code == 200:
                    ledger.population[city] = population  # only this worker edits its cities
            elif roll < 0.45:
                external = f"ext-{uuid.uuid4().hex[:10]}"
                rows = [{**city_body(f"Imported {external}"), "external_id": external}]
                response = write(client, ledger, "import", "POST", "/api/v1/cities/import", t0, json=rows)
                if response is not None and response.status_code == 200:
                    with ledger.lock:
                        ledger.imported[external] = f"Imported {external}"
            elif roll < 0.48 and pairs:
                with ledger.lock:
                    pair = pairs.pop() if pairs else None
                if pair:
                    decide(stack, ledger, pair, t0)
            else:
                city = rng.choice(mine)
                for operation, path in (
                    ("read", f"/api/v1/cities/{city}"),
                    ("search", "/api/v1/cities?q=Cluster&limit=20"),
                    ("partners", f"/api/v1/cities/{city}/partners"),
                ):
                    read(client, ledger, operation, path, t0)


def decide(stack: Stack, ledger: Ledger, pair: tuple, t0: float) -> None:
    """Both cities' officials accept (each decision retried with its own key)."""
    (a, official_a), (b, official_b) = pair
    for city, other, signed_in in ((a, b, official_a), (b, a, official_b)):
        with httpx.Client(base_url=stack.config.gateway_url, timeout=30, headers=signed_in) as client:
            body = {"decision": "accept", "reason": "complementary_themes"}
            response = write(
                client, ledger, "decision", "POST", f"/api/v1/matches/{city}/{other}/decision", t0, json=body
            )
            if response is None or response.status_code not in (201, 409):
                return
    with ledger.lock:
        ledger.accepted.append((a, b))


def kill(stack: Stack, parts: list[str], events: list) -> None:
    for part in parts:
        stack.processes[part].kill()
        events.append((part, time.monotonic()))


def test_cluster_survives_kills_under_load_with_nothing_lost_or_doubled(cluster):
    stack, restarts = cluster
    gateway = stack.config.gateway_url
    ledger = Ledger()
    with client_for(gateway, ADMIN_EMAIL, ADMIN_PASSWORD) as admin:
        coordinator = create_user(admin, ["coordinator"])
        with client_for(gateway, coordinator["email"]) as client:
            token = client.headers["Authorization"].removeprefix("Bearer ")
            seeds = [
                client.post("/api/v1/cities", json=city_body(f"Seed {i} {uuid.uuid4().hex[:6]}", country_code=c)).json()
                for i, c in enumerate(["CN", "KZ"] * 4)
            ]
        pairs = []
        for a, b in zip(seeds[::2], seeds[1::2], strict=True):
            officials = []
            for city in (a, b):
                user = create_user(admin, ["official"], [city["id"]])
                with client_for(gateway, user["email"]) as official:
                    officials.append(dict(official.headers))
            pairs.append(((a["id"], officials[0]), (b["id"], officials[1])))

    t0 = time.monotonic()
    until = t0 + LOAD_SECONDS
    threads = [
        threading.Thread(target=worker, args=(n, stack, token, ledger, pairs, until, t0)) for n in range(WORKERS)
    ]
    for thread in threads:
        thread.start()
    kills: list = []
    time.sleep(KILL_NATS_AT)
    kill(stack, ["nats-2"], kills)
    time.sleep(KILL_REPLICAS_AT - KILL_NATS_AT)
    kill(stack, [s.name for s in SERVICES], kills)
    for thread in threads:
        thread.join(timeout=LOAD_SECONDS + 120)

    print("\n--- cluster ledger ---\n" + ledger.table())
    print("kills at", [(part, round(at - t0, 1)) for part, at in kills])
    print("server errors (s, operation, status):", ledger.server_errors)
    print("supervisor:", *restarts, sep="\n  ")

    # Every part killed was restarted by the supervisor, and answers again.
    assert {line.split()[0] for line in restarts} >= {"nats-2", *(s.name for s in SERVICES)}
    stack.wait_ready(timeout=120)

    # Reads never saw a 5xx: the gateway retried them on the other replica. A read cut mid-answer only at the
    # instant of a kill, and answered when sent again.
    kill_times = [at - t0 for _, at in kills]
    read_errors = [e for e in ledger.server_errors if e[1] in ("read", "search", "partners")]
    assert [e for e in read_errors if e[2] != 0] == [], read_errors
    assert [e for e in read_errors if not any(k - 1 <= e[0] <= k + 1 for k in kill_times)] == [], read_errors
    assert ledger.unanswered_reads == [], ledger.unanswered_reads
    # A write's 5xx only around a kill (from the kill to the replica's restart), and every write acknowledged.
    stray = [e for e in ledger.server_errors if not any(k - 1 <= e[0] <= k + 30 for k in kill_times)]
    assert stray == [], stray
    assert ledger.unacknowledged == [], ledger.unacknowledged

    profiles_db = stack.config.database_url("profiles")
    names = collections.Counter(name for (name,) in query(profiles_db, "SELECT name FROM city"))
    # No acknowledged write lost; none applied twice (one city per name, i.e. per Idempotency-Key).
    for name in ledger.created:
        assert names[name] == 1, (name, names[name])
    for external, name in ledger.imported.items():
        assert names[name] == 1, (external, names[name])
    populations = dict(query(profiles_db, "SELECT id, population FROM city"))
    lost = {c: (p, populations.get(c)) for c, p in ledger.population.items() if populations.get(c) != p}
    assert lost == {}, lost

    # Every projection equals its source once the events are through.
    source = set(query(profiles_db, "SELECT id, version FROM city WHERE status <> 'draft'"))

    def projected(service: str, table: str) -> set:
        return set(query(stack.config.database_url(service), f"SELECT id, version FROM {table}"))

    eventually(lambda: projected("matching", "city_projection") >= source, timeout=60, what="matching's projection")
    eventually(lambda: projected("pilot_zones", "known_city") >= source, timeout=60, what="pilot_zones' projection")
    # Each accepted pair recorded once, as one partnership, with one event's worth of effect.
    for a, b in ledger.accepted:
        lo, hi = sorted((a, b))
        rows = query(
            stack.config.database_url("matching"),
            "SELECT count(*) FROM partnership WHERE city_a = :lo AND city_b = :hi",
            lo=lo,
            hi=hi,
        )
        assert rows == [(1,)], (a, b, rows)
    assert sum(c[201] + c[200] for op, c in ledger.counts.items() if op in ("create", "edit")) > 50, ledger.table()
