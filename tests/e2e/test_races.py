"""Races (issue 12): identical requests released at one instant against the real stack.

Every case opens its connections first, then lets all requests go together (`release_together`),
and checks that the database, not luck, decided: exactly one winner, the losers 412/409/401 as
problem+json, one history/timeline entry and one event per effect (counted on the stream itself),
and every projection equal to its source. Each trial uses fresh objects; choose how many with
CITYPAIR_RACE_TRIALS (default 5), e.g. `CITYPAIR_RACE_TRIALS=10 pytest tests/e2e/test_races.py`.
"""

import asyncio
import json
import os
import time
import uuid
from datetime import datetime

import httpx
import pytest

from tests.e2e.conftest import start_stack
from tests.support import (
    PASSWORD,
    city_body,
    client_for,
    create_user,
    eventually,
    partner_of,
    query,
    run_async,
    stream_events,
)

TRIALS = int(os.environ.get("CITYPAIR_RACE_TRIALS", "5"))
each_trial = pytest.mark.parametrize("trial", range(TRIALS))
PROBLEM_JSON = "application/problem+json"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """The stack, with sign-in throttling out of the way (every trial signs in fresh users) and the longest
    access tokens allowed (the module's clients sign in once; on a busy machine the module outlasts 10 min)."""
    stack = start_stack(
        tmp_path_factory.mktemp("stack"),
        CITYPAIR_IDENTITY_SIGNIN_ADDRESS_ATTEMPTS="100000",
        CITYPAIR_IDENTITY_ACCESS_TOKEN_MINUTES="15",
    )
    yield stack
    stack.stop()


# --------------------------------------------------------------------------- helpers


def release_together(base_url: str, requests: list[dict], *, warm_up: dict) -> list[httpx.Response]:
    """Send each request (keyword arguments of `httpx.AsyncClient.request`) on its own connection.

    Each connection first sends `warm_up` (a harmless read of the same service), all at once, so the
    gateway's upstream connections and the service's database pool are open: then every request
    leaves when the barrier opens, none a connection set-up behind the others.
    """

    async def main():
        barrier = asyncio.Barrier(len(requests))

        async def send(request: dict) -> httpx.Response:
            async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
                (await client.request(**warm_up)).raise_for_status()
                await barrier.wait()
                return await client.request(**request)

        return await asyncio.gather(*(send(r) for r in requests))

    return run_async(main())


def bearer(client: httpx.Client) -> dict:
    return {"Authorization": client.headers["Authorization"]}


def events_about(stack, event_type: str, subject: str) -> list[dict]:
    """The CloudEvents of `event_type` whose `subject` is `subject`, read from the stream itself (not the outbox)."""
    return [e for e in stream_events(stack, event_type) if e["subject"] == subject]


def count_events(stack, event_type: str, subject: str) -> int:
    return len(events_about(stack, event_type, subject))


def outbox_drained(stack, service: str) -> None:
    """Wait until `service` has published everything it committed: only then is the stream complete."""
    db = stack.config.database_url(service)
    sql = "SELECT count(*) FROM outbox WHERE published_at IS NULL"
    eventually(lambda: query(db, sql) == [(0,)], timeout=30, what=f"{service}'s outbox to drain")


def handled(stack, service: str, events: list[dict]) -> None:
    """Wait until `service` has handled (committed in its inbox) every one of `events`."""
    db = stack.config.database_url(service)

    def all_seen() -> bool:
        return all(query(db, "SELECT 1 FROM inbox WHERE event_id = :e", e=e["id"]) for e in events)

    eventually(all_seen, timeout=30, what=f"{service} to handle {len(events)} events")


def statuses(responses: list[httpx.Response]) -> list[int]:
    return sorted(r.status_code for r in responses)


def assert_problems(responses: list[httpx.Response], *codes: int) -> None:
    for r in responses:
        assert r.status_code in codes, (r.status_code, r.text)
        assert r.headers["content-type"].split(";")[0] == PROBLEM_JSON, r.headers["content-type"]


