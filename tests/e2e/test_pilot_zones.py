"""Pilot zones end to end: the whole workflow, bad input, a match becoming a draft, comments, stale work,
exports, open data, and restarts of pilot_zones and NATS. Every part is a real process."""

import csv
import io
import itertools
import uuid

import pytest

from citypair_pilot_zones.workflow import ALLOWED, Status
from citypair_shared.events import MatchAccepted, new_event
from tests.e2e.conftest import start_stack
from tests.support import city_body, client_for, connect_nats, create_user, eventually, query, run_async

PROBLEM_JSON = "application/problem+json"
PROPOSER_MOVES = {"submitted", "withdrawn"}
# The moves that bring a fresh draft to each state (members are confirmed first).
PATH_TO = {
    "draft": [],
    "submitted": ["submitted"],
    "under_review": ["submitted", "under_review"],
    "changes_requested": ["submitted", "under_review", "changes_requested"],
    "approved": ["submitted", "under_review", "approved"],
    "rejected": ["submitted", "under_review", "rejected"],
    "active": ["submitted", "under_review", "approved", "active"],
    "completed": ["submitted", "under_review", "approved", "active", "completed"],
    "withdrawn": ["withdrawn"],
}
_names = itertools.count()


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """The stack, with sign-in throttling out of the way: this module signs in an official per member city."""
    stack = start_stack(
        tmp_path_factory.mktemp("stack"),
        CITYPAIR_IDENTITY_SIGNIN_ADDRESS_ATTEMPTS="100000",
        CITYPAIR_PILOT_ZONES_STALE_SWEEP_SECONDS="1",
    )
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def db(stack) -> str:
    return stack.config.database_url("pilot_zones")


def register(client, name: str, **overrides) -> str:
    response = client.post("/api/v1/cities", json=city_body(f"{name} {next(_names)}", **overrides))
    assert response.status_code == 201, response.text
    return response.json()["id"]


def wait_known(db: str, *city_ids: str, status: str = "published") -> None:
    """pilot_zones learns cities from profile events: wait until it knows these (in this status)."""
    marks = ", ".join(f":c{i}" for i in range(len(city_ids)))
    params = {f"c{i}": c for i, c in enumerate(city_ids)}
    sql = f"SELECT count(*) FROM known_city WHERE status = :s AND id IN ({marks})"
    eventually(lambda: query(db, sql, s=status, **params) == [(len(city_ids),)], what=f"pilot_zones to know {city_ids}")


def outbox_types(db: str, proposal_id: str) -> list[str]:
    return [t for (t,) in query(db, "SELECT type FROM outbox WHERE payload LIKE :p ORDER BY seq", p=f"%{proposal_id}%")]


def counts(db: str) -> tuple:
    return query(db, "SELECT (SELECT count(*) FROM proposal), (SELECT count(*) FROM outbox)")[0]


@pytest.fixture(scope="module")
def pair_factory(coordinator, official_of, db):
    """Two fresh known cities with an official each: (a, b, official of a, official of b)."""

    def make(**overrides):
        a = register(coordinator, "Member A", **overrides)
        b = register(coordinator, "Member B", country_code="KZ")
        wait_known(db, a, b)
        return a, b, official_of(a), official_of(b)

    return make


def move(client, proposal_id: str, to: str, comment: str = "", **kwargs):
    return client.post(f"/api/v1/pilot-zones/{proposal_id}/transitions", json={"to": to, "comment": comment}, **kwargs)


def confirm(client, proposal_id: str, city_id: str):
    return client.post(f"/api/v1/pilot-zones/{proposal_id}/members/{city_id}/confirm")


FULL = {
    "objectives": ["Shared AI lab", "Cross-border e-commerce pilots"],
    "activities": [{"title": "Joint call", "description": "SMEs of both cities"}],
    "budget": {"amount": 2_500_000, "currency": "cny"},
    "budget_public": True,
    "funding_sources": [{"name": "City budgets", "amount": 1_000_000}, {"name": "Silk Road Fund"}],
    "start_date": "2027-01-01",
    "end_date": "2028-12-31",
    "milestones": [{"title": "Lab opens", "due_date": "2027-06-30", "evidence_url": "https://example.org/lab"}],
    "kpis": [{"name": "SMEs trading across", "unit": "companies", "target": 50}],
    "documents": [{"title": "Concept note", "url": "https://example.org/concept.pdf"}],
    "themes": ["ai", "ecommerce"],
}


