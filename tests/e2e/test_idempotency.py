"""`Idempotency-Key` through the gateway: a retried POST is answered with its first response and applied once,
in every service that creates things, also when twenty copies arrive at once; and the gateway's 503 says
whether a write may have been applied. Every part is a real process on a real database."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import create_engine, update

from citypair_profiles.models import IdempotencyRecord
from citypair_shared.db import sync_url
from citypair_shared.idempotency import HEADER, IN_PROGRESS_TYPE, REPLAYED_HEADER, RESPONSE_LOST_TYPE, new_key
from tests.support import ADMIN_EMAIL, ADMIN_PASSWORD, city_body, eventually, query, run_async

PROBLEM_JSON = "application/problem+json"
KEPT_HEADERS = ("content-type", "location", "etag")


def keyed(key: str) -> dict[str, str]:
    return {HEADER: key}


def register(client: httpx.Client, body: dict, key: str | None = None) -> httpx.Response:
    return client.post("/api/v1/cities", json=body, headers=keyed(key) if key else {})


def cities_named(client: httpx.Client, name: str) -> int:
    return client.get("/api/v1/cities", params={"q": name}).json()["total"]


def registered_events(stack, name: str) -> int:
    sql = "SELECT count(*) FROM outbox WHERE type = 'profiles.city.registered.v1' AND payload LIKE :p"
    return query(stack.config.database_url("profiles"), sql, p=f"%{name}%")[0][0]


def assert_replay_of(replay: httpx.Response, first: httpx.Response) -> None:
    assert replay.status_code == first.status_code
    assert replay.headers.get(REPLAYED_HEADER) == "true"
    assert replay.content == first.content
    for name in KEPT_HEADERS:
        assert replay.headers.get(name) == first.headers.get(name), name


def unique(name: str) -> str:
    return f"{name} {uuid.uuid4().hex[:8]}"


def change_record(database_url: str, key: str, *, age: timedelta, forget_response: bool = False) -> None:
    """Make a record older (and, if asked, as if its process died before storing the response)."""
    values = {"created_at": datetime.now(UTC) - age}
    if forget_response:
        values |= {"status_code": None, "body": None}
    engine = create_engine(sync_url(database_url))
    try:
        with engine.begin() as conn:
            # Every service's record table is the same mixin: profiles' model names its columns for any of them.
            conn.execute(update(IdempotencyRecord).where(IdempotencyRecord.key == key).values(**values))
    finally:
        engine.dispose()


# --- profiles: the city that must not be registered twice ------------------------------------------------


def test_a_retry_with_the_same_key_gets_the_first_response_and_registers_one_city(stack, admin):
    name, key = unique("Samarkand"), new_key()
    first = register(admin, city_body(name, country_code="UZ"), key)
    assert first.status_code == 201, first.text
    assert REPLAYED_HEADER not in first.headers
    replay = register(admin, city_body(name, country_code="UZ"), key)
    assert_replay_of(replay, first)
    assert replay.headers["location"] == f"/api/v1/cities/{first.json()['id']}"
    assert cities_named(admin, name) == 1
    assert registered_events(stack, name) == 1


def test_the_same_key_for_another_request_is_422_naming_the_header(admin):
    key = new_key()
    assert register(admin, city_body(unique("Bukhara")), key).status_code == 201
    other = unique("Khiva")
    reused = register(admin, city_body(other), key)
    assert reused.status_code == 422
    assert reused.headers["content-type"] == PROBLEM_JSON
    assert [e["field"] for e in reused.json()["errors"]] == ["header.Idempotency-Key"]
    assert cities_named(admin, other) == 0
    # Another path or query is another request too.
    assert admin.post("/api/v1/cities?x=1", json=city_body(other), headers=keyed(key)).status_code == 422


@pytest.mark.parametrize("key", ["", '""', "k" * 256, "clé"])
def test_an_empty_long_or_non_ascii_key_is_422_and_nothing_is_registered(admin, key):
    name = unique("Nukus")
    response = admin.post(
        "/api/v1/cities", content=httpx.Request("POST", "/", json=city_body(name)).content,
        headers={"Content-Type": "application/json", HEADER: key.encode("latin-1")},
    )  # fmt: skip
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "header.Idempotency-Key"
    assert cities_named(admin, name) == 0


def test_a_key_with_an_unverified_token_is_401_and_keeps_nothing(anonymous, admin):
    name, key = unique("Termez"), new_key()
    forged = {"Authorization": "Bearer not-a-token", **keyed(key)}
    assert anonymous.post("/api/v1/cities", json=city_body(name), headers=forged).status_code == 401
    assert anonymous.post("/api/v1/cities", json=city_body(name), headers=keyed(key)).status_code == 401
    # Nothing was kept under the key: the real caller's request with it runs.
    response = register(admin, city_body(name), key)
    assert response.status_code == 201 and REPLAYED_HEADER not in response.headers


def test_keys_are_per_caller(admin, coordinator):
    name, key = unique("Fergana"), new_key()
    mine = register(admin, city_body(name), key)
    theirs = register(coordinator, city_body(name), key)
    assert mine.status_code == theirs.status_code == 201
    assert REPLAYED_HEADER not in theirs.headers
    assert mine.json()["id"] != theirs.json()["id"]
    assert cities_named(admin, name) == 2


async def _at_once(base_url: str, authorization: str, count: int, body: dict, key: str) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    headers = {"Authorization": authorization}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=60, limits=limits) as client:
        # One connection per request, opened beforehand: the posts then leave together.
        await asyncio.gather(*(client.get("/api/v1/me") for _ in range(count)))
        return await asyncio.gather(
            *(client.post("/api/v1/cities", json=body, headers=keyed(key)) for _ in range(count))
        )


def test_twenty_identical_requests_at_once_register_one_city(stack, admin):
    name, key = unique("Andijan"), new_key()
    responses = run_async(_at_once(stack.config.gateway_url, admin.headers["Authorization"], 20, city_body(name), key))
    created = [r for r in responses if r.status_code == 201]
    in_progress = [r for r in responses if r.status_code == 409]
    assert len(created) + len(in_progress) == 20, [(r.status_code, r.text) for r in responses]
    originals = [r for r in created if REPLAYED_HEADER not in r.headers]
    assert len(originals) == 1, "exactly one request was applied; every other 201 is its replay"
    for replay in created:
        if replay is not originals[0]:
            assert_replay_of(replay, originals[0])
    for response in in_progress:
        assert response.json()["type"] == IN_PROGRESS_TYPE
    assert cities_named(admin, name) == 1
    assert registered_events(stack, name) == 1
    # Afterwards every retry is the replay.
    assert_replay_of(register(admin, city_body(name), key), originals[0])


async def _many_at_once(base_url: str, authorization: str, bodies: list[dict]) -> list[httpx.Response]:
    """`bodies` registered at once, each with a key of its own, on connections opened beforehand."""
    count = len(bodies)
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    async with httpx.AsyncClient(
        base_url=base_url, headers={"Authorization": authorization}, timeout=60, limits=limits
    ) as client:
        await asyncio.gather(*(client.get("/api/v1/me") for _ in range(count)))
        return await asyncio.gather(*(client.post("/api/v1/cities", json=b, headers=keyed(new_key())) for b in bodies))


def test_more_keyed_creates_at_once_than_the_pool_has_connections_each_register_promptly(stack, admin):
    """Each request used to hold its session's connection while its key's record waited for a second one: with
    more requests than connections (SQLite's pool holds 15, PostgreSQL's 20) all waited on each other until the
    pool's 30 s timeout, and the gateway answered 503 to every one."""
    names = [unique(f"Pooled {i}") for i in range(32)]
    responses = run_async(
        _many_at_once(stack.config.gateway_url, admin.headers["Authorization"], [city_body(n) for n in names])
    )
    assert [r.status_code for r in responses] == [201] * len(names), [
        r.text[:200] for r in responses if r.status_code != 201
    ]
    assert all(r.elapsed.total_seconds() < 20 for r in responses), max(r.elapsed.total_seconds() for r in responses)