def _json(value):
    return json.loads(value) if isinstance(value, str) else value  # SQLite returns JSON as text


def differences(profile: dict, snapshot: dict | None, known: tuple | None) -> dict:
    """Where matching's snapshot or pilot_zones' known city differs from the profile: {where: (profile's, copy's)}."""
    if snapshot is None:
        return {"matching": "no copy"}
    found = {}
    for key, theirs in snapshot.items():
        mine = profile[key]
        if key == "themes":
            mine = {t: {"offer": v["offer"], "need": v["need"]} for t, v in mine.items()}
        elif key == "last_confirmed_at":
            mine, theirs = datetime.fromisoformat(mine), datetime.fromisoformat(theirs)
        if mine != theirs:
            found[f"matching.{key}"] = (mine, theirs)
    if known != (profile["version"], profile["name"], profile["country_code"], profile["status"]):
        found["pilot_zones.known_city"] = ((profile["version"], profile["name"]), known)
    return found


def assert_projections_equal(stack, reader: httpx.Client, city_ids: list[str], *, timeout: float = 15) -> None:
    """matching's and pilot_zones' copies of each profile hold, field by field, what the profile holds now."""
    profiles = [reader.get(f"/api/v1/cities/{c}").json() for c in city_ids]
    matching_db, pilot_zones_db = stack.config.database_url("matching"), stack.config.database_url("pilot_zones")
    deadline = time.monotonic() + timeout
    while True:  # the consumers may still be catching up
        snapshots = {i: _json(s) for i, s in query(matching_db, "SELECT id, snapshot FROM city_projection")}
        known = {
            r[0]: r[1:] for r in query(pilot_zones_db, "SELECT id, version, name, country_code, status FROM known_city")
        }
        found = {p["id"]: d for p in profiles if (d := differences(p, snapshots.get(p["id"]), known.get(p["id"])))}
        if not found or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert not found, f"{len(found)} of {len(profiles)} profiles differ from their copies: {found}"


def register(client: httpx.Client, body: dict) -> str:
    response = client.post("/api/v1/cities", json=body)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def tag() -> str:
    return uuid.uuid4().hex[:8]


# --------------------------------------------------------------------------- 1. profiles: no lost update


@each_trial
def test_one_if_match_one_winner(stack, coordinator, trial):
    """30 PATCHes carrying the same ETag: one is applied, 29 are told the profile moved on (412)."""
    city_id = register(coordinator, city_body(f"Lanzhou {tag()}"))
    url = f"/api/v1/cities/{city_id}"
    etag = coordinator.get(url).headers["etag"]
    populations = [4_000_000 + i for i in range(30)]
    patches = [
        {"method": "PATCH", "url": url, "json": {"population": p}, "headers": {**bearer(coordinator), "If-Match": etag}}
        for p in populations
    ]
    read = {"method": "GET", "url": url, "headers": bearer(coordinator)}
    responses = release_together(stack.config.gateway_url, patches, warm_up=read)

    won = [r for r in responses if r.status_code == 200]
    assert len(won) == 1, f"{len(won)} of 30 stale-free writes won: {statuses(responses)}"
    assert_problems([r for r in responses if r is not won[0]], 412)
    profile = coordinator.get(url).json()
    assert profile["version"] == 2 and profile["population"] == won[0].json()["population"]
    history = coordinator.get(f"{url}/history", params={"limit": 100}).json()
    assert [h["version"] for h in history["items"]] == [2, 1]
    outbox_drained(stack, "profiles")
    assert count_events(stack, "profiles.city.updated.v1", city_id) == 1
    assert_projections_equal(stack, coordinator, [city_id])


