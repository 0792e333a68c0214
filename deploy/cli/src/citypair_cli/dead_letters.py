"""Dead letters: what a consumer gave up on, looked into, replayed or discarded by the bus admin.

A message a consumer failed `max_deliver` times is published to `deadletter.<durable>` on the
`DEADLETTER` stream (citypair_shared.bus), with the consumer's last error (`Citypair-Error`), the
subject it came on (`Citypair-Subject`) and how often it was delivered (`Citypair-Deliveries`). A dead
letter's id is its sequence in that stream. Only the admin may read the stream (citypair_shared.bus_access).

Replaying republishes the event, byte for byte, to its original subject, then deletes the dead letter. It
reaches every consumer of that subject, not only the one that failed: each of them de-duplicates by event
id in its inbox (citypair_shared.inbox), so one that applied the event already does nothing, and followers
apply events idempotently (citypair_shared.follow). The republish's `Nats-Msg-Id` is
`<event id>:replay:<dead letter id>`: JetStream's duplicate window would drop a publish under the event's
own id, and a replay retried (within the window) after a crash between publish and delete is dropped.

An inbox row is kept only as long as the event's stream keeps events (its `max_age`, and a day more), so
an event older than that might be applied a second time by a consumer that has forgotten it: replaying
one takes `force`.
"""

import asyncio
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import nats
import typer
from nats.js.errors import NotFoundError

from citypair_shared.bus import inbox_prefix
from citypair_shared.bus_access import ADMIN
from citypair_shared.events import DEAD_LETTER_PREFIX, DEAD_LETTER_STREAM, STREAMS, stream_of

ERROR = "Citypair-Error"
SUBJECT = "Citypair-Subject"
DELIVERIES = "Citypair-Deliveries"
ORIGINAL_MSG_ID = "Citypair-Msg-Id"
CONNECT_WITHIN_SECONDS = 15


class DeadLetterNotFound(LookupError):
    def __init__(self, id: int):
        super().__init__(f"no dead letter {id}")
        self.id = id


class CannotReplay(RuntimeError):
    pass


class TooOldToReplay(CannotReplay):
    """Consumers may have forgotten the event (their inbox rows are pruned): a replay might apply it twice."""


@dataclass(frozen=True)
class DeadLetter:
    id: int  # its sequence in the DEADLETTER stream
    consumer: str  # the durable consumer that gave up, e.g. matching--profiles
    subject: str  # where the event was published, e.g. profiles.city.registered.v1
    deliveries: int | None  # None: dead-lettered before the count was recorded
    error: str
    dead_lettered_at: datetime | None
    data: bytes
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def event(self) -> dict[str, Any] | None:
        """The CloudEvent as JSON, or None if the body is not a JSON object (which may be why it failed)."""
        try:
            event = json.loads(self.data)
        except ValueError:
            return None
        return event if isinstance(event, dict) else None

    @property
    def event_id(self) -> str | None:
        event = self.event or {}
        return str(event["id"]) if event.get("id") else self.headers.get(ORIGINAL_MSG_ID)

    @property
    def event_type(self) -> str | None:
        return (self.event or {}).get("type")

    @property
    def event_time(self) -> datetime | None:
        try:
            time = datetime.fromisoformat((self.event or {})["time"])
        except (KeyError, TypeError, ValueError):
            return None
        return time if time.tzinfo else time.replace(tzinfo=UTC)

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "consumer": self.consumer,
            "subject": self.subject,
            "deliveries": self.deliveries,
            "dead_lettered_at": self.dead_lettered_at.isoformat() if self.dead_lettered_at else None,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "error": self.error,
        }

    def detail(self) -> dict[str, Any]:
        event = self.event
        body = {"event": event} if event is not None else {"body": self.data.decode("utf-8", "replace")}
        return {**self.summary(), **body, "headers": self.headers}


@dataclass(frozen=True)
class Replayed:
    dead_letter: DeadLetter
    stream: str
    sequence: int  # the republished event's sequence in its stream
    duplicate: bool  # JetStream had it already (a retried replay): published once all the same


def _dead_letter(msg) -> DeadLetter:
    headers = {k: v for k, v in (msg.headers or {}).items() if isinstance(v, str)}
    deliveries = headers.get(DELIVERIES, "")
    return DeadLetter(
        id=msg.seq,
        consumer=msg.subject.removeprefix(f"{DEAD_LETTER_PREFIX}."),
        subject=headers.get(SUBJECT, ""),
        deliveries=int(deliveries) if deliveries.isdigit() else None,
        error=headers.get(ERROR, ""),
        dead_lettered_at=msg.time.astimezone(UTC) if msg.time else None,
        data=msg.data or b"",
        headers=headers,
    )


def _of_consumer(dead: DeadLetter, consumer: str | None) -> bool:
    """A durable's name (`matching--profiles`) picks its dead letters; a service's (`matching`), all of its own."""
    if consumer is None:
        return True
    name = consumer.replace("_", "-")
    return dead.consumer == name or dead.consumer.startswith(f"{name}--")


