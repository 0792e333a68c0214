"""Dead letters against a real nats-server and database: what failed, where, how often and why; replayed
(each consumer applies the event once, through its inbox), replayed all, discarded; and `citypair dead-letters`."""

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from citypair_cli import dead_letters
from citypair_cli.cli import app
from citypair_shared.bus import Bus, Subscription
from citypair_shared.bus_access import ADMIN
from citypair_shared.events import CityRegistered, CitySnapshot, CloudEvent, new_event
from citypair_shared.runtime import Runtime
from citypair_shared.settings import ServiceSettings
from tests.integration.conftest import Inbox
from tests.support import NatsServer

EVENT_TYPE = CityRegistered.event_type


def city_event(city_id: str = "c1") -> CloudEvent:
    city = CitySnapshot(
        id=city_id, version=1, name="Xi'an", country_code="CN", latitude=34.3, longitude=108.9, population=1
    )
    return new_event(CityRegistered(city=city), source="/test", subject=city_id)


class Service:
    """A consumer as a service runs one: a Runtime's dispatch, so each event is applied at most once (inbox)."""

    def __init__(self, name: str, bus: Bus, session_factory, *, broken: bool = False):
        self.name, self.bus, self.session_factory = name, bus, session_factory
        self.broken = broken
        self.applied: list[str] = []
        self.runtime = Runtime(
            ServiceSettings(service_name=name), inbox_model=Inbox, event_handlers={EVENT_TYPE: self.handle}
        )
        self.runtime.session_factory = session_factory
        self.subscription = Subscription(name, "PROFILES")
        self.stop = asyncio.Event()
        consume = bus.consume(
            self.subscription, self.runtime.dispatch, self.stop, handle_batch=self.runtime.dispatch_batch
        )
        self.task = asyncio.create_task(consume)

    async def handle(self, event: CloudEvent, session) -> None:
        if self.broken:
            raise RuntimeError(f"{self.name} cannot handle {event.id} yet")
        self.applied.append(event.id)

    async def inbox_rows(self) -> int:
        async with self.session_factory() as session:
            return await session.scalar(select(func.count()).select_from(Inbox).where(Inbox.consumer == self.name))

    async def close(self) -> None:
        self.stop.set()
        await self.task


async def soon(check, what: str, timeout: float = 15.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not (result := await check()):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)
    return result


async def dead_lettered(bus: Bus, count: int) -> None:
    async def stored():
        return (await bus.js.stream_info("DEADLETTER")).state.messages == count

    await soon(stored, f"{count} dead letters")


async def settled(bus: Bus, *services: Service) -> None:
    """Every message of the stream delivered to each service and acked (or given up on)."""

    async def done():
        infos = [await bus.js.consumer_info("PROFILES", s.subscription.durable) for s in services]
        return all(i.num_pending == 0 and i.num_ack_pending == 0 for i in infos)

    await soon(done, "the consumers to settle")


@pytest.fixture
async def services(bus, session_factory):
    started: list[Service] = []

    def start(name: str, *, broken: bool = False) -> Service:
        started.append(Service(name, bus, session_factory, broken=broken))
        return started[-1]

    yield start
    for service in started:
        await service.close()


async def test_a_poison_event_is_listed_with_where_how_often_and_why(bus, services):
    beta = services("beta", broken=True)
    event = city_event()
    await bus.publish(event)
    await dead_lettered(bus, 1)

    [dead] = await dead_letters.list_dead_letters(bus.js)
    assert dead.consumer == "beta--profiles"
    assert dead.subject == EVENT_TYPE
    assert dead.deliveries == bus.max_deliver == 2
    assert "beta cannot handle" in dead.error
    assert (dead.event_id, dead.event_type) == (event.id, EVENT_TYPE)
    assert datetime.now(UTC) - dead.dead_lettered_at < timedelta(minutes=1)
    assert beta.applied == []

    shown = (await dead_letters.show(bus.js, dead.id)).detail()
    assert shown["event"] == json.loads(event.model_dump_json())
    assert shown["consumer"] == "beta--profiles" and shown["deliveries"] == 2
    assert [d.id for d in await dead_letters.list_dead_letters(bus.js, consumer="beta")] == [dead.id]
    assert await dead_letters.list_dead_letters(bus.js, consumer="alpha--profiles") == []
    with pytest.raises(dead_letters.DeadLetterNotFound):
        await dead_letters.show(bus.js, dead.id + 1)


