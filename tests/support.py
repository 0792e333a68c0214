"""Real parts for the tests: a nats-server we can stop and start, and fresh databases."""

import asyncio
import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import httpx
import nats
import psycopg
from nats.js.api import AckPolicy, ConsumerConfig
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from citypair_cli.stack import binary, free_port, wait_for_port
from citypair_shared.bus import inbox_prefix
from citypair_shared.bus_access import ADMIN, BusUser, nats_config, new_password, password_environment
from citypair_shared.db import sync_url
from citypair_shared.events import stream_of

# Set by .ci/run (e.g. postgresql://postgres@127.0.0.1:5432/postgres): tests then run on PostgreSQL.
POSTGRES_ADMIN_URL = os.environ.get("CITYPAIR_TEST_POSTGRES_URL", "")
_created_databases: list[str] = []


class NatsServer:
    """A nats-server with JetStream on a free port, its store in `store_dir`; stop() and start() at will.

    Open to anyone, unless given `users`: then it runs the stack's configuration for them
    (citypair_shared.bus_access), and each user and the admin connect with their `passwords`.
    """

    def __init__(self, store_dir: Path, port: int | None = None, users: Sequence[BusUser] | None = None):
        self.store_dir = store_dir
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None
        self.users = users
        names = [ADMIN, *(user.name for user in users)] if users is not None else []
        self.passwords = {name: new_password() for name in names}

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> "NatsServer":
        self.store_dir.mkdir(parents=True, exist_ok=True)
        args = [binary("nats-server"), "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self.store_dir)]
        if self.users is not None:
            conf = self.store_dir / "nats.conf"
            conf.write_text(nats_config(self.users, host="127.0.0.1", port=self.port, store_dir=str(self.store_dir)))
            args = [binary("nats-server"), "-c", str(conf)]
        env = {**os.environ, **password_environment(self.passwords)}
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        wait_for_port("127.0.0.1", self.port, "nats-server", self.process)
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


async def connect_nats(stack, user: str = ADMIN, **options) -> nats.NATS:
    """A connection to the stack's nats-server as `user`: the admin, the tooling's user, unless told."""
    password = stack.config.nats_passwords[user]
    url = stack.config.nats_url
    return await nats.connect(url, user=user, password=password, inbox_prefix=inbox_prefix(user), **options)


def stream_events(stack, subjects: str, stream: str | None = None) -> list[dict]:
    """Every CloudEvent on `subjects` now on the stream (by default the stream of `subjects`, an event type),
    read from the stream itself with an ephemeral consumer from its start: what JetStream stored, not the outbox."""

    async def read() -> list[dict]:
        nc = await connect_nats(stack)
        try:
            js = nc.jetstream()
            config = ConsumerConfig(ack_policy=AckPolicy.NONE)
            sub = await js.pull_subscribe(subjects, stream=stream or stream_of(subjects), config=config)
            pending = (await sub.consumer_info()).num_pending
            messages = []
            while len(messages) < pending:
                messages += await sub.fetch(min(256, pending - len(messages)), timeout=10)
            await sub.unsubscribe()
        finally:
            await nc.close()
        return [json.loads(m.data) for m in messages]

    return run_async(read())


def fresh_database_url(name: str, tmp_dir: Path) -> str:
    """A new, empty database for one service: PostgreSQL when configured, else a SQLite file."""
    if not POSTGRES_ADMIN_URL:
        return f"sqlite+aiosqlite:///{tmp_dir / f'{name}-{uuid.uuid4().hex[:8]}.db'}"
    database = f"citypair_t_{name}_{uuid.uuid4().hex[:10]}"
    admin = make_url(POSTGRES_ADMIN_URL)
    with _admin_connection() as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    _created_databases.append(database)
    return admin.set(drivername="postgresql+asyncpg", database=database).render_as_string(False)


DROP_DATABASES = """
import sys, psycopg
with psycopg.connect(sys.argv[1], autocommit=True) as conn:
    for name in sys.argv[2:]:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
"""


def drop_created_databases() -> None:
    """Drop this run's databases in a process of their own that outlives the run: each DROP DATABASE waits for
    a checkpoint, and the suite's hundreds took 204 s at its end, which nothing needs to wait for."""
    if _created_databases:
        url = make_url(POSTGRES_ADMIN_URL).set(drivername="postgresql").render_as_string(False)
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        subprocess.Popen(
            [sys.executable, "-c", DROP_DATABASES, url, *_created_databases], start_new_session=True, **quiet
        )
        _created_databases.clear()


def _admin_connection() -> psycopg.Connection:
    url = make_url(POSTGRES_ADMIN_URL).set(drivername="postgresql").render_as_string(False)
    return psycopg.connect(url, autocommit=True)


def query(database_url: str, sql: str, **params) -> list[tuple]:
    """Read a service's database directly (tests only: services never do this to each other)."""
    engine = create_engine(sync_url(database_url))
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(text(sql), params)]
    finally:
        engine.dispose()


