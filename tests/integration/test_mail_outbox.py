"""identity's mail outbox against a real SMTP server (aiosmtpd) and a real database: retries after the server was
away, and two service instances at once on one PostgreSQL database send each mail once and one digest per user
and day."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from citypair_cli.stack import SERVICE_BY_NAME
from citypair_identity import mail, mailing
from citypair_identity.config import Settings
from citypair_identity.keys import new_signing_key
from citypair_identity.mail_sender import MailSender
from citypair_identity.models import MailOutbox, Notification, User
from citypair_identity.service import IdentityContext
from citypair_shared.db import create_engine, create_session_factory
from citypair_shared.migrations import upgrade
from tests.mailbox import Mailbox
from tests.support import POSTGRES_ADMIN_URL, fresh_database_url

on_postgres = pytest.mark.skipif(not POSTGRES_ADMIN_URL, reason="instances share a PostgreSQL database (CI sets it)")


@pytest.fixture
def mailbox(tmp_path):
    box = Mailbox(tmp_path / "mail").start()
    yield box
    box.stop()


@pytest.fixture
async def instances(tmp_path, mailbox):
    """Two identity instances' session factories (an engine each) on one migrated database, and their settings."""
    url = fresh_database_url("identity", tmp_path)
    upgrade(SERVICE_BY_NAME["identity"].directory, url)
    settings = Settings(
        database_url=url,
        smtp_port=mailbox.port,
        mail_retry_first_seconds=0.2,
        mail_retry_max_seconds=0.4,
        digest_hour_utc=0,
        public_url="https://citypair.example",
    )
    engines = [create_engine(url) for _ in range(2)]
    factories = [create_session_factory(engine) for engine in engines]
    async with factories[0]() as session:
        session.add(new_signing_key())
        await session.commit()
    yield factories, settings
    for engine in engines:
        await engine.dispose()


async def queue(session_factory, count: int) -> list[str]:
    keys = [f"test:{uuid.uuid4()}" for _ in range(count)]
    async with session_factory() as session:
        for i, key in enumerate(keys):
            letter = mail.compose("en", subject=f"mail {i}", paragraphs=(key,))
            assert await mail.enqueue(session, key=key, recipient=f"user{i}@test.citypair", mail=letter)
        # The same key again is refused: one thing never makes two mails.
        assert not await mail.enqueue(session, key=keys[0], recipient="x@test.citypair", mail=letter)
        await session.commit()
    return keys


async def test_a_mail_the_server_refused_is_sent_once_it_is_back(instances, mailbox):
    factories, settings = instances
    sender = MailSender(factories[0], settings)
    mailbox.stop()
    (key,) = await queue(factories[0], 1)
    assert await sender.send_due() == 0
    async with factories[0]() as session:
        row = await session.scalar(select(MailOutbox).where(MailOutbox.key == key))
        assert row.attempts == 1 and row.sent_at is None and row.next_attempt_at > datetime.now(UTC)
    assert await sender.send_due() == 0  # not due yet: no attempt
    mailbox.start()
    await asyncio.sleep(0.3)
    assert await sender.send_due() == 1
    assert await sender.send_due() == 0
    (received,) = mailbox.mails()
    assert key in received.get_body(("plain",)).get_content()
    assert received.get_body(("html",)) is not None
    async with factories[0]() as session:
        row = await session.scalar(select(MailOutbox).where(MailOutbox.key == key))
        assert row.sent_at is not None and row.text_body == row.html_body == ""  # no link outlives its mail here
    # Kept as long as the event outbox keeps its rows, then pruned.
    assert await sender.prune_sent(datetime.now(UTC)) == 0
    assert await sender.prune_sent(datetime.now(UTC) + timedelta(days=settings.outbox_kept_days, seconds=1)) == 1


@on_postgres
async def test_two_instances_send_each_mail_once(instances, mailbox):
    factories, settings = instances
    keys = await queue(factories[0], 60)
    senders = [MailSender(factory, settings) for factory in factories]
    sent = await asyncio.gather(*(sender.send_due() for sender in senders))
    assert sum(sent) == 60 and all(sent), sent  # both worked, neither sent what the other did
    bodies = [m.get_body(("plain",)).get_content() for m in mailbox.mails()]
    assert sorted(k for body in bodies for k in keys if k in body) == sorted(keys)


async def new_users(session_factory, count: int) -> list[str]:
    async with session_factory() as session:
        users = [
            User(id=str(uuid.uuid4()), email=f"u{i}-{uuid.uuid4().hex[:6]}@test.citypair", password_hash="x")
            for i in range(count)
        ]
        session.add_all(users)
        await session.commit()
    return [user.id for user in users]


async def notify(session_factory, user_ids: list[str], each: int) -> None:
    """`each` notifications of a kind mailed in digests (the default) for each user."""
    async with session_factory() as session:
        for user_id in user_ids:
            for n in range(each):
                session.add(
                    Notification(
                        id=str(uuid.uuid4()),
                        user_id=user_id,
                        kind="pilot_zones.proposal.approved.v1",
                        title=f"proposal {n}: approved",
                        link=f"/pilot-zones/p-{n}",
                        event_id=str(uuid.uuid4()),
                        mail_kind="proposal_transitions",
                    )
                )
        await session.commit()


@on_postgres
async def test_the_digest_job_run_twice_at_once_and_again_sends_one_digest_per_user_and_day(instances, mailbox):
    factories, settings = instances
    contexts = [IdentityContext(settings=settings) for _ in factories]
    users = await new_users(factories[0], 8)
    await notify(factories[0], users, each=3)
    now = datetime.now(UTC)
    runs = [mailing.send_digests(factory, ctx, now) for factory, ctx in zip(factories, contexts, strict=True)]
    queued = await asyncio.gather(*runs)
    assert sum(queued) == 8, queued
    async with factories[0]() as session:
        digests = await session.scalars(select(MailOutbox.key).where(MailOutbox.key.like("digest:%")))
        assert sorted(digests) == sorted(f"digest:{u}:{now.date().isoformat()}" for u in users)
    # Something new for a user later the same day waits for the next day's digest.
    await notify(factories[0], users[:1], each=1)
    assert await mailing.send_digests(factories[1], contexts[1], now + timedelta(minutes=1)) == 0
    async with factories[0]() as session:
        assert await session.scalar(select(func.count()).where(Notification.mailed_at.is_(None))) == 1
    assert await mailing.send_digests(factories[0], contexts[0], now + timedelta(days=1)) == 1
    async with factories[0]() as session:
        assert await session.scalar(select(func.count()).where(Notification.mailed_at.is_(None))) == 0
        assert await session.scalar(select(func.count()).where(MailOutbox.key.like(f"digest:{users[0]}:%"))) == 2
    sent = await asyncio.gather(*(MailSender(f, settings).send_due() for f in factories))
    assert sum(sent) == 9
    received = mailbox.mails()
    assert len(received) == 9 and len({m["To"] for m in received}) == 8
    body = received[0].get_body(("plain",)).get_content()
    assert all(f"proposal {n}: approved" in body for n in range(3))
    assert received[0]["List-Unsubscribe"].startswith("<https://citypair.example/unsubscribe/")