async def list_dead_letters(js, *, consumer: str | None = None, limit: int | None = None) -> list[DeadLetter]:
    """The dead letters in stream order (oldest first), of one consumer if given, at most `limit`."""
    found: list[DeadLetter] = []
    seq = 1
    while limit is None or len(found) < limit:
        try:  # the next message at or after `seq`: deleted ones (replayed, discarded) are skipped
            msg = await js.get_msg(DEAD_LETTER_STREAM, seq, subject=f"{DEAD_LETTER_PREFIX}.>", next=True)
        except NotFoundError:
            break
        dead = _dead_letter(msg)
        if _of_consumer(dead, consumer):
            found.append(dead)
        seq = msg.seq + 1
    return found


async def show(js, id: int) -> DeadLetter:
    if id < 1:
        raise DeadLetterNotFound(id)
    try:
        return _dead_letter(await js.get_msg(DEAD_LETTER_STREAM, id))
    except NotFoundError as exc:
        raise DeadLetterNotFound(id) from exc


async def discard(js, id: int) -> DeadLetter:
    """Delete a dead letter for good; returns what it was."""
    dead = await show(js, id)
    await _delete(js, id)
    return dead


async def replay(js, id: int, *, force: bool = False, now: datetime | None = None) -> Replayed:
    """Republish a dead letter's event to its original subject (every consumer of it gets it again, and
    each applies it at most once: see the module's doc), then delete the dead letter."""
    dead = await show(js, id)
    stream = stream_of(dead.subject) if dead.subject else None
    if stream not in STREAMS:
        raise CannotReplay(f"dead letter {id}: {dead.subject or f'no {SUBJECT} header'} is on no stream of ours")
    if not force:
        await _check_remembered(js, dead, stream, now or datetime.now(UTC))
    headers = {k: v for k, v in dead.headers.items() if not k.startswith(("Citypair-", "Nats-"))}
    headers["Nats-Msg-Id"] = f"{dead.event_id or 'unknown'}:replay:{dead.id}"
    ack = await js.publish(dead.subject, dead.data, headers=headers, timeout=5)
    await _delete(js, id)
    return Replayed(dead, ack.stream, ack.seq, bool(ack.duplicate))


async def replay_all(
    js, *, consumer: str | None = None, force: bool = False
) -> tuple[list[Replayed], list[tuple[DeadLetter, str]]]:
    """Replay every dead letter (of one consumer, if given), oldest first; returns the replayed and those
    left in place, each with why."""
    replayed, left = [], []
    for dead in await list_dead_letters(js, consumer=consumer):
        try:
            replayed.append(await replay(js, dead.id, force=force))
        except DeadLetterNotFound:  # replayed or discarded meanwhile by someone else
            continue
        except CannotReplay as exc:
            left.append((dead, str(exc)))
    return replayed, left


async def _check_remembered(js, dead: DeadLetter, stream: str, now: datetime) -> None:
    max_age = (await js.stream_info(stream)).config.max_age or 0
    if not max_age:  # the stream keeps events for ever, and consumers their inbox rows
        return
    published = dead.event_time or dead.dead_lettered_at
    if published is not None and now - published > timedelta(seconds=max_age):
        days = max_age / 86400
        raise TooOldToReplay(
            f"dead letter {dead.id}: its event is older than {stream}'s {days:g} days, after which consumers "
            "forget the events they applied (their inbox rows are pruned): a replay might apply it twice. "
            "Replay it with --force if its consumers' handlers are idempotent, or discard it."
        )


async def _delete(js, id: int) -> None:
    try:
        await js.delete_msg(DEAD_LETTER_STREAM, id)
    except NotFoundError as exc:
        raise DeadLetterNotFound(id) from exc


# The `citypair dead-letters` commands (registered in citypair_cli.cli).

dead_letters_app = typer.Typer(
    help="Look into, replay or discard what consumers gave up on (the DEADLETTER stream), as the bus admin. "
    "The NATS URL is CITYPAIR_NATS_URL (default: the embedded stack's); the admin password is "
    "CITYPAIR_NATS_ADMIN_PASSWORD, else the embedded stack's (<CITYPAIR_VAR_DIR>/secrets/nats.json).",
    no_args_is_help=True,
)
ConsumerOption = typer.Option(
    None, "--consumer", help="Only this durable consumer's (matching--profiles), or a service's (matching)"
)


def admin_connection() -> tuple[str, str | None]:
    """The NATS URL and the admin's password, as the other tooling finds them."""
    from citypair_cli.stack import StackConfig

    config = StackConfig.from_env()
    return config.admin_nats_url(), config.admin_password()


async def _connect(url: str, password: str | None) -> nats.NATS:
    """A connection as the admin that gives up (Bus.connect keeps trying, as a service should)."""

    errors: list[Exception] = []

    async def quiet(exc: Exception) -> None:  # reported once, not each attempt's
        errors.append(exc)

    try:
        return await nats.connect(
            [server.strip() for server in url.split(",")],
            **({"user": ADMIN, "password": password} if password else {}),
            inbox_prefix=inbox_prefix(ADMIN),
            allow_reconnect=False,
            max_reconnect_attempts=1,
            reconnect_time_wait=0.25,
            connect_timeout=2,
            error_cb=quiet,
        )
    except nats.errors.NoServersError as exc:
        last = errors[-1] if errors else None
        raise ConnectionError(str(last) or repr(last) if last else "no server answers") from exc


