"""Nothing accepted is lost: NATS down before publishing, duplicate delivery, a restarted consumer."""

import uuid

import pytest

from tests.support import city_body, connect_nats, eventually, handled, partner_ids, partner_of, query, run_async


@pytest.fixture(scope="module")
def gateway(coordinator):
    return coordinator


def test_city_accepted_while_nats_is_down_reaches_matching_exactly_once(stack, gateway):
    anchor = city_body("Chongqing")
    a = gateway.post("/api/v1/cities", json=anchor).json()["id"]
    eventually(lambda: gateway.get(f"/api/v1/cities/{a}/partners").status_code == 200, what="anchor in matching")

    stack.stop_part("nats")
    accepted = gateway.post("/api/v1/cities", json=partner_of(anchor, "Tashkent", "UZ"))
    assert accepted.status_code == 201
    b = accepted.json()["id"]
    profiles_db = stack.config.database_url("profiles")
    unsent = query(profiles_db, "SELECT event_id FROM outbox WHERE published_at IS NULL")
    assert len(unsent) == 1, "the event waits in the outbox while NATS is down"
    event_id = unsent[0][0]

    stack.start_nats()
    eventually(lambda: b in partner_ids(gateway, a), timeout=30, what="Tashkent suggested after NATS returns")
    matching_db = stack.config.database_url("matching")
    # Matching's memory (its followers) may know before its database does (its durable consumer commits), and the
    # relay marks the event sent once JetStream has acknowledged it: each is awaited, and then must be exactly once.
    counts = {
        (matching_db, "SELECT count(*) FROM inbox WHERE event_id = :e"): 1,
        (matching_db, "SELECT count(*) FROM city_projection WHERE id = :b"): 1,
        (profiles_db, "SELECT count(*) FROM outbox WHERE published_at IS NULL"): 0,
    }
    for (url, sql), count in counts.items():
        eventually(lambda url=url, sql=sql, count=count: query(url, sql, e=event_id, b=b) == [(count,)], what=sql)


def test_same_event_delivered_twice_has_one_effect(stack, gateway):
    b = gateway.post("/api/v1/cities", json=city_body("Samarkand", country_code="UZ")).json()["id"]
    eventually(lambda: gateway.get(f"/api/v1/cities/{b}/partners").status_code == 200, what="Samarkand in matching")
    payload, event_id = query(
        stack.config.database_url("profiles"),
        "SELECT payload, event_id FROM outbox WHERE payload LIKE :p",
        p=f"%{b}%",
    )[0]
    duplicates_before = handled(stack, "duplicate")

    async def publish_again():
        nc = await connect_nats(stack, "profiles")  # the producer's own NATS user: nobody else may publish this
        # A new Nats-Msg-Id gets past JetStream's de-duplication: only the inbox can stop it now.
        await nc.jetstream().publish(
            "profiles.city.registered.v1", payload.encode(), headers={"Nats-Msg-Id": str(uuid.uuid4())}
        )
        await nc.close()

    run_async(publish_again())
    eventually(lambda: handled(stack, "duplicate") == duplicates_before + 1, what="the redelivery seen as duplicate")
    matching_db = stack.config.database_url("matching")
    assert query(matching_db, "SELECT count(*) FROM inbox WHERE event_id = :e", e=event_id) == [(1,)]
    assert query(matching_db, "SELECT count(*) FROM city_projection WHERE id = :b", b=b) == [(1,)]


def test_matching_restart_keeps_its_projection_and_graph(stack, gateway):
    anchor = city_body("Harbin", themes={"smart_city": {"offer": 5, "need": 1}, "ai": {"offer": 0, "need": 5}})
    a = gateway.post("/api/v1/cities", json=anchor).json()["id"]
    b = gateway.post("/api/v1/cities", json=partner_of(anchor, "Vladivostok", "RU")).json()["id"]
    before = eventually(lambda: (ids := partner_ids(gateway, a)) and b in ids and ids, what="Vladivostok suggested")
    matching_db = stack.config.database_url("matching")
    handled_before = query(matching_db, "SELECT count(*) FROM inbox")

    stack.stop_part("matching", kill=True)
    stack.start_service("matching")
    stack.wait_ready(names=["matching"])

    assert partner_ids(gateway, a) == before
    assert query(matching_db, "SELECT count(*) FROM inbox") == handled_before, "nothing was replayed"
