"""Mail through the stack's own SMTP server: a mail that could not be sent is sent once the server is back, and
once only; reset links expire; notifications are mailed at once or in one digest a day, as each user chose, and
the link in such a mail turns its kind off; a newly published city's partner suggestions reach the officials whose
minimum score they reach; `citypair users` mails invitations and resets through the API."""

import json
import time
import uuid

import pytest
from typer.testing import CliRunner

from citypair_cli.cli import app
from citypair_shared.events import CloudEvent, MatchAccepted, SuggestionsFound, new_event
from citypair_shared.events.pilot_zones import EVENT_FOR_STATUS
from tests.e2e.conftest import start_stack
from tests.e2e.test_accounts import NEW_PASSWORD, mail_to, mails_to, token_in
from tests.e2e.test_notifications import publish_twice
from tests.support import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    PASSWORD,
    city_body,
    client_for,
    create_user,
    eventually,
    partner_of,
    query,
    sign_in,
    stream_events,
)

RESET_LINK_SECONDS = 3


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """Quick retries, short reset links, and a digest check every second from midnight (UTC) on."""
    stack = start_stack(
        tmp_path_factory.mktemp("stack"),
        CITYPAIR_IDENTITY_MAIL_RETRY_FIRST_SECONDS="0.5",
        CITYPAIR_IDENTITY_MAIL_RETRY_MAX_SECONDS="1",
        CITYPAIR_IDENTITY_RESET_LINK_MINUTES=str(RESET_LINK_SECONDS / 60),
        CITYPAIR_IDENTITY_DIGEST_CHECK_SECONDS="1",
        CITYPAIR_IDENTITY_DIGEST_HOUR_UTC="0",
    )
    yield stack
    stack.stop()


def outbox(stack, key_pattern: str) -> list[tuple]:
    sql = "SELECT attempts, sent_at FROM mail_outbox WHERE key LIKE :key"
    return query(stack.config.database_url("identity"), sql, key=key_pattern)


def test_a_mail_the_smtp_server_was_away_for_is_sent_once_it_is_back(stack, admin, anonymous):
    user = create_user(admin, ["observer"])
    stack.stop_part("mailbox")
    try:
        assert anonymous.post("/api/v1/password-resets", json={"email": user["email"]}).status_code == 202
        eventually(
            lambda: any(attempts >= 2 for attempts, _ in outbox(stack, "password-reset:%")),
            what="attempts on the server that is away",
        )
    finally:
        stack.start_mailbox()
    mail_to(stack, user["email"])
    time.sleep(3)  # retries, were any still going, would have sent it again by now
    assert len(mails_to(stack, user["email"])) == 1
    assert [sent is not None for _, sent in outbox(stack, "password-reset:%")] == [True]


def test_a_reset_link_expires(stack, admin, anonymous):
    user = create_user(admin, ["observer"])
    assert anonymous.post("/api/v1/password-resets", json={"email": user["email"]}).status_code == 202
    token = token_in(stack, mail_to(stack, user["email"]), "password-reset")
    time.sleep(RESET_LINK_SECONDS + 0.5)
    late = anonymous.post("/api/v1/password-resets/complete", json={"token": token, "password": NEW_PASSWORD})
    assert late.status_code == 410 and late.json()["errors"][0]["field"] == "token", late.text


def match_accepted(city_id: str):
    data = MatchAccepted(
        city_ids=[city_id, str(uuid.uuid4())], score=0.9, factors={}, weights_version="t", profile_versions={}
    )
    return new_event(data, source="/test", subject=city_id)


def approved(city_id: str, title: str):
    data = EVENT_FOR_STATUS["approved"](
        proposal_id=str(uuid.uuid4()), title=title, city_ids=[city_id], from_status="under_review", to_status="approved"
    )
    return new_event(data, source="/test", subject=data.proposal_id)


