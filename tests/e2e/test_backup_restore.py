"""A restore drill on the embedded stack (docs/operations.md, Backup and restore): real processes and databases
(SQLite, or PostgreSQL with CITYPAIR_TEST_POSTGRES_URL). Back up while it runs, change things, wipe every
database, restore, start again: everything backed up is there, nothing after it, every consumer has what its
producers have, and no event was applied twice."""

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from citypair_cli.backup import database_urls
from citypair_cli.cli import app
from citypair_cli.stack import SERVICES, Stack, StackConfig
from citypair_shared.events import STREAMS
from tests.e2e.conftest import start_stack
from tests.support import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    POSTGRES_ADMIN_URL,
    city_body,
    client_for,
    connect_nats,
    create_user,
    eventually,
    partner_of,
    query,
    run_async,
)

# Rows that events make (an event applied twice would add one) and some the API makes, all counted in the
# manifest: once every event has been published again and consumed, each table has its backed-up count.
COUNTED = {
    "identity": ["user_account", "notification"],
    "profiles": ["city", "city_change"],
    "matching": ["match_decision", "match_pair", "partnership"],
    "pilot_zones": ["proposal", "timeline_entry", "known_city", "known_user"],
}


def env_of(config: StackConfig) -> dict[str, str]:
    """The environment under which `citypair` finds this stack (StackConfig.from_env)."""
    env = {
        "CITYPAIR_VAR_DIR": str(config.var_dir),
        "CITYPAIR_GATEWAY_PORT": str(config.gateway_port),
        "CITYPAIR_NATS_PORT": str(config.nats_port),
    }
    for spec in SERVICES:
        env[spec.env_prefix + "PORT"] = str(config.ports[spec.name])
        if spec.has_database:
            env[spec.env_prefix + "DATABASE_URL"] = config.database_url(spec.name)
    return env


def citypair(config: StackConfig, *args: str) -> str:
    result = CliRunner().invoke(app, list(args), env=env_of(config))
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def register(client: httpx.Client, body: dict) -> str:
    response = client.post("/api/v1/cities", json=body)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def cities(config: StackConfig) -> dict[str, list[tuple]]:
    """Each city's version in profiles, and in matching's and pilot_zones' projections of it."""
    return {
        "profiles": sorted(query(config.database_url("profiles"), "SELECT id, version FROM city")),
        "matching": sorted(query(config.database_url("matching"), "SELECT id, version FROM city_projection")),
        "pilot_zones": sorted(query(config.database_url("pilot_zones"), "SELECT id, version FROM known_city")),
    }


def in_step(config: StackConfig, count: int | None = None) -> bool:
    found = cities(config)
    return found["profiles"] == found["matching"] == found["pilot_zones"] and count in (None, len(found["profiles"]))


def outboxes_sent(config: StackConfig) -> bool:
    urls = database_urls(config).values()
    return all(query(url, "SELECT count(*) FROM outbox WHERE published_at IS NULL") == [(0,)] for url in urls)


def settled(stack: Stack) -> bool:
    """Every outbox row published, and every durable consumer with nothing pending."""

    async def pending() -> int:
        nc = await connect_nats(stack)
        try:
            js = nc.jetstream()
            infos = [info for stream in STREAMS for info in await js.consumers_info(stream) if info.config.durable_name]
            return sum(info.num_pending + info.num_ack_pending for info in infos)
        finally:
            await nc.close()

    return outboxes_sent(stack.config) and run_async(pending()) == 0


def counts(config: StackConfig) -> dict[str, dict[str, int]]:
    return {
        service: {t: query(config.database_url(service), f"SELECT count(*) FROM {t}")[0][0] for t in tables}
        for service, tables in COUNTED.items()
    }


def wipe(config: StackConfig) -> None:
    """Every service's database gone: SQLite files deleted, PostgreSQL databases dropped and made anew, empty."""
    for url in database_urls(config).values():
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            for suffix in ("", "-wal", "-shm"):
                Path(parsed.database + suffix).unlink(missing_ok=True)
            continue
        admin = make_url(POSTGRES_ADMIN_URL).set(drivername="postgresql").render_as_string(False)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{parsed.database}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{parsed.database}"')