def test_a_csv_import_retried_gets_its_first_report(stack, admin):
    # The route streams the body itself: it must still get it whole after the key's fingerprint read it.
    tag, key = uuid.uuid4().hex[:8], new_key()
    csv = f"external_id,name,country_code,latitude,longitude,population\n{tag},Urgench {tag},UZ,41.55,60.63,145000\n"
    headers = {"Content-Type": "text/csv", **keyed(key)}
    first = admin.post("/api/v1/cities/import", content=csv, headers=headers)
    assert first.status_code == 200, first.text
    assert [row["action"] for row in first.json()["rows"]] == ["created"]
    # Without the key a re-import would report the row "unchanged": the retry is answered with the first report.
    assert_replay_of(admin.post("/api/v1/cities/import", content=csv, headers=headers), first)
    assert cities_named(admin, f"Urgench {tag}") == 1
    assert registered_events(stack, f"Urgench {tag}") == 1


def test_a_request_applied_whose_response_was_lost_is_409_pointing_at_what_it_made(stack, admin):
    name, key = unique("Namangan"), new_key()
    first = register(admin, city_body(name), key)
    assert first.status_code == 201
    database = stack.config.database_url("profiles")
    stored_key = key.strip('"')
    # Just committed, response not yet stored: the retry waits for it (3 s), then says it is in progress.
    change_record(database, stored_key, age=timedelta(0), forget_response=True)
    running = register(admin, city_body(name), key)
    assert running.status_code == 409
    assert running.json()["type"] == IN_PROGRESS_TYPE
    # Its process died between commit and storing the response: applied, and here is where.
    change_record(database, stored_key, age=timedelta(minutes=5), forget_response=True)
    lost = register(admin, city_body(name), key)
    assert lost.status_code == 409 and lost.headers["content-type"] == PROBLEM_JSON
    assert lost.json()["type"] == RESPONSE_LOST_TYPE
    assert lost.headers["location"] == first.headers["location"]
    assert cities_named(admin, name) == 1