def test_a_proposal_walks_through_every_state_with_every_step_on_record(coordinator, pair_factory, db):
    a, b, official_a, official_b = pair_factory()
    created = official_a.post(
        "/api/v1/pilot-zones", json={"title": "AI corridor", "city_ids": [a, b], "lead_city_id": b, **FULL}
    )
    assert created.status_code == 201, created.text
    proposal = created.json()
    pid = proposal["id"]
    assert created.headers["etag"] == '"1"' and created.headers["location"] == f"/api/v1/pilot-zones/{pid}"
    assert proposal["lead_city_id"] == b and proposal["budget"] == {"amount": 2_500_000, "currency": "CNY"}
    assert [(m["city_id"], m["confirmed"], m["lead"]) for m in proposal["members"]] == [
        (a, True, False),
        (b, False, True),
    ]
    assert all(m["name"].startswith("Member") for m in proposal["members"])

    # Every member city confirms before submission: 409 names the one missing.
    refused = move(official_a, pid, "submitted")
    assert refused.status_code == 409 and refused.headers["content-type"] == PROBLEM_JSON
    assert refused.json()["unconfirmed"] == [b]
    assert confirm(official_a, pid, b).status_code == 403, "an official confirms only their own city"
    assert confirm(official_b, pid, b).status_code == 200

    # Edits with If-Match: a stale ETag is 412 and changes nothing.
    etag = official_a.get(f"/api/v1/pilot-zones/{pid}").headers["etag"]
    edited = official_b.patch(f"/api/v1/pilot-zones/{pid}", json={"title": "AI corridor 2"}, headers={"If-Match": etag})
    assert edited.status_code == 200, edited.text
    stale = official_a.patch(f"/api/v1/pilot-zones/{pid}", json={"title": "lost"}, headers={"If-Match": etag})
    assert stale.status_code == 412 and stale.json()["current_version"] == edited.json()["version"]
    assert coordinator.patch(f"/api/v1/pilot-zones/{pid}", json={"title": "x"}).status_code == 403

    steps = [
        (official_a, "submitted"),
        (coordinator, "under_review"),
        (coordinator, "changes_requested"),
        (official_b, "submitted"),
        (coordinator, "under_review"),
        (coordinator, "approved"),
        (coordinator, "active"),
        (coordinator, "completed"),
    ]
    for number, (actor, to) in enumerate(steps):
        if to == "submitted" and number:  # sent back: the proposers edit, then submit again
            assert official_a.patch(f"/api/v1/pilot-zones/{pid}", json={"objectives": ["Revised"]}).status_code == 200
        if to == "active":  # approved: content is fixed, delivery tracking is open
            assert official_a.patch(f"/api/v1/pilot-zones/{pid}", json={"title": "x"}).status_code == 409
            kpis = [{"name": "SMEs trading across", "unit": "companies", "target": 50, "actual": 12}]
            assert coordinator.patch(f"/api/v1/pilot-zones/{pid}", json={"kpis": kpis}).status_code == 200
        moved = move(actor, pid, to, comment=f"step {number}")
        assert moved.status_code == 200, moved.text
        assert moved.json()["status"] == to
    final = moved.json()
    assert final["allowed_transitions"] == [] and final["kpis"][0]["actual"] == 12
    assert final["coordinator_id"] is not None, "the reviewing coordinator was assigned"
    assert [(t["to_status"], t["comment"]) for t in final["transitions"]] == [
        (to, f"step {n}") for n, (_, to) in enumerate(steps)
    ]
    assert all(t["actor_id"] and t["at"] for t in final["transitions"])

    # An event for every transition, through the outbox, in order.
    expected = [f"pilot_zones.proposal.{'activated' if to == 'active' else to}.v1" for _, to in steps]
    assert outbox_types(db, pid) == expected
    eventually(
        lambda: (
            query(db, "SELECT count(*) FROM outbox WHERE published_at IS NULL AND payload LIKE :p", p=f"%{pid}%")
            == [(0,)]
        ),
        what="every event published",
    )

    # The timeline: every change and transition, append-only, oldest first.
    timeline = official_a.get(f"/api/v1/pilot-zones/{pid}/timeline", params={"limit": 100}).json()
    actions = [e["action"] for e in timeline["items"]]
    assert actions[:3] == ["created", "confirmed", "edited"]
    assert actions.count("transition") == len(steps) and actions.count("edited") == 3
    assert "assigned" in actions
    edit = timeline["items"][2]
    assert edit["details"]["changes"]["title"] == ["AI corridor", "AI corridor 2"] and edit["actor_id"]