def test_a_kind_wanted_at_once_is_mailed_once_per_event_and_its_link_turns_it_off(stack, admin, anonymous):
    city = str(uuid.uuid4())
    official = create_user(admin, ["official"], [city])
    with client_for(stack.config.gateway_url, official["email"]) as client:
        defaults = client.get("/api/v1/me/preferences").json()
        assert defaults == {
            "notifications": dict.fromkeys(
                ["action_needed", "match_decisions", "proposal_transitions", "stale_flags", "partner_suggestions"],
                "digest",
            ),
            "suggestion_min_score": 0.8,
        }
        wanted = {"notifications": {"match_decisions": "immediate", "proposal_transitions": "off"}}
        chosen = client.put("/api/v1/me/preferences", json=wanted).json()
        assert chosen["notifications"]["match_decisions"] == "immediate"
        assert chosen["notifications"]["stale_flags"] == "digest"  # not named: the default
        bad = client.put("/api/v1/me/preferences", json={"notifications": {"match_decisions": "hourly"}})
        assert bad.status_code == 422

        publish_twice(stack, match_accepted(city))  # the second copy is a redelivery: no second mail
        message = mail_to(stack, official["email"])
        assert message["Subject"] == "citypair: Match accepted"
        assert f"{stack.config.gateway_url}/cities/{city}/partners" in message.get_body(("plain",)).get_content()
        token = token_in(stack, message, "unsubscribe")
        assert message["List-Unsubscribe"] == f"<{stack.config.gateway_url}/unsubscribe/{token}>"

        assert anonymous.post("/api/v1/unsubscribe", json={"token": token[:-4] + "AAAA"}).status_code == 422
        off = anonymous.post("/api/v1/unsubscribe", json={"token": token})
        assert (off.status_code, off.json()) == (200, {"kind": "match_decisions"})
        assert client.get("/api/v1/me/preferences").json()["notifications"]["match_decisions"] == "off"
        publish_twice(stack, match_accepted(city))
        eventually(lambda: client.get("/api/v1/me/notifications").json()["total"] == 2, what="the notification")
        time.sleep(2)  # a digest check or two: the notifications of kinds off are in none
        assert len(mails_to(stack, official["email"])) == 1


def test_a_user_gets_one_digest_a_day_of_the_kinds_they_want_in_it(stack, admin):
    city = str(uuid.uuid4())
    official = create_user(admin, ["official"], [city])
    publish_twice(stack, approved(city, "Xi'an–Almaty AI corridor"))
    digest = mail_to(stack, official["email"])
    assert digest["Subject"] == "citypair: your daily digest (1)"
    assert "Xi'an–Almaty AI corridor: approved" in digest.get_body(("plain",)).get_content()
    assert digest["List-Unsubscribe"].startswith(f"<{stack.config.gateway_url}/unsubscribe/")
    publish_twice(stack, approved(city, "Xi'an–Almaty logistics hub"))
    time.sleep(3)  # three checks of the digest job: today's digest went out, the new one waits for tomorrow's
    assert len(mails_to(stack, official["email"])) == 1
    today = time.strftime("%Y-%m-%d", time.gmtime())
    keys = query(stack.config.database_url("identity"), "SELECT key FROM mail_outbox WHERE key LIKE :k", k="digest:%")
    assert (f"digest:{official['id']}:{today}",) in keys


