"""Each service's own NATS user (citypair_shared.bus_access), against a real nats-server running the stack's config.

Before, anyone who reached NATS could forge any event: a `identity.user.tokens_revoked.v1` with a huge
version locked a user out of every service. Now a service may publish its own subjects, work its own
consumers and follow revocations, and nothing else; only the admin, the tooling's user, shapes streams.
"""

import asyncio
import json

import nats
import pytest
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import ConsumerConfig, RePublish, StreamConfig, StreamSource

from citypair_cli.bus_users import service_bus_users
from citypair_shared.bus import Bus, Subscription
from citypair_shared.bus_access import ADMIN, BusUser
from citypair_shared.declare_streams import declare_streams
from citypair_shared.events import STREAMS, CityRegistered, CitySnapshot, TokensRevoked, new_event, stream_of
from citypair_shared.revocations import REVOCATION_STREAM, follow_revocations
from citypair_shared.runtime import Runtime
from citypair_shared.settings import ServiceSettings
from tests.support import NatsServer

USERS = {user.name: user for user in service_bus_users()}
# A refused request is dropped by the server (and reported to the client's error callback): it times out.
REFUSED_WITHIN = 0.5


async def quiet(_error: Exception) -> None:
    """The refusal expected here; nats-py would log it."""


async def soon(check, what: str) -> None:
    """Poll `check` (which may be a coroutine function) until it is true."""
    for _ in range(200):
        done = check()
        if asyncio.iscoroutine(done):
            done = await done
        if done:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def start_server(tmp_path, users) -> NatsServer:
    return NatsServer(tmp_path / "nats", users=list(users)).start()


@pytest.fixture
async def server(tmp_path):
    server = start_server(tmp_path, USERS.values())
    await declare_streams(server.url, admin_password=server.passwords[ADMIN])
    yield server
    server.stop()


@pytest.fixture
async def connect(server):
    """Connect as a user, with the bus client the services use."""
    buses = []

    async def as_user(user: str, **kwargs) -> Bus:
        bus = Bus(server.url, user=user, password=server.passwords[user], **kwargs)
        await bus.connect(timeout=5)
        buses.append(bus)
        return bus

    yield as_user
    for bus in buses:
        await bus.close()


def city_event(subject: str = "c1"):
    city = CitySnapshot(
        id=subject, version=1, name="Xi'an", country_code="CN", latitude=34, longitude=109, population=1
    )
    return new_event(CityRegistered(city=city), source="/test", subject=subject)


def forged_revocation():
    data = TokensRevoked(user_id="u-1", min_token_version=2**62, reason="forged")
    return new_event(data, source="/attacker", subject="u-1")


async def stored(admin: Bus, stream: str) -> int:
    return (await admin.js.stream_info(stream)).state.messages


@pytest.mark.parametrize(
    "credentials",
    [{}, {"user": "profiles", "password": "guessed"}, {"user": ADMIN, "password": "p0"}],
    ids=["anonymous", "wrong-password", "wrong-admin-password"],
)
async def test_a_connection_without_a_users_password_is_refused(server, credentials):
    with pytest.raises(NatsError, match="Authorization Violation"):
        await nats.connect(server.url, allow_reconnect=False, connect_timeout=2, error_cb=quiet, **credentials)


async def test_a_forged_revocation_is_refused_and_never_stored(connect):
    """The attack: lock a user out everywhere with a revocation identity never issued."""
    admin = await connect(ADMIN)
    forged = forged_revocation()
    for name in USERS.keys() - {"identity"}:
        bus = await connect(name)
        with pytest.raises(NatsTimeout):
            await bus.js.publish(forged.type, forged.model_dump_json().encode(), timeout=REFUSED_WITHIN)
    assert await stored(admin, REVOCATION_STREAM) == 0
    await (await connect("identity")).publish(forged)  # its owner may
    assert await stored(admin, REVOCATION_STREAM) == 1


@pytest.mark.parametrize("name", sorted(USERS))
async def test_a_service_publishes_its_own_subjects_only(connect, name):
    admin, bus = await connect(ADMIN), await connect(name)
    own = stream_of(name) if USERS[name].publishes else None
    # Plain publishes: a stream stores whatever arrives on its subjects, acked or not. Its own one last,
    # so that once it is stored, the others have been dealt with.
    for stream in sorted(STREAMS, key=lambda s: s == own):
        await bus.nc.publish(STREAMS[stream].replace(">", "forged.v1"), b"{}")
    await bus.nc.publish("deadletter.someone--profiles", b"{}")
    if own:
        await soon(lambda: stored(admin, own), what=f"{name}'s own event stored")
    else:  # nothing of its own to wait for: the server has seen all once it answers a ping
        await bus.nc.flush()
    assert {s: await stored(admin, s) for s in [*STREAMS, "DEADLETTER"]} == {
        s: int(s == own) for s in [*STREAMS, "DEADLETTER"]
    }