@pytest.fixture(scope="module")
def in_state(coordinator, pair_factory):
    """A proposal in each state (made on first use), with the officials of its cities."""
    made = {}

    def get(state: str):
        if state not in made:
            a, b, official_a, official_b = pair_factory()
            pid = official_a.post("/api/v1/pilot-zones", json={"title": f"in {state}", "city_ids": [a, b]}).json()["id"]
            assert confirm(official_b, pid, b).status_code == 200
            for step in PATH_TO[state]:
                actor = official_a if step in PROPOSER_MOVES else coordinator
                assert move(actor, pid, step).status_code == 200
            made[state] = (pid, official_a)
        return made[state]

    return get


FORBIDDEN_BY_STATE = [(s.value, t.value) for s in Status for t in Status if t not in ALLOWED[s] and t != Status.draft]


@pytest.mark.parametrize(("state", "target"), FORBIDDEN_BY_STATE)
def test_every_move_the_state_forbids_is_409_listing_what_is_allowed(in_state, coordinator, state, target):
    pid, official = in_state(state)
    actor = official if target in PROPOSER_MOVES else coordinator  # someone whose role would allow it
    response = move(actor, pid, target)
    assert response.status_code == 409, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["allowed"] == sorted(t.value for t in ALLOWED[Status(state)])
    assert coordinator.get(f"/api/v1/pilot-zones/{pid}").json()["status"] == state


ALLOWED_MOVES = [(s.value, t.value) for s in Status for t in sorted(ALLOWED[s])]


@pytest.mark.parametrize(("state", "target"), ALLOWED_MOVES)
def test_every_move_by_the_wrong_role_is_403_listing_the_users_moves(in_state, coordinator, state, target):
    pid, official = in_state(state)
    actor = coordinator if target in PROPOSER_MOVES else official
    response = move(actor, pid, target)
    assert response.status_code == 403, response.text
    mine = PROPOSER_MOVES if actor is official else {t.value for t in Status} - PROPOSER_MOVES
    assert response.json()["allowed"] == sorted({t.value for t in ALLOWED[Status(state)]} & mine)
    assert coordinator.get(f"/api/v1/pilot-zones/{pid}").json()["status"] == state


def test_nobody_moves_a_proposal_back_to_draft(in_state, coordinator):
    pid, official = in_state("submitted")
    for actor in (official, coordinator):
        assert move(actor, pid, "draft").status_code == 403