def assert_each_change_kept(stack, reader: httpx.Client, city_id: str, applied: list[tuple[dict, httpx.Response]]):
    """Every change answered 200 has its own version, history entry and event, and the last of each field stays."""
    url, n = f"/api/v1/cities/{city_id}", len(applied)
    versions = sorted(r.json()["version"] for _, r in applied)
    assert versions == list(range(2, n + 2)), f"changes sharing a version: {versions}"
    profile = reader.get(url).json()
    assert profile["version"] == n + 1
    for field in {key for change, _ in applied for key in change}:
        last = max((r for change, r in applied if field in change), key=lambda r: r.json()["version"])
        assert profile[field] == last.json()[field], f"the last {field} change was lost"
    history = reader.get(f"{url}/history", params={"limit": 100}).json()["items"]
    assert sorted(h["version"] for h in history) == list(range(1, n + 2))
    events = events_about(stack, "profiles.city.updated.v1", city_id)
    assert sorted(e["data"]["city"]["version"] for e in events) == list(range(2, n + 2))


def patch(client: httpx.Client, city_id: str, change: dict) -> dict:
    return {"method": "PATCH", "url": f"/api/v1/cities/{city_id}", "json": change, "headers": bearer(client)}


@each_trial
def test_two_edits_of_different_fields_at_once_both_apply(stack, coordinator, trial):
    """10 cities, each sent a population change and a name change at the same instant (20 PATCHes without
    If-Match): both changes of every city apply, each with its own version (issue 12: the version was
    bumped once, and matching kept only one of the two changes)."""
    names = [f"Baotou {tag()}" for _ in range(10)]
    cities = [register(coordinator, city_body(name)) for name in names]
    both = [({"population": 7}, {"name": f"{name}!"}) for name in names]
    changes = [(city, change) for city, pair in zip(cities, both, strict=True) for change in pair]
    read = {"method": "GET", "url": f"/api/v1/cities/{cities[0]}", "headers": bearer(coordinator)}
    responses = release_together(stack.config.gateway_url, [patch(coordinator, *c) for c in changes], warm_up=read)

    assert statuses(responses) == [200] * 20, [r.text for r in responses if r.status_code != 200]
    outbox_drained(stack, "profiles")
    for city in cities:
        mine = [(change, r) for (c, change), r in zip(changes, responses, strict=True) if c == city]
        assert_each_change_kept(stack, coordinator, city, mine)
    assert_projections_equal(stack, coordinator, cities)


@each_trial
def test_one_geonames_id_claimed_by_many_profiles_at_once_goes_to_one(stack, coordinator, trial):
    """20 profiles each replaced (PUT) with the same new GeoNames id at once: the unique index gives it to one;
    the others are told who has it (409 naming the field), not a 500, and saved nothing."""
    bodies = [city_body(f"Yinchuan {tag()}") for _ in range(20)]
    cities = [register(coordinator, body) for body in bodies]
    geonames_id = 1_000_000_000 + uuid.uuid4().int % 900_000_000
    read = {"method": "GET", "url": f"/api/v1/cities/{cities[0]}", "headers": bearer(coordinator)}
    puts = [
        {"method": "PUT", "url": f"/api/v1/cities/{c}", "json": {**body, "geonames_id": geonames_id}}
        | {"headers": bearer(coordinator)}
        for c, body in zip(cities, bodies, strict=True)
    ]
    responses = release_together(stack.config.gateway_url, puts, warm_up=read)

    won = [c for c, r in zip(cities, responses, strict=True) if r.status_code == 200]
    assert len(won) == 1, statuses(responses)
    losers = [r for r in responses if r.status_code != 200]
    assert_problems(losers, 409)
    assert all(r.json()["errors"][0]["field"] == "geonames_id" for r in losers)
    holders = [c for c in cities if coordinator.get(f"/api/v1/cities/{c}").json()["geonames_id"] == geonames_id]
    assert holders == won
    assert all(coordinator.get(f"/api/v1/cities/{c}").json()["version"] == 1 for c in cities if c not in won)