async def test_web_sessions_are_read_and_written_by_web_only(connect):
    """The bucket holds every signed-in user's tokens: no other service may read or forge an entry."""
    admin, web = await connect(ADMIN), await connect("web")
    sessions = await web.js.key_value("web_sessions")
    await sessions.put("s1", b"tokens")
    assert (await sessions.get("s1")).value == b"tokens"
    for name in USERS.keys() - {"web"}:
        js = (await connect(name)).nc.jetstream(timeout=REFUSED_WITHIN)
        with pytest.raises(NatsTimeout):
            await js.key_value("web_sessions")  # its info, the first step of any use
        with pytest.raises(NatsTimeout):
            await js.get_msg("KV_web_sessions", subject="$KV.web_sessions.s1", direct=True)
        with pytest.raises(NatsTimeout):
            await js.publish("$KV.web_sessions.s1", b"forged", timeout=REFUSED_WITHIN)
    assert (await (await admin.js.key_value("web_sessions")).get("s1")).value == b"tokens"


@pytest.mark.parametrize("name", sorted(USERS))
async def test_a_service_cannot_read_a_stream_it_does_not_consume(connect, name):
    admin, bus = await connect(ADMIN), await connect(name)
    await admin.publish(city_event())
    js = bus.nc.jetstream(timeout=REFUSED_WITHIN)
    consumed = {s.stream for s in USERS[name].subscriptions}
    attempts = []
    for stream, subjects in STREAMS.items():
        if stream not in consumed:
            attempts += [
                js.add_consumer(stream, ConsumerConfig(name=f"spy-{stream.lower()}", filter_subject=subjects)),
                js.add_consumer(stream, ConsumerConfig(durable_name="spy")),  # the older request forms
                js.add_consumer(stream, ConsumerConfig()),
                js.get_msg(stream, seq=1),
            ]
    results = await asyncio.gather(*attempts, return_exceptions=True)
    assert all(isinstance(r, NatsTimeout) for r in results), results


async def test_a_service_receives_no_message_but_its_own_replies(connect):
    """Core subscriptions see every message on a subject: a service may subscribe to its own inbox only."""
    spy, identity = await connect("profiles"), await connect("identity")
    seen = []

    async def record(msg) -> None:
        seen.append(msg.subject)

    for subject in (">", "identity.>", "_INBOX.>", "_INBOX.identity.>"):
        await spy.nc.subscribe(subject, cb=record)
    await spy.nc.flush()
    await identity.publish(forged_revocation())  # its event, and the stream's ack to its inbox
    await spy.nc.flush()
    await asyncio.sleep(0.2)
    assert seen == []


async def test_no_service_may_create_or_reshape_a_stream(connect):
    """A stream's config can copy another stream (sources) and republish into any subject: the admin's only."""
    admin = await connect(ADMIN)
    attempts = []
    for name in (user.name for user in USERS.values() if user.publishes):
        js = (await connect(name)).nc.jetstream(timeout=REFUSED_WITHIN)
        own = stream_of(name)
        copy = RePublish(src=">", dest=f"_INBOX.{name}.copy.>")
        attempts += [
            js.update_stream(StreamConfig(name=own, subjects=[STREAMS[own]], republish=copy)),
            js.add_stream(StreamConfig(name=f"COPY_{own}", sources=[StreamSource(name=REVOCATION_STREAM)])),
            js.delete_stream(own),
        ]
    results = await asyncio.gather(*attempts, return_exceptions=True)
    assert all(isinstance(r, NatsTimeout) for r in results), results
    for name in (user.name for user in USERS.values() if user.publishes):
        assert (await admin.js.stream_info(stream_of(name))).config.republish is None


async def test_each_service_works_its_consumers_dead_letters_and_follows_revocations(connect):
    admin, profiles, identity = await connect(ADMIN), await connect("profiles"), await connect("identity")
    matching = await connect("matching", max_deliver=2)
    await identity.publish(new_event(TokensRevoked(user_id="u-1", min_token_version=2, reason="t"), source="/t"))

    revoked, stop = [], asyncio.Event()
    follower = await follow_revocations(matching, lambda user, version: revoked.append((user, version)), stop)
    assert revoked == [("u-1", 2)], "the replay is applied before follow_revocations returns"

    handled = []

    async def handle(event, delivered) -> None:
        if event.subject == "bad":
            raise ValueError("cannot handle")
        handled.append(event.subject)

    consumer = asyncio.create_task(matching.consume(Subscription("matching", "PROFILES"), handle, stop))
    await profiles.publish(city_event("good"))
    await profiles.publish(city_event("bad"))
    await identity.publish(new_event(TokensRevoked(user_id="u-2", min_token_version=5, reason="t"), source="/t"))

    await soon(lambda: stored(admin, "DEADLETTER"), what="the bad event dead-lettered")
    await soon(lambda: len(revoked) == 2, what="the live revocation applied")
    info = await matching.js.consumer_info("PROFILES", "matching--profiles")
    stop.set()
    await asyncio.gather(consumer, follower)
    assert handled == ["good"] and revoked[1] == ("u-2", 5)
    assert info.num_pending == 0 and info.num_ack_pending == 0, "every message acked or dead-lettered"
    assert (await admin.js.get_msg("DEADLETTER", seq=1)).subject == "deadletter.matching--profiles"