def test_a_key_is_kept_for_24_hours(stack, admin):
    name, key = unique("Karshi"), new_key()
    first = register(admin, city_body(name), key)
    change_record(stack.config.database_url("profiles"), key.strip('"'), age=timedelta(hours=23, minutes=59))
    assert_replay_of(register(admin, city_body(name), key), first)
    change_record(stack.config.database_url("profiles"), key.strip('"'), age=timedelta(hours=24, minutes=1))
    again = register(admin, city_body(name), key)
    assert again.status_code == 201 and REPLAYED_HEADER not in again.headers
    assert again.json()["id"] != first.json()["id"]


# --- the other services' creating POSTs ------------------------------------------------------------------


def test_identity_creates_a_user_once(admin):
    key = new_key()
    body = {"email": f"{uuid.uuid4().hex[:8]}@test.citypair", "password": "a-long-test-password", "roles": ["observer"]}
    first = admin.post("/api/v1/users", json=body, headers=keyed(key))
    assert first.status_code == 201, first.text
    replay = admin.post("/api/v1/users", json=body, headers=keyed(key))
    assert_replay_of(replay, first)  # not 409 "Email taken": the retry is the same request, answered again
    assert admin.post("/api/v1/users", json=body).status_code == 409  # without a key it is a new request


def test_pilot_zones_drafts_a_proposal_once(stack, admin, official_of):
    a = register(admin, city_body(unique("Osh"), country_code="KG")).json()["id"]
    b = register(admin, city_body(unique("Khujand"), country_code="TJ")).json()["id"]
    db = stack.config.database_url("pilot_zones")
    eventually(lambda: query(db, "SELECT count(*) FROM known_city WHERE id IN (:a, :b)", a=a, b=b) == [(2,)])
    official, key = official_of(a), new_key()
    body = {"title": "Ferghana valley pilot", "city_ids": [a, b]}
    first = official.post("/api/v1/pilot-zones", json=body, headers=keyed(key))
    assert first.status_code == 201, first.text
    replay = official.post("/api/v1/pilot-zones", json=body, headers=keyed(key))
    assert_replay_of(replay, first)  # not 409 "an open proposal for these cities exists"
    proposals = query(db, "SELECT count(*) FROM proposal WHERE member_key LIKE :a", a=f"%{a}%")
    assert proposals == [(1,)]


def test_matching_runs_a_round_once(stack, admin, coordinator):
    ids = [register(admin, city_body(unique("Round"), country_code=cc)).json()["id"] for cc in ("KZ", "UZ")]
    for city_id in ids:
        eventually(lambda c=city_id: admin.get(f"/api/v1/cities/{c}/partners").status_code == 200, what="matching")
    db = stack.config.database_url("matching")
    before = query(db, "SELECT count(*) FROM match_round")[0][0]
    key, body = new_key(), {"cities": {"city_ids": ids}, "capacity": 1}
    first = coordinator.post("/api/v1/rounds", json=body, headers=keyed(key))
    assert first.status_code == 201, first.text
    assert_replay_of(coordinator.post("/api/v1/rounds", json=body, headers=keyed(key)), first)
    assert query(db, "SELECT count(*) FROM match_round")[0][0] == before + 1


def test_sign_in_ignores_a_key(stack, anonymous):
    form = {"username": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    key = new_key()
    first = anonymous.post("/api/v1/auth/token", data=form, headers=keyed(key))
    second = anonymous.post("/api/v1/auth/token", data=form, headers=keyed(key))
    assert first.status_code == second.status_code == 200
    assert REPLAYED_HEADER not in second.headers
    assert first.json()["refresh_token"] != second.json()["refresh_token"], "tokens are never stored nor replayed"
    assert query(stack.config.database_url("identity"), "SELECT count(*) FROM idempotency_record WHERE key = :k",
                 k=key.strip('"')) == [(0,)]  # fmt: skip


# --- the gateway, when the service does not answer (last: it stops pilot_zones for a while) -----------------


def test_the_gateways_503_says_whether_a_write_may_have_been_applied(stack, coordinator):
    stack.stop_part("pilot_zones")
    try:
        created = coordinator.post("/api/v1/pilot-zones", json={"title": "t", "city_ids": []}, headers=keyed(new_key()))
        changed = coordinator.patch("/api/v1/pilot-zones/some-id", json={"title": "t"}, headers={"If-Match": '"1"'})
        read = coordinator.get("/api/v1/pilot-zones")
    finally:
        stack.start_service("pilot_zones")
        stack.wait_ready(names=["pilot_zones"])
    for response in (created, changed, read):
        assert response.status_code == 503 and response.headers["content-type"] == PROBLEM_JSON
    assert created.json()["applied"] == changed.json()["applied"] == "unknown"
    assert "may or may not have been applied" in created.json()["detail"]
    assert "same Idempotency-Key is safe" in created.json()["detail"]
    assert "If-Match" in changed.json()["detail"]
    assert read.json()["applied"] == "no"
    eventually(lambda: coordinator.get("/api/v1/pilot-zones").status_code == 200, timeout=30, what="the gateway")