async def test_replay_applies_the_event_once_in_every_consumer_of_its_subject(bus, services):
    alpha, beta = services("alpha"), services("beta", broken=True)
    event = city_event()
    await bus.publish(event)
    await dead_lettered(bus, 1)
    await settled(bus, alpha, beta)
    assert alpha.applied == [event.id] and beta.applied == []

    beta.broken = False  # the fix is deployed
    [dead] = await dead_letters.list_dead_letters(bus.js)
    replayed = await dead_letters.replay(bus.js, dead.id)
    await settled(bus, alpha, beta)

    assert beta.applied == [event.id]
    assert alpha.applied == [event.id]  # it got the replay too: its inbox knew the event
    assert (await alpha.inbox_rows(), await beta.inbox_rows()) == (1, 1)
    assert await dead_letters.list_dead_letters(bus.js) == []
    republished = await bus.js.get_msg("PROFILES", seq=replayed.sequence)
    assert republished.subject == EVENT_TYPE
    assert republished.headers["Nats-Msg-Id"] == f"{event.id}:replay:{dead.id}"
    assert CloudEvent.model_validate_json(republished.data) == event
    with pytest.raises(dead_letters.DeadLetterNotFound):  # replayed is gone
        await dead_letters.replay(bus.js, dead.id)


async def test_replay_all_replays_every_dead_letter_and_each_consumer_applies_the_event_once(bus, services):
    alpha, beta = services("alpha", broken=True), services("beta", broken=True)
    event, other = city_event("c1"), city_event("c2")
    await bus.publish(event)
    await dead_lettered(bus, 2)  # the same event, dead-lettered by both: neither is dropped as a duplicate
    await bus.publish(other)
    await dead_lettered(bus, 4)
    dead = await dead_letters.list_dead_letters(bus.js)
    assert sorted((d.consumer, d.event_id) for d in dead) == sorted(
        (c, e.id) for c in ("alpha--profiles", "beta--profiles") for e in (event, other)
    )

    alpha.broken = beta.broken = False
    replayed, left = await dead_letters.replay_all(bus.js, consumer="alpha")
    assert left == [] and {r.dead_letter.consumer for r in replayed} == {"alpha--profiles"}
    await settled(bus, alpha, beta)
    assert [d.consumer for d in await dead_letters.list_dead_letters(bus.js)] == ["beta--profiles"] * 2
    # alpha's replays reached beta, fixed now, too
    assert sorted(alpha.applied) == sorted(beta.applied) == sorted([event.id, other.id])

    replayed, left = await dead_letters.replay_all(bus.js)  # each event published a second time
    assert left == [] and len(replayed) == 2
    await settled(bus, alpha, beta)
    assert sorted(alpha.applied) == sorted(beta.applied) == sorted([event.id, other.id])
    assert (await alpha.inbox_rows(), await beta.inbox_rows()) == (2, 2)
    assert await dead_letters.list_dead_letters(bus.js) == []


async def test_discard_removes_a_dead_letter_without_applying_it(bus, services):
    beta = services("beta", broken=True)
    await bus.publish(city_event())
    await dead_lettered(bus, 1)
    [dead] = await dead_letters.list_dead_letters(bus.js)

    assert (await dead_letters.discard(bus.js, dead.id)).id == dead.id
    beta.broken = False
    await settled(bus, beta)
    assert await dead_letters.list_dead_letters(bus.js) == []
    assert beta.applied == []
    with pytest.raises(dead_letters.DeadLetterNotFound):
        await dead_letters.discard(bus.js, dead.id)


async def test_an_event_older_than_its_stream_keeps_events_is_replayed_only_if_forced(bus, services):
    """Consumers prune inbox rows once the stream no longer keeps the event: a replay might apply it twice."""
    profiles = (await bus.js.stream_info("PROFILES")).config
    profiles.max_age = timedelta(days=30).total_seconds()
    await bus.js.update_stream(profiles)
    services("beta", broken=True)
    old = city_event().model_copy(update={"time": datetime.now(UTC) - timedelta(days=31)})
    await bus.publish(old)
    await dead_lettered(bus, 1)
    [dead] = await dead_letters.list_dead_letters(bus.js)

    with pytest.raises(dead_letters.TooOldToReplay):
        await dead_letters.replay(bus.js, dead.id)
    replayed, left = await dead_letters.replay_all(bus.js)
    assert replayed == [] and [d.id for d, _ in left] == [dead.id]
    assert (await dead_letters.replay(bus.js, dead.id, force=True)).dead_letter.id == dead.id