def test_a_new_citys_partner_suggestions_reach_the_officials_whose_minimum_they_reach(stack, admin, coordinator):
    tag = uuid.uuid4().hex[:6]
    xian = city_body(f"Xi'an {tag}")
    a = coordinator.post("/api/v1/cities", json=xian).json()["id"]
    keen, choosy = create_user(admin, ["official"], [a]), create_user(admin, ["official"], [a])
    for official, min_score in ((keen, 0.0), (choosy, 1.0)):
        with client_for(stack.config.gateway_url, official["email"]) as client:
            wanted = {"notifications": {"partner_suggestions": "immediate"}, "suggestion_min_score": min_score}
            assert client.put("/api/v1/me/preferences", json=wanted).status_code == 200

    almaty = partner_of(xian, f"Almaty {tag}")
    b = coordinator.post("/api/v1/cities", json=almaty).json()["id"]  # published by its coordinator at once
    message = mail_to(stack, keen["email"])
    assert message["Subject"] == f"citypair: New partner suggestion: {almaty['name']}"
    assert f"{stack.config.gateway_url}/pairs/{a}/{b}" in message.get_body(("plain",)).get_content()
    with client_for(stack.config.gateway_url, keen["email"]) as client:
        [notice] = client.get("/api/v1/me/notifications").json()["items"]
    assert notice["kind"] == SuggestionsFound.event_type
    assert notice["title"] == f"New partner suggestion: {almaty['name']}"

    [found] = [e for e in stream_events(stack, SuggestionsFound.event_type) if e["data"]["city_id"] == b]
    [score] = [s["score"] for s in found["data"]["suggestions"] if s["city_id"] == a]
    assert 0 < score < 1.0  # below the choosy official's minimum: the same handling told them nothing
    with client_for(stack.config.gateway_url, choosy["email"]) as client:
        assert client.get("/api/v1/me/notifications").json()["total"] == 0
    assert mails_to(stack, choosy["email"]) == []

    # The city's registration delivered again stages no second suggestion; a later version of a published city none.
    [registered] = [e for e in stream_events(stack, "profiles.city.registered.v1") if e["data"]["city"]["id"] == b]
    publish_twice(stack, CloudEvent.model_validate(registered))
    new_name = f"Almaty city {tag}"
    renamed = coordinator.patch(f"/api/v1/cities/{b}", json={"name": new_name}, headers={"If-Match": '"1"'})
    assert renamed.status_code == 200, renamed.text
    eventually(
        lambda: [p for p in coordinator.get(f"/api/v1/cities/{a}/partners").json()["items"] if p["name"] == new_name],
        what="the new version in matching",
    )
    time.sleep(2)  # the redelivered copy, were the inbox to let it through, would have been handled by now
    assert [e for e in stream_events(stack, SuggestionsFound.event_type) if e["data"]["city_id"] == b] == [found]
    assert len(mails_to(stack, keen["email"])) == 1


def citypair(stack, *args: str, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD):
    """Run `citypair ...` as this user, against the stack's gateway."""
    env = {"CITYPAIR_GATEWAY_URL": stack.config.gateway_url, "CITYPAIR_EMAIL": email, "CITYPAIR_PASSWORD": password}
    return CliRunner().invoke(app, list(args), env=env)


def test_the_users_commands_work_through_the_api_as_the_signed_in_user(stack, admin, coordinator):
    address = f"cli-{uuid.uuid4().hex[:8]}@test.citypair"
    invited = citypair(stack, "users", "invite", address, "--role", "observer", "--name", "Ana", "--language", "zh")
    assert invited.exit_code == 0, invited.output
    assert json.loads(invited.output)["email"] == address
    assert mail_to(stack, address)["Subject"] == "您受邀加入 citypair"
    user = create_user(admin, ["observer"])
    listed = citypair(stack, "users", "list", "--search", user["email"], "--json")
    assert [u["id"] for u in json.loads(listed.output)] == [user["id"]], listed.output

    assert citypair(stack, "users", "disable", user["email"]).exit_code == 0
    assert [
        u["id"] for u in admin.get("/api/v1/users", params={"disabled": True, "q": user["email"]}).json()["items"]
    ] == [user["id"]]
    assert (
        citypair(stack, "users", "list", "--disabled", "--search", user["email"]).output.split("\t")[-2] == "disabled"
    )
    assert citypair(stack, "users", "disable", user["id"], "--enable").exit_code == 0
    reset = citypair(stack, "users", "reset", user["email"])
    assert reset.exit_code == 0, reset.output
    assert mail_to(stack, user["email"])["Subject"] == "Your citypair password was reset"
    assert sign_in(stack.config.gateway_url, user["email"], PASSWORD).status_code == 401

    # A coordinator's command is refused where the API refuses it.
    coordinator_user = coordinator.get("/api/v1/me").json()["email"]
    refused = citypair(stack, "users", "reset", user["id"], email=coordinator_user, password=PASSWORD)
    assert refused.exit_code == 1 and json.loads(refused.output)["status"] == 403