@dataclass
class Drill:
    """What the drill made, by id."""

    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    coordinator: dict = field(default_factory=dict)
    officials: dict[str, dict] = field(default_factory=dict)  # city id -> its official
    a: str = ""
    b: str = ""
    c: str = ""
    d: str = ""
    behind: str = ""  # registered while matching was down: not in matching's backup
    proposal: str = ""
    later: str = ""  # made after the backup
    later_proposal: str = ""
    backed_up: dict[str, dict] = field(default_factory=dict)  # city id -> the city as it was backed up


def populate(stack: Stack, drill: Drill) -> None:
    """Users, cities (one changed), a decision both cities accept, and a proposal submitted; all consumed."""
    config, gateway, tag = stack.config, stack.config.gateway_url, drill.tag
    with client_for(gateway, ADMIN_EMAIL, ADMIN_PASSWORD) as admin:
        drill.coordinator = create_user(admin, ["coordinator"])
        with client_for(gateway, drill.coordinator["email"]) as coordinator:
            body = city_body(f"Xi'an {tag}")
            drill.a, drill.b = register(coordinator, body), register(coordinator, partner_of(body, f"Almaty {tag}"))
            drill.c = register(coordinator, city_body(f"Urumqi {tag}"))
            drill.d = register(coordinator, city_body(f"Tashkent {tag}", country_code="UZ"))
            assert coordinator.patch(f"/api/v1/cities/{drill.c}", json={"population": 4_100_000}).status_code == 200
            eventually(lambda: in_step(config, 4), timeout=30, what="every service to know the cities")
        cities_ = (drill.a, drill.b, drill.c, drill.d)
        drill.officials = {city: create_user(admin, ["official"], [city]) for city in cities_}
    official = {city: client_for(gateway, user["email"]) for city, user in drill.officials.items()}
    try:
        a, b, c, d = cities_
        # Both accept: matching publishes the match, pilot_zones drafts a proposal of it, identity notifies a and b.
        decide = {"decision": "accept", "reason": "complementary_themes"}
        assert official[a].post(f"/api/v1/matches/{a}/{b}/decision", json=decide).status_code == 201
        accepted = official[b].post(f"/api/v1/matches/{b}/{a}/decision", json=decide)
        assert accepted.json()["status"] == "accepted", accepted.text
        # A proposal, submitted: identity notifies c and d (and coordinators).
        created = official[c].post("/api/v1/pilot-zones", json={"title": f"Drill {tag}", "city_ids": [c, d]})
        assert created.status_code == 201, created.text
        drill.proposal = created.json()["id"]
        assert official[d].post(f"/api/v1/pilot-zones/{drill.proposal}/members/{d}/confirm").status_code == 200
        submitted = official[c].post(f"/api/v1/pilot-zones/{drill.proposal}/transitions", json={"to": "submitted"})
        assert submitted.status_code == 200, submitted.text
        for client in official.values():
            eventually(lambda c=client: c.get("/api/v1/me/notifications").json()["total"] == 1, timeout=30)
        eventually(lambda: query(config.database_url("pilot_zones"), "SELECT count(*) FROM proposal") == [(2,)])
    finally:
        for client in official.values():
            client.close()


def fall_behind(stack: Stack, drill: Drill) -> None:
    """matching down while a city registers: as backed up next, matching lacks an event profiles sent."""
    stack.stop_part("matching")
    with client_for(stack.config.gateway_url, drill.coordinator["email"]) as coordinator:
        drill.behind = register(coordinator, city_body(f"Kashgar {drill.tag}"))
    eventually(lambda: len(cities(stack.config)["pilot_zones"]) == 5, what="pilot_zones to know it")
    eventually(lambda: outboxes_sent(stack.config), what="every event published")