# The command line, as the admin of a server that asks for passwords (the stack's configuration).


@pytest.fixture
async def admin_bus(tmp_path):
    server = NatsServer(tmp_path / "nats-auth", users=[]).start()
    bus = Bus(server.url, max_deliver=2, user=ADMIN, password=server.passwords[ADMIN])
    await bus.connect()
    await bus.declare_streams()
    yield server, bus
    await bus.close()
    server.stop()


async def citypair(*args: str, **env: str | None):
    """`citypair …` on a thread of its own: the command runs its own event loop."""
    result = await asyncio.to_thread(CliRunner().invoke, app, list(args), env=env)
    return result.exit_code, result.output


async def test_the_dead_letters_commands(admin_bus, tmp_path):
    server, bus = admin_bus

    async def always_fails(event, delivered):
        raise ValueError("no such city")

    stop = asyncio.Event()
    consumer = asyncio.create_task(bus.consume(Subscription("test", "PROFILES"), always_fails, stop))
    events = [city_event(f"c{i}") for i in range(3)]
    for event in events:
        await bus.publish(event)
    await dead_lettered(bus, 3)
    stop.set()
    await consumer

    env = {
        "CITYPAIR_NATS_URL": server.url,
        "CITYPAIR_NATS_ADMIN_PASSWORD": server.passwords[ADMIN],
        "CITYPAIR_VAR_DIR": str(tmp_path / "var"),
    }
    code, out = await citypair("dead-letters", "list", **env)
    assert code == 0, out
    header, *rows = out.splitlines()
    assert header.split()[:2] == ["ID", "DEAD-LETTERED"]
    assert len(rows) == 3
    for seq, (row, event) in enumerate(zip(rows, events, strict=True), start=1):
        assert row.startswith(str(seq))
        assert all(part in row for part in ("test--profiles", EVENT_TYPE, " 2 ", event.id, "no such city"))

    code, out = await citypair("dead-letters", "list", "--json", "--consumer", "test", **env)
    assert code == 0, out
    listed = json.loads(out)
    assert [(d["id"], d["event_id"], d["deliveries"]) for d in listed] == [
        (i + 1, e.id, 2) for i, e in enumerate(events)
    ]

    code, out = await citypair("dead-letters", "show", "1", **env)
    assert code == 0, out
    shown = json.loads(out)
    assert shown["event"]["id"] == events[0].id and shown["subject"] == EVENT_TYPE
    assert shown["consumer"] == "test--profiles" and "no such city" in shown["error"]

    code, out = await citypair("dead-letters", "replay", "1", **env)
    assert code == 0, out
    assert f"replayed 1: {EVENT_TYPE} event {events[0].id} as PROFILES #4" in out
    assert (await bus.js.get_msg("PROFILES", seq=4)).headers["Nats-Msg-Id"] == f"{events[0].id}:replay:1"
    code, out = await citypair("dead-letters", "replay", "1", **env)
    assert code == 1 and "no dead letter 1" in out

    code, out = await citypair("dead-letters", "discard", "2", **env)
    assert code == 0 and f"discarded 2: {EVENT_TYPE} event {events[1].id}" in out

    # Without the password in the environment: the embedded stack's, from its secrets file.
    secrets = tmp_path / "var" / "secrets" / "nats.json"
    secrets.parent.mkdir(parents=True)
    secrets.write_text(json.dumps({ADMIN: server.passwords[ADMIN]}))
    code, out = await citypair("dead-letters", "replay", "--all", **{**env, "CITYPAIR_NATS_ADMIN_PASSWORD": None})
    assert code == 0, out
    assert f"replayed 3: {EVENT_TYPE} event {events[2].id} as PROFILES #5" in out and "1 replayed, 0 left" in out
    assert (await bus.js.stream_info("PROFILES")).state.messages == 5

    code, out = await citypair("dead-letters", "list", **env)
    assert code == 0 and out.strip() == "no dead letters"
    code, out = await citypair("dead-letters", "replay", **env)
    assert code == 2 and "give a dead letter's id or --all" in out
    code, out = await citypair("dead-letters", "list", **{**env, "CITYPAIR_NATS_ADMIN_PASSWORD": "wrong"})
    assert code == 2 and "cannot connect to NATS" in out