async def test_a_service_cannot_take_over_another_services_consumer_on_the_revocation_stream(tmp_path):
    """Every service may make consumers of any name there, for revocations only; not under another's name."""
    reader = BusUser("reader", publishes=False, subscriptions=(Subscription("reader", REVOCATION_STREAM),))
    users = [USERS["identity"], reader, BusUser("spy", publishes=False)]
    server = start_server(tmp_path, users)
    buses = {}
    try:
        await declare_streams(server.url, admin_password=server.passwords[ADMIN])
        for user in ("identity", "reader", "spy"):
            buses[user] = Bus(server.url, user=user, password=server.passwords[user])
            await buses[user].connect(timeout=5)
        durable = reader.subscriptions[0].durable
        await buses["reader"].js.pull_subscribe(STREAMS[REVOCATION_STREAM], durable=durable, stream=REVOCATION_STREAM)
        await buses["identity"].publish(forged_revocation())

        spy = buses["spy"].js
        revocations_only = ConsumerConfig(name=durable, filter_subject=TokensRevoked.event_type)
        with pytest.raises(NatsTimeout):
            await spy.add_consumer(REVOCATION_STREAM, revocations_only, timeout=REFUSED_WITHIN)
        with pytest.raises(NatsTimeout):
            await (await spy.pull_subscribe_bind(durable, stream=REVOCATION_STREAM)).fetch(1, timeout=REFUSED_WITHIN)
        # The subject it may publish names the revocations, but the request asks for all of identity's stream.
        sneaky = {"stream_name": REVOCATION_STREAM, "config": {"name": "sneaky", "filter_subject": "identity.>"}}
        subject = f"$JS.API.CONSUMER.CREATE.{REVOCATION_STREAM}.sneaky.{TokensRevoked.event_type}"
        answer = json.loads((await buses["spy"].nc.request(subject, json.dumps(sneaky).encode(), timeout=2)).data)
        assert "error" in answer, "the server holds a create request to the filter its subject names"
        own = ConsumerConfig(name="spy-revocations", filter_subject=TokensRevoked.event_type)
        assert (await spy.add_consumer(REVOCATION_STREAM, own, timeout=2)).num_pending == 1, "its own: allowed"

        sub = await buses["reader"].js.pull_subscribe_bind(durable, stream=REVOCATION_STREAM)
        assert len(await sub.fetch(1, timeout=2)) == 1, "the message was still the reader's"
    finally:
        for bus in buses.values():
            await bus.close()
        server.stop()


async def test_the_revocation_follower_resumes_after_nats_server_restarts(server, connect):
    """Its consumer lives in the server's memory: a new one resumes after the last revocation applied."""
    matching, identity = await connect("matching"), await connect("identity")
    revoked, stop = [], asyncio.Event()
    follower = await follow_revocations(matching, lambda user, version: revoked.append((user, version)), stop)

    await identity.publish(new_event(TokensRevoked(user_id="u-1", min_token_version=2, reason="t"), source="/t"))
    await soon(lambda: len(revoked) == 1, what="the first revocation")
    server.stop()
    server.start()
    second = new_event(TokensRevoked(user_id="u-2", min_token_version=3, reason="t"), source="/t")

    async def published() -> bool:  # as the outbox relay does, until JetStream is back
        try:
            await identity.publish(second)
        except Exception:  # noqa: BLE001 - not reconnected yet
            return False
        return True

    await soon(published, what="identity's publish after the restart")
    await soon(lambda: len(revoked) == 2, what="the revocation after the restart")
    stop.set()
    await follower
    assert revoked == [("u-1", 2), ("u-2", 3)], "each once"


async def test_a_production_service_that_uses_the_bus_needs_its_nats_password():
    settings = ServiceSettings(service_name="profiles", environment="production", database_url="postgresql://h/d")
    runtime = Runtime(settings, event_handlers={CityRegistered.event_type: None})
    with pytest.raises(RuntimeError, match="NATS_PASSWORD"):
        await runtime.start()