def change_after_backup(stack: Stack, drill: Drill) -> None:
    """matching catches up; then a new city, a renamed one and a new proposal: the restore must take them back."""
    stack.start_service("matching")
    stack.wait_ready(names=["matching"])
    eventually(lambda: in_step(stack.config, 5), timeout=30, what="matching to catch up")
    gateway, tag = stack.config.gateway_url, drill.tag
    with client_for(gateway, drill.coordinator["email"]) as coordinator:
        backed_up = (drill.a, drill.b, drill.c, drill.d, drill.behind)
        drill.backed_up = {city: coordinator.get(f"/api/v1/cities/{city}").json() for city in backed_up}
        drill.later = register(coordinator, city_body(f"Later {tag}", country_code="KZ"))
        assert coordinator.patch(f"/api/v1/cities/{drill.a}", json={"name": f"Renamed {tag}"}).status_code == 200
    with client_for(gateway, drill.officials[drill.c]["email"]) as official:
        later = official.post(
            "/api/v1/pilot-zones", json={"title": f"Later {tag}", "city_ids": [drill.c, drill.behind]}
        )
        assert later.status_code == 201, later.text
        drill.later_proposal = later.json()["id"]
    eventually(lambda: in_step(stack.config, 6), timeout=30, what="every service to know the later city")


def check_restored(stack: Stack, drill: Drill, manifest: dict) -> None:
    config, gateway, a = stack.config, stack.config.gateway_url, drill.a
    with client_for(gateway, drill.coordinator["email"]) as coordinator:
        # What was backed up is back (cities with their versions, the decision, the proposal); nothing later is.
        for city, backed_up in drill.backed_up.items():
            assert coordinator.get(f"/api/v1/cities/{city}").json() == backed_up
        assert coordinator.get(f"/api/v1/cities/{a}").json()["version"] == 1
        assert coordinator.get(f"/api/v1/cities/{drill.c}").json()["version"] == 2
        assert coordinator.get(f"/api/v1/cities/{drill.later}").status_code == 404
        assert coordinator.get(f"/api/v1/matches/{a}/{drill.b}").json()["status"] == "accepted"
        assert coordinator.get(f"/api/v1/pilot-zones/{drill.proposal}").json()["status"] == "submitted"
        assert coordinator.get(f"/api/v1/pilot-zones/{drill.later_proposal}").status_code == 404

        # Every consumer has exactly what its producers have: matching applies, from profiles' outbox published
        # again, the city it had not applied when backed up, and no event made after the backup.
        eventually(lambda: settled(stack), timeout=60, what="every event published again and consumed")
        eventually(lambda: in_step(config, 5), timeout=30, what="the projections equal to profiles")
        # No event applied twice: the rows events make number what the backup had.
        assert counts(config) == {s: {t: manifest["databases"][s]["rows"][t] for t in ts} for s, ts in COUNTED.items()}
        timeline = coordinator.get(f"/api/v1/pilot-zones/{drill.proposal}/timeline", params={"limit": 100}).json()
        assert [entry["action"] for entry in timeline["items"]].count("created") == 1
        for user in drill.officials.values():  # each signs in, and was notified once, as before
            with client_for(gateway, user["email"]) as official:
                assert official.get("/api/v1/me/notifications").json()["total"] == 1

        # The bus works on: a change now reaches matching with the next version.
        assert coordinator.patch(f"/api/v1/cities/{a}", json={"name": f"After {drill.tag}"}).status_code == 200
    matching = config.database_url("matching")
    eventually(lambda: query(matching, "SELECT version FROM city_projection WHERE id = :i", i=a) == [(2,)])
    with client_for(gateway, ADMIN_EMAIL, ADMIN_PASSWORD) as admin:
        assert admin.get("/api/v1/me").json()["email"] == ADMIN_EMAIL


def test_a_restore_brings_back_the_backup_and_every_consumer_catches_up(tmp_path):
    backup_dir, drill = tmp_path / "backup", Drill()
    stack = start_stack(tmp_path / "var", CITYPAIR_IDENTITY_SIGNIN_ADDRESS_ATTEMPTS="100000")
    config = stack.config
    try:
        populate(stack, drill)
        fall_behind(stack, drill)
        assert "backed up into" in citypair(config, "backup", str(backup_dir))  # while it runs
        change_after_backup(stack, drill)
    finally:
        stack.stop()

    wipe(config)
    output = citypair(config, "restore", str(backup_dir), "--yes")
    assert "restored: start citypair" in output and "not in their producer's backup" not in output, output

    stack = Stack(config)  # the same ports, var dir (so the same NATS store) and databases
    try:
        stack.start()
        check_restored(stack, drill, json.loads((backup_dir / "manifest.json").read_text()))
    finally:
        stack.stop()