def _run(work):
    """Run `work(js)` connected as the bus admin; NATS or a missing dead letter ends the command cleanly."""
    url, password = admin_connection()

    async def main():
        try:
            nc = await asyncio.wait_for(_connect(url, password), CONNECT_WITHIN_SECONDS)
        except Exception as exc:
            typer.secho(f"cannot connect to NATS at {url} as {ADMIN}: {exc or repr(exc)}", fg="red", err=True)
            raise typer.Exit(2) from exc
        try:
            return await work(nc.jetstream())
        finally:
            await nc.close()

    try:
        return asyncio.run(main())
    except DeadLetterNotFound as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(1) from exc
    except CannotReplay as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(1) from exc


def _table(rows: list[dict[str, Any]]) -> str:
    columns = ["id", "dead_lettered_at", "consumer", "subject", "deliveries", "event_id", "error"]
    titles = ["ID", "DEAD-LETTERED (UTC)", "CONSUMER", "SUBJECT", "DELIVERIES", "EVENT ID", "ERROR"]

    def cell(row, column):
        value = row[column]
        if column == "dead_lettered_at" and value:
            return value[:19].replace("T", " ")
        if column == "error" and value and len(value) > 80:
            return value[:79] + "…"
        return "" if value is None else str(value)

    cells = [[cell(row, c) for c in columns] for row in rows]
    widths = [max(len(t), *(len(r[i]) for r in cells)) for i, t in enumerate(titles)]
    lines = [titles, *cells]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() for line in lines)


@dead_letters_app.command("list")
def list_command(
    consumer: str | None = ConsumerOption,
    as_json: bool = typer.Option(False, "--json", help="JSON instead of a table"),
    limit: int | None = typer.Option(None, min=1, help="At most this many, oldest first"),
) -> None:
    """What failed (the event), where (the consumer, the subject), how often (deliveries), when, and the last error."""
    dead = _run(lambda js: list_dead_letters(js, consumer=consumer, limit=limit))
    rows = [d.summary() for d in dead]
    if as_json:
        typer.echo(json.dumps(rows, indent=2, ensure_ascii=False))
    elif not rows:
        typer.echo("no dead letters")
    else:
        typer.echo(_table(rows))


@dead_letters_app.command("show")
def show_command(id: int = typer.Argument(..., help="The dead letter's id (its DEADLETTER sequence)")) -> None:
    """One dead letter as JSON: its consumer, subject, deliveries, error, headers and the whole event."""
    dead = _run(lambda js: show(js, id))
    typer.echo(json.dumps(dead.detail(), indent=2, ensure_ascii=False))


@dead_letters_app.command("replay")
def replay_command(
    id: int | None = typer.Argument(None, help="The dead letter's id (its DEADLETTER sequence)"),
    all_: bool = typer.Option(False, "--all", help="Every dead letter (of --consumer, if given), oldest first"),
    consumer: str | None = ConsumerOption,
    force: bool = typer.Option(False, help="Replay events older than their stream's max age too"),
) -> None:
    """Republish the event to its original subject, then delete the dead letter.

    Fix what made the consumer fail first. Every consumer of the subject gets the event again, not only
    the one that failed: each de-duplicates by event id in its inbox, so the event is applied exactly once
    by each consumer that has not applied it, and by no other.
    """
    if (id is None) == (not all_):
        typer.secho("give a dead letter's id or --all", fg="red", err=True)
        raise typer.Exit(2)
    if id is not None and consumer is not None:
        typer.secho("--consumer goes with --all", fg="red", err=True)
        raise typer.Exit(2)
    if id is not None:
        done = [_run(lambda js: replay(js, id, force=force))]
        left = []
    else:
        done, left = _run(lambda js: replay_all(js, consumer=consumer, force=force))
    for r in done:
        dead = r.dead_letter
        again = " (already republished)" if r.duplicate else ""
        typer.echo(f"replayed {dead.id}: {dead.subject} event {dead.event_id} as {r.stream} #{r.sequence}{again}")
    for dead, why in left:
        typer.secho(f"left {dead.id}: {why}", fg="yellow", err=True)
    if all_:
        typer.echo(f"{len(done)} replayed, {len(left)} left")
    if left:
        raise typer.Exit(1)


@dead_letters_app.command("discard")
def discard_command(id: int = typer.Argument(..., help="The dead letter's id (its DEADLETTER sequence)")) -> None:
    """Delete a dead letter without replaying it (`show` it first: it is gone for good)."""
    dead = _run(lambda js: discard(js, id))
    typer.echo(f"discarded {dead.id}: {dead.subject} event {dead.event_id} ({dead.consumer})")
