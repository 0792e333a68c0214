"""A replica's followers go before its durable consumers (real nats-server and database): what the replica answers
from memory is applied first, the once-per-service work after (issue 16: a 10,000-city import reached matching's
index 6.1 s after it returned while the two took turns on its loop; see the README's event figures)."""

import asyncio
import time

from nats.js.api import DeliverPolicy

from citypair_shared import runtime as runtime_module
from citypair_shared.bus import Subscription
from citypair_shared.follow import BatchApply, Follower
from citypair_shared.runtime import Runtime
from citypair_shared.settings import ServiceSettings
from tests.integration.conftest import Inbox
from tests.integration.test_dead_letters import EVENT_TYPE, city_event, soon

EVENTS = 600  # several fetches of each consumer


class Replica:
    """A follower that takes its time (a blocking apply, as an index update is) and a durable consumer that notes,
    for each event it handles, how many events the follower had applied by then."""

    def __init__(self, bus, session_factory):
        self.bus, self.applied, self.seen_applied = bus, [], []
        self.runtime = Runtime(
            ServiceSettings(service_name="replica"), inbox_model=Inbox, event_handlers={EVENT_TYPE: self.handle}
        )
        self.runtime.session_factory = session_factory
        self.follower = Follower(bus, EVENT_TYPE, BatchApply(self.apply), start={"deliver_policy": DeliverPolicy.ALL})
        self.runtime.followers = [self.follower]
        self.stop = asyncio.Event()

    def apply(self, events) -> None:
        time.sleep(0.05)  # on the loop, as the index's update is
        self.applied += [e.id for e in events]

    async def handle(self, event, session) -> None:
        self.seen_applied.append(len(self.applied))

    async def run(self) -> list[asyncio.Task]:
        await self.follower.open()
        consume = self.bus.consume(
            Subscription("replica", "PROFILES"),
            self.runtime.dispatch,
            self.stop,
            handle_batch=self.runtime.dispatch_batch,
        )
        return [asyncio.create_task(self.follower.follow(self.stop)), asyncio.create_task(consume)]


async def test_the_durable_consumer_waits_for_the_followers_to_catch_up(bus, session_factory):
    for i in range(EVENTS):
        await bus.publish(city_event(f"c{i}"))
    replica = Replica(bus, session_factory)
    tasks = await replica.run()
    try:

        async def handled_all():
            return len(replica.seen_applied) == EVENTS

        await soon(handled_all, "the durable consumer to handle every event", timeout=60)
    finally:
        replica.stop.set()
        await asyncio.gather(*tasks)
    # Taking turns, the durable consumer handled its first batch before the follower had applied the stream.
    assert min(replica.seen_applied) == EVENTS


async def test_a_stalled_follower_holds_the_consumers_back_only_a_while(bus, monkeypatch):
    monkeypatch.setattr(runtime_module, "FOLLOWERS_FIRST_SECONDS", 0.2)
    runtime = Runtime(ServiceSettings(service_name="replica"), inbox_model=Inbox)
    stalled = Follower(bus, EVENT_TYPE, BatchApply(lambda events: None))  # never fetches: never caught up
    runtime.followers = [stalled]
    started = time.perf_counter()
    await runtime.followers_first()
    assert 0.2 <= time.perf_counter() - started < 2
    stalled.caught_up.set()
    started = time.perf_counter()
    await runtime.followers_first()
    assert time.perf_counter() - started < 0.05