@pytest.fixture(scope="module")
def retired_city(coordinator, db) -> str:
    city = register(coordinator, "Retiring")
    wait_known(db, city)
    assert coordinator.post(f"/api/v1/cities/{city}/retire").status_code == 200
    wait_known(db, city, status="retired")
    return city


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"start_date": "2027-05-01", "end_date": "2027-04-30"}, "end_date"),
        ({"budget": {"amount": -5, "currency": "EUR"}}, "budget.amount"),
        ({"budget": {"amount": 5, "currency": "ZZZ"}}, "budget.currency"),
        ({"city_ids": "one"}, "city_ids"),
        ({"city_ids": "unknown"}, "city_ids[1]"),
        ({"city_ids": "retired"}, "city_ids[1]"),
        ({"lead_city_id": "not-a-member"}, "lead_city_id"),
    ],
    ids=["end-before-start", "negative-budget", "unknown-currency", "one-member", "unknown-city", "retired-city",
         "lead-not-member"],
)  # fmt: skip
def test_bad_input_is_422_naming_the_field_and_writes_nothing(pair_factory, retired_city, db, change, field):
    a, b, official_a, _ = pair_factory()
    members = {"one": [a], "unknown": [a, "no-such-city"], "retired": [a, retired_city]}
    body = {"title": "bad", "city_ids": [a, b], **change}
    if isinstance(change.get("city_ids"), str):
        body["city_ids"] = members[change["city_ids"]]
    before = counts(db)
    response = official_a.post("/api/v1/pilot-zones", json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert [e["field"] for e in response.json()["errors"]] == [field]
    assert counts(db) == before, "no proposal row, no outbox row"


def test_a_duplicate_open_proposal_for_the_same_cities_is_409(pair_factory, db):
    a, b, official_a, official_b = pair_factory()
    first = official_a.post("/api/v1/pilot-zones", json={"title": "first", "city_ids": [a, b]}).json()
    before = counts(db)
    again = official_b.post("/api/v1/pilot-zones", json={"title": "again", "city_ids": [b, a]})
    assert again.status_code == 409 and again.json()["existing_id"] == first["id"]
    assert counts(db) == before
    assert move(official_a, first["id"], "withdrawn").status_code == 200
    assert official_b.post("/api/v1/pilot-zones", json={"title": "again", "city_ids": [b, a]}).status_code == 201


def publish(stack, event, *msg_ids: str) -> None:
    async def go():
        nc = await connect_nats(stack)
        js = nc.jetstream()
        for msg_id in msg_ids:
            await js.publish(event.type, event.model_dump_json().encode(), headers={"Nats-Msg-Id": msg_id})
        await nc.close()

    run_async(go())


def match_event(a: str, b: str, weights: str = "w-test-1"):
    data = MatchAccepted(
        city_ids=[a, b],
        score=0.87,
        factors={"ai": 0.5, "ecommerce": 0.37},
        weights_version=weights,
        profile_versions={a: 1, b: 1},
        themes=["ai", "ecommerce", "not-a-theme"],
    )
    return new_event(data, source="/citypair/matching", subject=f"{a}:{b}")


def drafts_for(db: str, a: str, b: str) -> list[tuple]:
    return query(
        db, "SELECT id FROM proposal WHERE match_key IS NOT NULL AND member_key = :k", k=",".join(sorted([a, b]))
    )


def test_an_accepted_match_becomes_one_draft_however_often_it_arrives(stack, coordinator, pair_factory, db):
    a, b, official_a, official_b = pair_factory()
    event = match_event(a, b)
    # Twice with new Nats-Msg-Ids (past JetStream's de-duplication), then re-published under a new event id.
    publish(stack, event, str(uuid.uuid4()), str(uuid.uuid4()))
    publish(stack, match_event(b, a), str(uuid.uuid4()))
    [(pid,)] = eventually(lambda: drafts_for(db, a, b), what="a draft for the accepted match")
    eventually(
        lambda: query(db, "SELECT count(*) FROM inbox WHERE type = 'matching.match.accepted.v1' AND event_id = :e",
                      e=event.id) == [(1,)],
        what="the event handled once",
    )  # fmt: skip
    assert len(drafts_for(db, a, b)) == 1

    proposal = official_a.get(f"/api/v1/pilot-zones/{pid}").json()
    assert proposal["status"] == "draft" and proposal["city_ids"] == [a, b]
    assert proposal["themes"] == ["ai", "ecommerce"]
    assert proposal["score_record"] == {
        "score": 0.87,
        "factors": {"ai": 0.5, "ecommerce": 0.37},
        "weights_version": "w-test-1",
        "profile_versions": {a: 1, b: 1},
        "themes": ["ai", "ecommerce", "not-a-theme"],
    }
    assert [m["confirmed"] for m in proposal["members"]] == [False, False]
    assert official_a.get(f"/api/v1/pilot-zones/{pid}/timeline").json()["items"][0]["action"] == "created_from_match"
    # The member officials take it from here; the score record stays as it was.
    for official, city in ((official_a, a), (official_b, b)):
        assert confirm(official, pid, city).status_code == 200
    edited = official_a.patch(f"/api/v1/pilot-zones/{pid}", json={"themes": ["ai"]})
    assert edited.json()["score_record"] == proposal["score_record"]
    assert move(official_a, pid, "submitted").status_code == 200


def test_private_reviewer_notes_never_reach_officials(coordinator, in_state, official_of, db):
    pid, official = in_state("under_review")
    url = f"/api/v1/pilot-zones/{pid}/comments"
    question = official.post(url, json={"body": "When do we hear back?"})
    assert question.status_code == 201, question.text
    answer = coordinator.post(url, json={"body": "Next week.", "parent_id": question.json()["id"]})
    assert answer.status_code == 201 and answer.json()["parent_id"] == question.json()["id"]
    note = coordinator.post(url, json={"body": "Budget looks thin (reviewers only)", "private": True})
    assert note.status_code == 201 and note.json()["private"] is True
    reply_to_note = coordinator.post(url, json={"body": "Agreed", "parent_id": note.json()["id"]})
    assert reply_to_note.json()["private"] is True, "a reply to a private note stays private"

    assert official.post(url, json={"body": "sneaky", "private": True}).status_code == 403
    hidden = official.post(url, json={"body": "re", "parent_id": note.json()["id"]})
    assert hidden.status_code == 422 and hidden.json()["errors"][0]["field"] == "parent_id"

    seen_by_official = official.get(url).json()
    assert [c["body"] for c in seen_by_official["items"]] == ["When do we hear back?", "Next week."]
    assert seen_by_official["total"] == 2
    assert len(coordinator.get(url).json()["items"]) == 4
    for path in ("", "/timeline", "/comments"):
        assert "thin" not in official.get(f"/api/v1/pilot-zones/{pid}{path}", params={"limit": 100}).text
    official_timeline = official.get(f"/api/v1/pilot-zones/{pid}/timeline", params={"limit": 100}).json()["items"]
    coordinator_timeline = coordinator.get(f"/api/v1/pilot-zones/{pid}/timeline", params={"limit": 100}).json()["items"]
    assert len(coordinator_timeline) - len(official_timeline) == 2, "the notes' timeline entries are hidden too"
    assert "thin" not in "".join(p for (p,) in query(db, "SELECT payload FROM outbox")), "notes are never events"


def test_lists_filter_and_the_board_counts(coordinator, in_state, pair_factory, admin):
    active, _ = in_state("active")
    a, b, official_a, official_b = pair_factory()
    body = {"title": "overdue", "city_ids": [a, b], "themes": ["telemedicine"],
            "milestones": [{"title": "Late", "due_date": "2020-01-01"}]}  # fmt: skip
    overdue = official_a.post("/api/v1/pilot-zones", json=body).json()["id"]

    def ids(**params):
        response = coordinator.get("/api/v1/pilot-zones", params={"limit": 100, **params})
        assert response.status_code == 200, response.text
        return {p["id"] for p in response.json()["items"]}

    assert ids(city_id=b) == {overdue}
    assert overdue in ids(theme="telemedicine") and active not in ids(theme="telemedicine")
    assert overdue in ids(overdue=True) and overdue not in ids(overdue=False)
    assert active in ids(status="active") and overdue not in ids(status="active")
    me = coordinator.get("/api/v1/me").json()["id"]
    assert active in ids(coordinator_id=me) and overdue not in ids(coordinator_id=me)
    assert coordinator.get("/api/v1/pilot-zones", params={"theme": "teleportation"}).status_code == 422

    board = official_b.get("/api/v1/pilot-zones/board").json()
    assert set(board["counts"]) == {s.value for s in Status}
    assert board["total"] == sum(board["counts"].values()) == admin.get("/api/v1/pilot-zones").json()["total"]
    # Every page, the one past the end included, carries the whole total; the pages together are the list.
    at = range(0, board["total"] + 5, 3)
    pages = [admin.get("/api/v1/pilot-zones", params={"limit": 3, "offset": offset}).json() for offset in at]
    assert {page["total"] for page in pages} == {board["total"]}
    listed = [p["id"] for page in pages for p in page["items"]]
    assert len(listed) == len(set(listed)) == board["total"]
    assert board["counts"]["active"] >= 1 and board["overdue"] >= 1
    # A list item (read as plain rows) is what the proposal's own page gives the same user, for each user.
    for user in (coordinator, official_a, admin):
        for item in user.get("/api/v1/pilot-zones", params={"limit": 100}).json()["items"]:
            if item["id"] in (active, overdue):
                assert item == user.get(f"/api/v1/pilot-zones/{item['id']}").json()
                assert item["transitions"] or item["id"] == overdue


def test_exports_in_csv_and_json_for_reviewers_and_members(coordinator, in_state, pair_factory, official_of):
    pid, official = in_state("approved")
    every = coordinator.get("/api/v1/pilot-zones/export", params={"format": "json"})
    assert every.status_code == 200 and pid in {p["id"] for p in every.json()}
    rows = list(csv.DictReader(io.StringIO(coordinator.get("/api/v1/pilot-zones/export").text)))
    row = next(r for r in rows if r["id"] == pid)
    assert row["status"] == "approved" and row["title"] == "in approved"
    mine = official.get("/api/v1/pilot-zones/export", params={"format": "json"}).json()
    assert pid in {p["id"] for p in mine}
    assert all(set(p["city_ids"]) & set(official.get("/api/v1/me").json()["city_ids"]) for p in mine)
    stranger = official_of(pair_factory()[0])
    assert pid not in {p["id"] for p in stranger.get("/api/v1/pilot-zones/export", params={"format": "json"}).json()}


def test_the_open_data_list_is_public_and_holds_only_what_may_be_published(anonymous, coordinator, pair_factory):
    a, b, official_a, official_b = pair_factory()
    public = {"title": "open", "city_ids": [a, b], **FULL}
    pid = official_a.post("/api/v1/pilot-zones", json=public).json()["id"]
    assert confirm(official_b, pid, b).status_code == 200
    c, d, official_c, official_d = pair_factory()
    hidden_budget = {"title": "quiet", "city_ids": [c, d], **FULL, "budget_public": False}
    quiet = official_c.post("/api/v1/pilot-zones", json=hidden_budget).json()["id"]
    assert confirm(official_d, quiet, d).status_code == 200

    def listed() -> dict:
        response = anonymous.get("/api/v1/open-data/pilot-zones", params={"limit": 100})
        assert response.status_code == 200, response.text
        return {p["id"]: p for p in response.json()["items"]}

    assert pid not in listed(), "a draft is not open data"
    for proposal, official in ((pid, official_a), (quiet, official_c)):
        assert move(official, proposal, "submitted").status_code == 200
        for step in ("under_review", "approved"):
            assert move(coordinator, proposal, step).status_code == 200
    items = listed()
    entry = items[pid]
    assert set(entry) == {"id", "title", "status", "lead_city_id", "cities", "themes", "start_date", "end_date",
                          "budget"}  # fmt: skip
    assert entry["status"] == "approved" and entry["themes"] == ["ai", "ecommerce"]
    assert [c["id"] for c in entry["cities"]] == [a, b] and entry["cities"][0]["name"].startswith("Member A")
    assert entry["budget"] == {"amount": 2_500_000, "currency": "CNY"}
    assert items[quiet]["budget"] is None, "a budget not marked public stays out"
    assert "contacts" not in anonymous.get("/api/v1/open-data/pilot-zones").text


def stale_events(db: str, pid: str) -> int:
    return outbox_types(db, pid).count("pilot_zones.proposal.stale_flagged.v1")


def test_stale_work_is_flagged_once_per_episode(coordinator, official_of, pair_factory, db, admin):
    a, b, official_a, official_b = pair_factory()
    body = {"title": "slow", "city_ids": [a, b], "milestones": [{"title": "Overdue", "due_date": "2021-03-01"}]}
    pid = official_a.post("/api/v1/pilot-zones", json=body).json()["id"]
    assert confirm(official_b, pid, b).status_code == 200
    assert move(official_a, pid, "submitted").status_code == 200
    for step in ("under_review", "approved", "active"):
        assert move(coordinator, pid, step).status_code == 200
    proposal = official_a.get(f"/api/v1/pilot-zones/{pid}").json()
    assert proposal["stale"] is True and proposal["stale_reasons"] == ["overdue_milestone"]
    assert proposal["overdue_milestones"] == ["Overdue"]

    # The background sweep (every second in this stack) flags it; asking for a sweep now flags nothing more.
    eventually(lambda: stale_events(db, pid) == 1, what="the periodic sweep to flag the proposal")
    assert official_a.post("/api/v1/pilot-zones/stale-sweep").status_code == 403
    for reviewer in (coordinator, admin):
        swept = reviewer.post("/api/v1/pilot-zones/stale-sweep")
        assert swept.status_code == 200 and pid not in swept.json()["flagged"], "one event per episode"
    assert stale_events(db, pid) == 1

    done = [{"title": "Overdue", "due_date": "2021-03-01", "status": "done"}]
    assert official_a.patch(f"/api/v1/pilot-zones/{pid}", json={"milestones": done}).json()["stale"] is False
    coordinator.post("/api/v1/pilot-zones/stale-sweep")
    assert query(db, "SELECT stale_flagged_at FROM proposal WHERE id = :p", p=pid) == [(None,)], "episode over"
    late = [*done, {"title": "Late again", "due_date": "2022-01-01"}]
    assert official_a.patch(f"/api/v1/pilot-zones/{pid}", json={"milestones": late}).json()["stale"] is True
    coordinator.post("/api/v1/pilot-zones/stale-sweep")
    assert stale_events(db, pid) == 2, "a new episode, a new event"


def test_the_assigned_coordinator_decides_and_another_can_take_over(stack, admin, coordinator, in_state):
    pid, _ = in_state("under_review")
    other = client_for(stack.config.gateway_url, create_user(admin, ["coordinator"])["email"])
    refused = move(other, pid, "approved")
    assert refused.status_code == 403 and refused.json()["allowed"] == []
    assert refused.json()["coordinator_id"] == coordinator.get("/api/v1/me").json()["id"]
    assert other.get(f"/api/v1/pilot-zones/{pid}").json()["allowed_transitions"] == []
    unnamed = admin.post(f"/api/v1/pilot-zones/{pid}/assign", json={})
    assert unnamed.status_code == 422 and unnamed.json()["errors"][0]["field"] == "coordinator_id"
    taken = other.post(f"/api/v1/pilot-zones/{pid}/assign", json={"comment": "covering the holidays"})
    assert taken.status_code == 200 and taken.json()["coordinator_id"] == other.get("/api/v1/me").json()["id"]
    assert move(coordinator, pid, "approved").status_code == 403
    assert move(other, pid, "approved").status_code == 200
    entries = other.get(f"/api/v1/pilot-zones/{pid}/timeline", params={"limit": 100}).json()["items"]
    assigned = [e["details"] for e in entries if e["action"] == "assigned"]
    assert assigned[-1]["comment"] == "covering the holidays" and len(assigned) == 2
    other.close()


# --------------------------------------------------------------------------- last: restarts lose nothing


def test_restarting_pilot_zones_mid_flow_loses_no_transition_and_duplicates_no_draft(
    stack, coordinator, pair_factory, db
):
    a, b, official_a, official_b = pair_factory()
    stack.stop_part("pilot_zones", kill=True)
    event = match_event(a, b, weights="w-restart")
    publish(stack, event, event.id)  # arrives while pilot_zones is down: it waits in JetStream
    stack.start_service("pilot_zones")
    stack.wait_ready(names=["pilot_zones"])
    [(pid,)] = eventually(lambda: drafts_for(db, a, b), timeout=30, what="the draft after the restart")

    for official, city in ((official_a, a), (official_b, b)):
        assert confirm(official, pid, city).status_code == 200
    assert move(official_a, pid, "submitted").status_code == 200
    assert move(coordinator, pid, "under_review").status_code == 200

    stack.stop_part("pilot_zones", kill=True)
    publish(stack, event, str(uuid.uuid4()))  # the same match again, while it is down
    stack.start_service("pilot_zones")
    stack.wait_ready(names=["pilot_zones"])
    assert move(coordinator, pid, "approved").status_code == 200
    after = coordinator.get(f"/api/v1/pilot-zones/{pid}").json()
    assert [t["to_status"] for t in after["transitions"]] == ["submitted", "under_review", "approved"]
    eventually(
        lambda: query(db, "SELECT count(*) FROM inbox WHERE event_id = :e", e=event.id) == [(1,)],
        what="the re-delivery seen",
    )
    assert len(drafts_for(db, a, b)) == 1
    expected = ["pilot_zones.proposal.submitted.v1", "pilot_zones.proposal.under_review.v1",
                "pilot_zones.proposal.approved.v1"]  # fmt: skip
    assert outbox_types(db, pid) == expected


def test_transitions_made_while_nats_is_down_are_published_when_it_returns(stack, coordinator, pair_factory, db):
    a, b, official_a, official_b = pair_factory()
    pid = official_a.post("/api/v1/pilot-zones", json={"title": "offline", "city_ids": [a, b]}).json()["id"]
    assert confirm(official_b, pid, b).status_code == 200

    stack.stop_part("nats")
    try:
        assert move(official_a, pid, "submitted").status_code == 200
        assert move(coordinator, pid, "under_review").status_code == 200
        unsent = query(db, "SELECT count(*) FROM outbox WHERE published_at IS NULL AND payload LIKE :p", p=f"%{pid}%")
        assert unsent == [(2,)], "the events wait in the outbox"
    finally:
        stack.start_nats()
    eventually(
        lambda: (
            query(db, "SELECT count(*) FROM outbox WHERE published_at IS NULL AND payload LIKE :p", p=f"%{pid}%")
            == [(0,)]
        ),
        timeout=30,
        what="the events published after NATS returns",
    )
    assert move(coordinator, pid, "approved").status_code == 200
    assert [t["to_status"] for t in coordinator.get(f"/api/v1/pilot-zones/{pid}").json()["transitions"]] == [
        "submitted", "under_review", "approved",
    ]  # fmt: skip