@each_trial
def test_many_edits_of_one_profile_at_once_each_get_their_own_version(stack, coordinator, trial):
    """20 PATCHes of one profile without If-Match (population or name): every one answered 200 is kept with
    its own version; any refused (409, e.g. retries exhausted) saved nothing."""
    name = f"Baotou {tag()}"
    city_id = register(coordinator, city_body(name))
    changes = [{"population": 2_000_000 + i} if i % 2 else {"name": f"{name} {i}"} for i in range(20)]
    read = {"method": "GET", "url": f"/api/v1/cities/{city_id}", "headers": bearer(coordinator)}
    responses = release_together(
        stack.config.gateway_url, [patch(coordinator, city_id, c) for c in changes], warm_up=read
    )

    assert_problems([r for r in responses if r.status_code != 200], 409)
    applied = [(change, r) for change, r in zip(changes, responses, strict=True) if r.status_code == 200]
    assert applied, "every edit refused"
    outbox_drained(stack, "profiles")
    assert_each_change_kept(stack, coordinator, city_id, applied)
    assert_projections_equal(stack, coordinator, [city_id])


# --------------------------------------------------------------------------- 2. matching: no accepted match lost


def drafts_for(stack, a: str, b: str) -> list[tuple]:
    return query(
        stack.config.database_url("pilot_zones"),
        "SELECT id FROM proposal WHERE match_key IS NOT NULL AND member_key = :k",
        k=",".join(sorted([a, b])),
    )


def new_pairs(coordinator: httpx.Client, count: int) -> list[tuple[str, str]]:
    """`count` fresh pairs of cities that complete each other (A in China, B in Kyrgyzstan), known to matching."""
    bodies = [city_body(f"Kashgar {tag()}") for _ in range(count)]
    pairs = [(register(coordinator, b), register(coordinator, partner_of(b, f"Osh {tag()}", "KG"))) for b in bodies]
    for city in [c for pair in pairs for c in pair]:
        partners = f"/api/v1/cities/{city}/partners"
        eventually(lambda p=partners: coordinator.get(p).status_code == 200, what=f"matching to know {city}")
    return pairs


def accept(official: httpx.Client, city: str, other: str) -> dict:
    body = {"decision": "accept", "reason": "complementary_themes"}
    return {
        "method": "POST",
        "url": f"/api/v1/matches/{city}/{other}/decision",
        "json": body,
        "headers": bearer(official),
    }


def assert_accepted_once(stack, reader: httpx.Client, a: str, b: str) -> None:
    """The pair reads as accepted, and that happened once: one event, one partnership, one draft proposal."""
    assert reader.get(f"/api/v1/matches/{a}/{b}").json()["status"] == "accepted"
    lo, hi = sorted((a, b))
    accepted = events_about(stack, "matching.match.accepted.v1", f"{lo}/{hi}")
    assert len(accepted) == 1, f"{len(accepted)} accepted events for the pair {lo}/{hi}"
    partnership = "SELECT source FROM partnership WHERE city_a = :a AND city_b = :b"
    assert query(stack.config.database_url("matching"), partnership, a=lo, b=hi) == [("match",)]
    handled(stack, "pilot_zones", accepted)
    assert len(drafts_for(stack, a, b)) == 1


@each_trial
def test_both_officials_accepting_at_the_same_instant_accept_the_pair_once(stack, coordinator, official_of, trial):
    """10 pairs; for each, A's official and B's official accept at once (20 requests): one is told "open",
    the other "accepted", and the acceptance is published once (issue 12: both were told "open", nothing
    was published, yet the pair then read as accepted)."""
    pairs = new_pairs(coordinator, 10)
    official_a, official_b = official_of(*[a for a, _ in pairs]), official_of(*[b for _, b in pairs])
    decisions = [r for a, b in pairs for r in (accept(official_a, a, b), accept(official_b, b, a))]
    read = {"method": "GET", "url": f"/api/v1/matches/{pairs[0][0]}/{pairs[0][1]}", "headers": bearer(coordinator)}
    responses = release_together(stack.config.gateway_url, decisions, warm_up=read)

    assert statuses(responses) == [201] * 20, [r.text for r in responses if r.status_code != 201]
    told = [sorted(r.json()["status"] for r in responses[2 * i : 2 * i + 2]) for i in range(len(pairs))]
    lost = [t for t in told if t != ["accepted", "open"]]
    assert not lost, f"{len(lost)} of {len(pairs)} pairs were not told open + accepted: {lost}"
    outbox_drained(stack, "matching")
    for a, b in pairs:
        assert_accepted_once(stack, coordinator, a, b)