def eventually(check, *, timeout: float = 10.0, interval: float = 0.05, what: str = "condition"):
    """Poll `check` until it returns something truthy; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def handled(stack, outcome: str = "handled") -> float:
    """matching's count of handled city registrations with this outcome, from its /metrics."""
    text = httpx.get(stack.config.service_url("matching") + "/metrics").text
    pattern = (
        rf'events_handled_total{{consumer="matching",outcome="{outcome}",type="profiles.city.registered.v1"}} (\S+)'
    )
    found = re.search(pattern, text)
    return float(found.group(1)) if found else 0.0


def city_body(name: str = "Xi'an", **overrides) -> dict:
    body = {
        "name": name,
        "country_code": "CN",
        "latitude": 34.26,
        "longitude": 108.93,
        "population": 12_900_000,
        "themes": {"ai": {"offer": 5, "need": 1}, "ecommerce": {"offer": 1, "need": 4}},
    }
    return {**body, **overrides}


def partner_of(body: dict, name: str, country_code: str = "KZ") -> dict:
    """A city that offers what `body` needs and needs what it offers: a perfect two-sided match."""
    themes = {t: {"offer": v["need"], "need": v["offer"]} for t, v in body["themes"].items()}
    return city_body(
        name, country_code=country_code, latitude=43.25, longitude=76.9, population=2_000_000, themes=themes
    )


def partner_ids(client: httpx.Client, city_id: str, k: int = 50) -> list[str]:
    response = client.get(f"/api/v1/cities/{city_id}/partners", params={"k": k})
    if response.status_code != 200:
        return []
    return [p["city_id"] for p in response.json()["items"]]


ADMIN_EMAIL, ADMIN_PASSWORD = "admin@test.citypair", "admin-password-for-tests"
PASSWORD = "a-long-test-password"


def sign_in(base_url: str, email: str, password: str) -> httpx.Response:
    return httpx.post(f"{base_url}/api/v1/auth/token", data={"username": email, "password": password}, timeout=30)


def client_for(base_url: str, email: str, password: str = PASSWORD) -> httpx.Client:
    """An HTTP client signed in as this user."""
    response = sign_in(base_url, email, password)
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    return httpx.Client(base_url=base_url, timeout=30, headers={"Authorization": f"Bearer {token}"})


def create_user(admin: httpx.Client, roles: list[str], city_ids: list[str] = ()) -> dict:
    email = f"{'-'.join(roles)}-{uuid.uuid4().hex[:8]}@test.citypair"
    response = admin.post(
        "/api/v1/users", json={"email": email, "password": PASSWORD, "roles": roles, "city_ids": list(city_ids)}
    )
    assert response.status_code == 201, response.text
    return response.json()


def run_async(coroutine):
    """Run a coroutine to completion on its own thread (Playwright's sync API may own this thread's loop)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()
