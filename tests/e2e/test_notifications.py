"""identity turns other services' events into notifications for the users concerned."""

import uuid

from citypair_shared.events import new_event
from citypair_shared.events.pilot_zones import EVENT_FOR_STATUS
from tests.support import client_for, connect_nats, create_user, eventually, run_async


def publish_twice(stack, event) -> None:
    async def go():
        nc = await connect_nats(stack)
        js = nc.jetstream()
        for _ in range(2):  # a second copy with a new message id: only the inbox can stop it
            await js.publish(event.type, event.model_dump_json().encode(), headers={"Nats-Msg-Id": str(uuid.uuid4())})
        await nc.close()

    run_async(go())


def test_officials_of_member_cities_are_notified_once_and_others_not(stack, admin):
    mine, other = str(uuid.uuid4()), str(uuid.uuid4())
    official = create_user(admin, ["official"], [mine])
    outsider = create_user(admin, ["official"], [other])
    approved = EVENT_FOR_STATUS["approved"](
        proposal_id="p-1",
        title="Xi'an–Almaty AI corridor",
        city_ids=[mine, "somewhere"],
        themes=["ai"],
        from_status="under_review",
        to_status="approved",
    )
    publish_twice(stack, new_event(approved, source="/test", subject="p-1"))
    with client_for(stack.config.gateway_url, official["email"]) as client:
        items = eventually(lambda: client.get("/api/v1/me/notifications").json()["items"], what="a notification")
        assert len(items) == 1
        assert items[0]["title"] == "Xi'an–Almaty AI corridor: approved" and items[0]["link"] == "/pilot-zones/p-1"
        assert client.post(f"/api/v1/me/notifications/{items[0]['id']}/read").status_code == 204
        assert client.get("/api/v1/me/notifications", params={"unread": True}).json()["total"] == 0
    with client_for(stack.config.gateway_url, outsider["email"]) as client:
        assert client.get("/api/v1/me/notifications").json()["total"] == 0
        assert client.post(f"/api/v1/me/notifications/{items[0]['id']}/read").status_code == 404