@each_trial
def test_repeated_acceptances_at_once_publish_one_accepted_match(stack, coordinator, official_of, trial):
    """Each side's official accepts one pair 10 times, all 20 at once: still one acceptance, published once."""
    [(a, b)] = new_pairs(coordinator, 1)
    official_a, official_b = official_of(a), official_of(b)
    read = {"method": "GET", "url": f"/api/v1/matches/{a}/{b}", "headers": bearer(coordinator)}
    decisions = [accept(official_a, a, b), accept(official_b, b, a)] * 10
    responses = release_together(stack.config.gateway_url, decisions, warm_up=read)

    assert_problems([r for r in responses if r.status_code != 201], 409)  # e.g. already partners
    told = [r.json()["status"] for r in responses if r.status_code == 201]
    assert "accepted" in told, f"nobody was told the pair is accepted: {told}"
    outbox_drained(stack, "matching")
    assert_accepted_once(stack, coordinator, a, b)


# --------------------------------------------------------------------------- 3. pilot_zones: one approval


def move(client: httpx.Client, pid: str, to: str) -> httpx.Response:
    return client.post(f"/api/v1/pilot-zones/{pid}/transitions", json={"to": to, "comment": ""})


@each_trial
def test_twenty_identical_approvals_approve_once(stack, coordinator, official_of, trial):
    """The assigned coordinator sends the same approval 20 times at once: one 200, nineteen 409."""
    a = register(coordinator, city_body(f"Member A {tag()}"))
    b = register(coordinator, city_body(f"Member B {tag()}", country_code="KZ"))
    wait = "SELECT count(*) FROM known_city WHERE id IN (:a, :b)"
    eventually(lambda: query(stack.config.database_url("pilot_zones"), wait, a=a, b=b) == [(2,)], what="known cities")
    official_a, official_b = official_of(a), official_of(b)
    created = official_a.post("/api/v1/pilot-zones", json={"title": f"race {tag()}", "city_ids": [a, b]})
    assert created.status_code == 201, created.text
    pid = created.json()["id"]
    assert official_b.post(f"/api/v1/pilot-zones/{pid}/members/{b}/confirm").status_code == 200
    assert move(official_a, pid, "submitted").status_code == 200
    under_review = move(coordinator, pid, "under_review")  # makes this coordinator the assigned one
    assert under_review.status_code == 200, under_review.text
    approve = {"to": "approved", "comment": "yes"}
    url = f"/api/v1/pilot-zones/{pid}/transitions"
    request = {"method": "POST", "url": url, "json": approve, "headers": bearer(coordinator)}
    read = {"method": "GET", "url": f"/api/v1/pilot-zones/{pid}", "headers": bearer(coordinator)}
    responses = release_together(stack.config.gateway_url, [request] * 20, warm_up=read)

    won = [r for r in responses if r.status_code == 200]
    assert len(won) == 1, f"{len(won)} of 20 identical approvals succeeded: {statuses(responses)}"
    assert_problems([r for r in responses if r is not won[0]], 409)
    proposal = coordinator.get(f"/api/v1/pilot-zones/{pid}").json()
    assert proposal["status"] == "approved" and proposal["version"] == under_review.json()["version"] + 1
    assert [t["to_status"] for t in proposal["transitions"]] == ["submitted", "under_review", "approved"]
    timeline = coordinator.get(f"/api/v1/pilot-zones/{pid}/timeline", params={"limit": 100}).json()["items"]
    approvals = [e for e in timeline if e["action"] == "transition" and e["details"]["to"] == "approved"]
    assert len(approvals) == 1, f"{len(approvals)} approval entries on the timeline"
    outbox_drained(stack, "pilot_zones")
    approved = events_about(stack, "pilot_zones.proposal.approved.v1", pid)
    assert len(approved) == 1, f"{len(approved)} approved events"
    # identity's notifications follow the events: one per member official, not one per duplicate event.
    handled(stack, "identity", approved)
    notes = "SELECT count(*) FROM notification WHERE kind = 'pilot_zones.proposal.approved.v1' AND link = :l"
    assert query(stack.config.database_url("identity"), notes, l=f"/pilot-zones/{pid}") == [(2,)]


