"""What a service runs besides HTTP: its database, the bus, the outbox relay and its consumers."""

import asyncio
import contextlib
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

from nats.js.api import DeliverPolicy
from nats.js.errors import NotFoundError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from citypair_shared import bulk, tracing
from citypair_shared.auth import TokenVerifier
from citypair_shared.bus import Bus, Subscription, patiently
from citypair_shared.bus_access import BusUser
from citypair_shared.db import create_engine, create_session_factory, ping
from citypair_shared.events import CloudEvent, stream_of
from citypair_shared.follow import Apply, Follower
from citypair_shared.inbox import EventHandler, handle_all_once
from citypair_shared.logging import get_logger, request_id_var
from citypair_shared.metrics import EVENTS_HANDLED
from citypair_shared.outbox import OutboxRelay
from citypair_shared.retention import Retention, prune_periodically
from citypair_shared.revocations import follow_revocations
from citypair_shared.settings import ServiceSettings

log = get_logger(__name__)

# How long a batch of a durable consumer waits for this replica's followers to catch up (a stalled follower must not
# stop the consumers: after this they take turns).
FOLLOWERS_FIRST_SECONDS = 2.0


@dataclass
class Runtime:
    """Started and stopped by the app's lifespan; the one object routers and handlers get their I/O from."""

    settings: ServiceSettings
    outbox_model: type | None = None
    inbox_model: type | None = None
    # Records of `Idempotency-Key`s (an `IdempotencyMixin` model): POSTs taking a key need it.
    idempotency_model: type | None = None
    event_handlers: dict[str, EventHandler] = field(default_factory=dict)
    # Event types every replica applies to its memory (citypair_shared.follow), e.g. matching's index.
    event_followers: dict[str, Apply] = field(default_factory=dict)
    # Key-value buckets (citypair_shared.events.BUCKETS) this service reads and writes, e.g. web's sessions.
    buckets: tuple[str, ...] = ()
    on_start: list[Callable[["Runtime"], Awaitable[None]]] = field(default_factory=list)

    def __post_init__(self):
        self.engine: AsyncEngine | None = None
        # The same pool for statements that need no transaction around them (no BEGIN, no COMMIT or ROLLBACK):
        # single writes, and routes that only read (`deps.ReadSessionDep`).
        self.autocommit_engine: AsyncEngine | None = None
        self.session_factory: async_sessionmaker[AsyncSession] | None = None
        self.read_session_factory: async_sessionmaker[AsyncSession] | None = None
        password = self.settings.nats_password
        self.bus = Bus(
            self.settings.nats_url,
            max_deliver=self.settings.max_deliver,
            user=self.settings.service_name,
            password=password.get_secret_value() if password else None,
        )
        self.relay: OutboxRelay | None = None
        self.followers: list[Follower] = []
        self.verifier = TokenVerifier(
            jwks_url=self.settings.jwks_url, issuer=self.settings.token_issuer, audience=self.settings.token_audience
        )
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task] = []

    @property
    def uses_database(self) -> bool:
        models = (self.outbox_model, self.inbox_model, self.idempotency_model)
        return any(model is not None for model in models)

    @property
    def uses_bus(self) -> bool:
        return self.outbox_model is not None or bool(self.event_handlers) or bool(self.buckets)

    @property
    def subscriptions(self) -> list[Subscription]:
        streams = sorted({stream_of(t) for t in self.event_handlers})
        return [Subscription(consumer=self.settings.service_name.replace("_", "-"), stream=s) for s in streams]

    @property
    def bus_user(self) -> BusUser | None:
        """What this service does on the bus, from which its NATS user's permissions are derived."""
        if not self.uses_bus:
            return None
        publishes = self.outbox_model is not None
        return BusUser(
            self.settings.service_name,
            publishes=publishes,
            subscriptions=tuple(self.subscriptions),
            follows=tuple(sorted(self.event_followers)),
            buckets=self.buckets,
        )

    async def start(self) -> None:
        if self.uses_database:
            self.engine = create_engine(self.settings.database_url)
            self.session_factory = create_session_factory(self.engine)
            self.autocommit_engine = self.engine.execution_options(isolation_level="AUTOCOMMIT")
            self.read_session_factory = create_session_factory(self.autocommit_engine)
            tracing.instrument_engine(self.engine)
        if self.uses_bus:
            if self.settings.environment == "production" and self.settings.nats_password is None:
                variable = self.settings.model_config.get("env_prefix", "") + "NATS_PASSWORD"
                raise RuntimeError(f"production needs this service's own NATS user: set {variable} (README)")
            await self.bus.connect()
        if self.outbox_model is not None:
            self.relay = OutboxRelay(
                self.session_factory, self.outbox_model, self.bus, sweep_seconds=self.settings.outbox_sweep_seconds
            )
            self._tasks.append(asyncio.create_task(self.relay.run(self._stop), name="outbox-relay"))
        if self.uses_database:
            retention = Retention(
                outbox_kept=timedelta(days=self.settings.outbox_kept_days),
                stream_max_age=timedelta(days=self.settings.stream_max_age_days),
            )
            models = {"outbox_model": self.outbox_model, "inbox_model": self.inbox_model}
            prune = prune_periodically(
                self.session_factory, retention, self._stop, idempotency_model=self.idempotency_model, **models
            )
            self._tasks.append(asyncio.create_task(prune, name="retention"))
        # Followers hold their places in the streams before memory is loaded from the database: no event
        # can fall between the two.
        self.followers = [await self._open_follower(t, apply) for t, apply in sorted(self.event_followers.items())]
        for hook in self.on_start:
            await hook(self)
        for follower in self.followers:
            await follower.catch_up()
            self._tasks.append(asyncio.create_task(follower.follow(self._stop), name=f"follow {follower.event_type}"))
        if self.uses_bus:
            self._tasks.append(await follow_revocations(self.bus, self.verifier.revoke, self._stop))
        for sub in self.subscriptions:
            consumer = self.bus.consume(sub, self.dispatch, self._stop, handle_batch=self.dispatch_batch)
            self._tasks.append(asyncio.create_task(consumer, name=sub.durable))
        log.info("runtime.started", consumers=[s.durable for s in self.subscriptions])

    async def _open_follower(self, event_type: str, apply: Apply) -> Follower:
        """A follower from where this service's database may not hold the events yet: after its durable
        consumer's ack floor (each event is acked once its handler committed), or, on the service's own
        stream, from now (its own events are committed with the rows they describe, and published after)."""
        stream = stream_of(event_type)
        durable = next((s.durable for s in self.subscriptions if s.stream == stream), None)
        start = {"deliver_policy": DeliverPolicy.NEW}
        if durable is not None:
            try:
                floor = (await patiently(lambda: self.bus.js.consumer_info(stream, durable))).ack_floor.stream_seq
                start = {"deliver_policy": DeliverPolicy.BY_START_SEQUENCE, "opt_start_seq": floor + 1}
            except NotFoundError:  # the first start ever: nothing handled yet
                start = {"deliver_policy": DeliverPolicy.ALL}
        follower = Follower(self.bus, event_type, apply, start=start)
        await follower.open()
        return follower

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        bulk.shutdown()
        await self.bus.close()
        if self.engine is not None:
            await self.engine.dispose()
        tracing.flush()

    async def dispatch(self, event: CloudEvent, delivered: int) -> None:
        """Hand one event to its handler exactly once; types this service does not handle are skipped."""
        await self.dispatch_batch([event], delivered=delivered)

    async def dispatch_batch(self, events: list[CloudEvent], *, delivered: int = 1) -> None:
        """Handle a batch in one transaction, each event exactly once; raises if any handler fails."""
        consumer = self.settings.service_name
        items = [(e, self.event_handlers[e.type]) for e in events if e.type in self.event_handlers]
        if not items:
            return
        await self.followers_first()
        token = request_id_var.set(items[0][0].correlationid if len(items) == 1 else None)
        try:
            ran = await handle_all_once(
                session_factory=self.session_factory, inbox_model=self.inbox_model, consumer=consumer, items=items
            )
        except Exception:
            for event, _ in items:
                EVENTS_HANDLED.labels(consumer, event.type, "failed").inc()
            raise
        finally:
            request_id_var.reset(token)
        outcomes = Counter(
            (event.type, "handled" if done else "duplicate") for (event, _), done in zip(items, ran, strict=True)
        )
        for (type_, outcome), count in outcomes.items():
            EVENTS_HANDLED.labels(consumer, type_, outcome).inc(count)
        if len(items) == 1:
            event = items[0][0]
            event_name = "event.handled" if ran[0] else "event.duplicate"
            log.info(
                event_name, event_id=event.id, type=event.type, correlation_id=event.correlationid, delivered=delivered
            )
        else:  # one line a batch (not one an event: a 10,000-city import made 10,000), naming every event
            log.info(
                "events.handled",
                handled=[e.id for (e, _), done in zip(items, ran, strict=True) if done],
                duplicates=[e.id for (e, _), done in zip(items, ran, strict=True) if not done],
                types=sorted({e.type for e, _ in items}),
            )

    async def followers_first(self) -> None:
        """Wait (a while at most) until every follower has applied what the stream holds: what this replica answers
        from memory comes first, the once-per-service work after. Both run on this loop: taking turns, a 10,000-city
        import reached matching's index 3.5–8.3 s after it returned; followers first (and the relay's cheaper passes)
        2.2–2.5 s (README, Measured; docs/concurrency.md)."""
        waiting = [f.caught_up.wait() for f in self.followers if not f.caught_up.is_set()]
        if waiting:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*waiting), timeout=FOLLOWERS_FIRST_SECONDS)

    async def readiness(self) -> dict[str, str]:
        """Each dependency and whether it answers."""
        checks = {}
        if self.uses_bus:
            checks["nats"] = "ok" if self.bus.connected else "unreachable"
        if self.engine is not None:
            try:
                await ping(self.engine)
                checks["database"] = "ok"
            except Exception as exc:
                checks["database"] = f"unreachable: {type(exc).__name__}"
        return checks
