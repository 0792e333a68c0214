"""The JetStream bus: the streams (declared by the bus admin), de-duplicated publishes, durable pull consumers."""

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

import nats
from nats.errors import ConnectionClosedError, NoRespondersError, NoServersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, KeyValueConfig, StorageType, StreamConfig
from nats.js.errors import BadRequestError, NotFoundError, ServiceUnavailableError
from opentelemetry.trace import SpanKind

from citypair_shared.events import BUCKETS, DEAD_LETTER_PREFIX, DEAD_LETTER_STREAM, STREAMS, CloudEvent
from citypair_shared.logging import get_logger
from citypair_shared.metrics import CONSUMER_LAG, DEAD_LETTERS, REDELIVERIES
from citypair_shared.tracing import event_span, tracing_enabled

log = get_logger(__name__)

DUPLICATE_WINDOW_SECONDS = 120
# How long a stream keeps an event (services keep their inbox rows longer: citypair_shared.retention).
STREAM_MAX_AGE = timedelta(days=30)
DEAD_LETTER_MAX_AGE = timedelta(days=90)
FETCH_BATCH = 256


def inbox_prefix(user: str | None) -> str:
    """Where a user's replies arrive: under its own name, so the bus can let it read its own replies only."""
    return f"_INBOX.{user}" if user else "_INBOX"


@dataclass(frozen=True)
class Subscription:
    """A durable pull consumer `<consumer>--<producer>` over one producer's stream."""

    consumer: str
    stream: str

    @property
    def durable(self) -> str:
        return f"{self.consumer}--{self.stream.lower().replace('_', '-')}"


T = TypeVar("T")
MessageHandler = Callable[[CloudEvent, int], Awaitable[None]]
BatchHandler = Callable[[list[CloudEvent]], Awaitable[None]]


