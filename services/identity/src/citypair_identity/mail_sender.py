"""Sends the mail outbox through SMTP: at least once (a mail is marked sent only after the server accepted it),
never by two replicas at once (a row is claimed as the event outbox's relay claims its rows), and again after a
failure with a doubling wait."""

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate

import aiosmtplib
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from citypair_identity.config import Settings
from citypair_identity.mail import message_id
from citypair_identity.models import MailOutbox
from citypair_shared.logging import get_logger

log = get_logger(__name__)
SMTP_TIMEOUT_SECONDS = 30
PRUNE_EVERY = timedelta(hours=1)


def retry_wait(settings: Settings, attempts: int) -> timedelta:
    """The wait after the `attempts`-th failure: the first wait, doubling, up to the longest."""
    first, longest = settings.mail_retry_first_seconds, settings.mail_retry_max_seconds
    return timedelta(seconds=min(longest, first * 2 ** min(attempts - 1, 32)))


def as_message(row: MailOutbox, sender: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = row.recipient
    message["Subject"] = row.subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = message_id(row.key, sender)
    for name, value in row.headers.items():
        message[name] = value
    message.set_content(row.text_body)
    message.add_alternative(row.html_body, subtype="html")
    return message


class MailSender:
    """Woken after each commit that queued a mail, and sweeping for due retries."""

    def __init__(self, session_factory: async_sessionmaker[AsyncSession], settings: Settings):
        self.session_factory = session_factory
        self.settings = settings
        self._wake = asyncio.Event()
        self._pruned_at = datetime.min.replace(tzinfo=UTC)

    def wake(self) -> None:
        self._wake.set()

    def _smtp(self) -> aiosmtplib.SMTP:
        s = self.settings
        return aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            use_tls=s.smtp_security == "tls",
            start_tls=s.smtp_security == "starttls",
            # Empty (compose's default): no login.
            username=s.smtp_username or None,
            password=(s.smtp_password.get_secret_value() or None) if s.smtp_password else None,
            timeout=SMTP_TIMEOUT_SECONDS,
        )

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.send_due()
                if datetime.now(UTC) - self._pruned_at >= PRUNE_EVERY:
                    await self.prune_sent(datetime.now(UTC))
            except Exception as exc:  # the database is away: the sweep tries again
                log.warning("mail.sender_failed", error=repr(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.settings.mail_sweep_seconds)
            self._wake.clear()

    async def prune_sent(self, now: datetime) -> int:
        """Delete the rows of mails sent longer ago than the event outbox keeps its rows (`outbox_kept_days`): a
        key is kept long enough to refuse its thing a second mail (a day's digest, a redelivered event)."""
        async with self.session_factory() as session:
            kept_since = now - timedelta(days=self.settings.outbox_kept_days)
            pruned = await session.execute(delete(MailOutbox).where(MailOutbox.sent_at < kept_since))
            await session.commit()
        self._pruned_at = now
        return pruned.rowcount

    async def send_due(self) -> int:
        """Send every mail that is due, one claimed row at a time over one SMTP connection; returns how many the
        server accepted. Stops at the first failure: the server is likely away, and the rest wait for the sweep."""
        sent = 0
        smtp: aiosmtplib.SMTP | None = None
        try:
            while True:
                async with self.session_factory() as session:
                    now = datetime.now(UTC)
                    row = await session.scalar(
                        select(MailOutbox)
                        .where(MailOutbox.sent_at.is_(None), MailOutbox.next_attempt_at <= now)
                        .order_by(MailOutbox.seq)
                        .limit(1)
                        # Claimed until this transaction ends, as citypair_shared.outbox's relay claims its rows:
                        # another replica's sender takes the next one (SQLite has one writer and no such clause).
                        .with_for_update(skip_locked=True)
                    )
                    if row is None:
                        return sent
                    try:
                        if smtp is None:
                            smtp = self._smtp()
                            await smtp.connect()
                        await smtp.send_message(as_message(row, self.settings.mail_from))
                    # ValueError: a message the email package will not write; it waits like any other failure
                    # instead of blocking the mails behind it.
                    except (aiosmtplib.SMTPException, OSError, TimeoutError, ValueError) as exc:
                        row.attempts += 1
                        row.last_error = repr(exc)[:500]
                        row.next_attempt_at = now + retry_wait(self.settings, row.attempts)
                        await session.commit()
                        log.warning("mail.send_failed", seq=row.seq, attempts=row.attempts, error=repr(exc))
                        return sent
                    row.sent_at = datetime.now(UTC)
                    row.text_body = row.html_body = ""  # a reset link lives here no longer than until it is sent
                    await session.commit()
                    log.info("mail.sent", seq=row.seq, key=row.key)
                    sent += 1
        finally:
            if smtp is not None and smtp.is_connected:
                with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                    await smtp.quit()