# --------------------------------------------------------------------------- 4. identity: refresh once


@each_trial
def test_one_refresh_token_used_at_once_rotates_once_and_voids_the_family(stack, admin, trial):
    """20 refreshes with one token: one new pair; the rest are reuse (401), which revokes the family."""
    user = create_user(admin, ["observer"])
    signed_in = httpx.post(
        f"{stack.config.gateway_url}/api/v1/auth/token",
        data={"username": user["email"], "password": PASSWORD},
        timeout=30,
    )
    assert signed_in.status_code == 200, signed_in.text
    token = signed_in.json()["refresh_token"]
    refresh = {"method": "POST", "url": "/api/v1/auth/refresh", "json": {"refresh_token": token}}
    keys = {"method": "GET", "url": "/.well-known/jwks.json"}  # served by identity from its database
    responses = release_together(stack.config.gateway_url, [refresh] * 20, warm_up=keys)

    won = [r for r in responses if r.status_code == 200]
    assert len(won) == 1, f"{len(won)} of 20 refreshes with one token succeeded: {statuses(responses)}"
    assert_problems([r for r in responses if r is not won[0]], 401)
    again = httpx.post(
        f"{stack.config.gateway_url}/api/v1/auth/refresh",
        json={"refresh_token": won[0].json()["refresh_token"]},
        timeout=30,
    )
    assert again.status_code == 401, "the reuse voids the whole family, the token just issued too"
    identity_db = stack.config.database_url("identity")
    live = "SELECT count(*) FROM refresh_token WHERE user_id = :u AND revoked_at IS NULL"
    assert query(identity_db, live, u=user["id"]) == [(0,)]
    reused = "SELECT count(*) FROM audit_entry WHERE action = 'refresh.reused' AND actor_id = :u"
    assert query(identity_db, reused, u=user["id"])[0][0] >= 1


# --------------------------------------------------------------------------- afterwards: projections


def test_every_projection_equals_its_source(stack, coordinator):
    """After all the races above, every profile's copies in matching and pilot_zones equal it."""
    outbox_drained(stack, "profiles")
    cities = coordinator.get("/api/v1/cities/export", params={"format": "json"}).json()
    assert cities
    assert_projections_equal(stack, coordinator, [c["id"] for c in cities])


# --------------------------------------------------------------------------- 5. JWKS at start-up (restarts: last)


@each_trial
def test_a_fresh_service_verifies_its_first_concurrent_requests(stack, admin, trial):
    """20 first authenticated requests to a just-started pilot_zones: none is 401 "unknown signing key"."""
    user = create_user(admin, ["coordinator"])
    with client_for(stack.config.gateway_url, user["email"]) as signed_in:  # a token from identity, before the restart
        headers = bearer(signed_in)
    stack.stop_part("pilot_zones")
    stack.start_service("pilot_zones")
    stack.wait_ready(names=["pilot_zones"])
    # Straight to the service, whose key cache is empty; the warm-up needs no token, so it fetches no key.
    first = {"method": "GET", "url": "/api/v1/pilot-zones", "params": {"limit": 1}, "headers": headers}
    alive = {"method": "GET", "url": "/readyz"}
    responses = release_together(stack.config.service_url("pilot_zones"), [first] * 20, warm_up=alive)
    refused = [r.json().get("detail") for r in responses if r.status_code != 200]
    assert not refused, f"{len(refused)} of 20 first requests refused: {refused[:3]}"