async def patiently(call: Callable[[], Awaitable[T]], *, within: float = 60.0) -> T:
    """A JetStream API call retried while the server cannot answer it yet (a cluster that has just formed, or
    is electing a stream's leader, lets requests time out): another error, or the same after `within`, raises."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        try:
            return await call()
        except (NatsTimeout, ServiceUnavailableError, NoRespondersError) as exc:
            if asyncio.get_running_loop().time() > deadline:
                raise
            log.info("bus.not_ready", error=repr(exc))
            await asyncio.sleep(0.5)


class Bus:
    def __init__(self, url: str, *, max_deliver: int = 5, user: str | None = None, password: str | None = None):
        self.url = url
        self.max_deliver = max_deliver
        self.user = user
        self.password = password
        self.nc: nats.NATS | None = None
        self.js = None

    @property
    def connected(self) -> bool:
        return self.nc is not None and self.nc.is_connected

    async def connect(self, *, timeout: float = 30.0) -> None:
        """Connect (retrying until `timeout`), then keep reconnecting for ever if the server goes away."""
        deadline = asyncio.get_running_loop().time() + timeout
        credentials = {"user": self.user, "password": self.password} if self.password else {}
        while True:
            try:
                self.nc = await nats.connect(
                    [server.strip() for server in self.url.split(",")],  # a cluster: its nodes, comma-separated
                    **credentials,
                    inbox_prefix=inbox_prefix(self.user),
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.25,
                    connect_timeout=2,
                    allow_reconnect=True,
                )
                break
            except (NoServersError, OSError, NatsTimeout):
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.25)
        self.js = self.nc.jetstream()

    async def declare_streams(
        self,
        *,
        replicas: int = 1,
        max_age: timedelta = STREAM_MAX_AGE,
        dead_letter_max_age: timedelta = DEAD_LETTER_MAX_AGE,
    ) -> None:
        """Create or update every stream and bucket, each kept on `replicas` nodes of a cluster and an event
        kept `max_age` (a dead letter longer, to be looked into): the bus admin's job (see
        citypair_shared.declare_streams), not a service's."""
        configs = [StreamConfig(name=n, subjects=[s], max_age=max_age.total_seconds()) for n, s in STREAMS.items()]
        subjects = [f"{DEAD_LETTER_PREFIX}.>"]
        configs.append(
            StreamConfig(name=DEAD_LETTER_STREAM, subjects=subjects, max_age=dead_letter_max_age.total_seconds())
        )
        for config in configs:
            config.storage = StorageType.FILE
            config.duplicate_window = DUPLICATE_WINDOW_SECONDS
            config.num_replicas = replicas
            try:
                await self.js.add_stream(config)
            except Exception:  # exists with another config: bring it to ours
                await self.js.update_stream(config)
        for bucket, max_age in BUCKETS.items():
            ttl = max_age.total_seconds()
            kv = KeyValueConfig(bucket, history=1, ttl=ttl, storage=StorageType.FILE, direct=True, replicas=replicas)
            with contextlib.suppress(BadRequestError):  # declared before (not changed in place)
                await self.js.create_key_value(kv)

    async def close(self) -> None:
        # Not drain(): draining pull subscriptions can hang, and every message we took is acked by now.
        if self.nc is not None:
            await self.nc.close()

    async def publish(self, event: CloudEvent) -> None:
        """Publish and wait for JetStream's ack; the event id makes re-publishes no-ops."""
        with event_span(event, "publish", SpanKind.PRODUCER):
            await self._publish(event.type, event.id, event.model_dump_json())

    async def publish_stored(self, event_type: str, event_id: str, payload: str) -> None:
        """`publish` for an event stored as its JSON (the outbox's rows): sent as stored, parsed only for a span.
        Parsing and writing each event again took most of the relay's time on the event loop after an import."""
        if tracing_enabled():
            await self.publish(CloudEvent.model_validate_json(payload))
        else:
            await self._publish(event_type, event_id, payload)

    async def _publish(self, event_type: str, event_id: str, payload: str) -> None:
        await self.js.publish(event_type, payload.encode(), headers={"Nats-Msg-Id": event_id}, timeout=5)

    async def consume(
        self,
        subscription: Subscription,
        handle: MessageHandler,
        stop: asyncio.Event,
        handle_batch: BatchHandler | None = None,
    ) -> None:
        """Fetch and hand over messages until `stop`; handlers ack nothing, this loop does once they return.

        With `handle_batch`, a fetched batch is first handled in one go (one transaction); if that
        fails, each message is handled on its own, so one bad message cannot hold back the others.
        """
        sub = None
        while not stop.is_set():
            try:
                if sub is None:
                    sub = await self._subscribe(subscription)
                msgs = await sub.fetch(batch=FETCH_BATCH, timeout=1)
            except NatsTimeout:
                await self._record_lag(subscription)
                continue
            except (ConnectionClosedError, NoServersError, OSError, NotFoundError) as exc:
                log.warning("consumer.fetch_failed", durable=subscription.durable, error=repr(exc))
                sub = None
                await asyncio.sleep(0.5)
                continue
            except Exception as exc:  # a reconnecting client raises assorted errors; keep the loop alive
                log.warning("consumer.fetch_error", durable=subscription.durable, error=repr(exc))
                await asyncio.sleep(0.5)
                continue
            if handle_batch is not None and await self._deliver_batch(msgs, handle_batch):
                continue
            for msg in msgs:
                await self._deliver(subscription, msg, handle)

    async def _deliver_batch(self, msgs: list, handle_batch: "BatchHandler") -> bool:
        """True if the whole batch was handled and acked."""
        try:
            events = [CloudEvent.model_validate_json(msg.data) for msg in msgs]
            await handle_batch(events)
        except Exception as exc:
            log.info("consumer.batch_fallback", size=len(msgs), error=repr(exc))
            return False
        for msg in msgs:
            if msg.metadata.num_delivered > 1:
                REDELIVERIES.labels(msg.metadata.consumer).inc()
            await msg.ack()
        return True

    async def _subscribe(self, subscription: Subscription):
        config = ConsumerConfig(
            durable_name=subscription.durable,
            ack_policy=AckPolicy.EXPLICIT,
            max_deliver=self.max_deliver,
            ack_wait=30,
        )
        return await self.js.pull_subscribe(
            STREAMS[subscription.stream], durable=subscription.durable, stream=subscription.stream, config=config
        )

    async def _deliver(self, subscription: Subscription, msg, handle: MessageHandler) -> None:
        delivered = msg.metadata.num_delivered
        if delivered > 1:
            REDELIVERIES.labels(subscription.durable).inc()
        try:
            event = CloudEvent.model_validate_json(msg.data)
            await handle(event, delivered)
        except Exception as exc:
            if delivered >= self.max_deliver:
                await self._dead_letter(subscription, msg, exc)
                return
            log.warning("event.failed", durable=subscription.durable, delivered=delivered, error=repr(exc))
            await msg.nak(delay=min(0.2 * 2**delivered, 10))
            return
        await msg.ack()

    async def _dead_letter(self, subscription: Subscription, msg, exc: Exception) -> None:
        headers = dict(msg.headers or {})
        headers.update(
            {
                "Citypair-Error": repr(exc)[:500],
                "Citypair-Subject": msg.subject,
                "Citypair-Deliveries": str(msg.metadata.num_delivered),
                # Not the event's id: the DEADLETTER stream would drop a second dead letter of the same event
                # (another consumer's, or a replay's that failed again) inside its duplicate window.
                "Nats-Msg-Id": f"{subscription.durable}:{msg.metadata.sequence.stream}",
            }
        )
        if "Nats-Msg-Id" in (msg.headers or {}):
            headers["Citypair-Msg-Id"] = msg.headers["Nats-Msg-Id"]
        await self.js.publish(f"{DEAD_LETTER_PREFIX}.{subscription.durable}", msg.data, headers=headers)
        DEAD_LETTERS.labels(subscription.durable, msg.subject).inc()
        log.error("event.dead_lettered", durable=subscription.durable, subject=msg.subject, error=repr(exc))
        await msg.term()

    async def _record_lag(self, subscription: Subscription) -> None:
        try:
            info = await self.js.consumer_info(subscription.stream, subscription.durable)
            CONSUMER_LAG.labels(subscription.durable).set(info.num_pending + info.num_ack_pending)
        except Exception:  # metrics must never break consumption
            pass
