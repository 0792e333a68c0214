"""Mails: composed in the user's language from the templates, and queued in the mail outbox in the transaction of
the change they tell of (mail_sender.py sends them)."""

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from sqlalchemy.ext.asyncio import AsyncSession

from citypair_identity.mail_texts import RIGHT_TO_LEFT, roles, text
from citypair_identity.models import MailOutbox
from citypair_shared.db import after_commit, upsertable_insert

_templates = Environment(
    loader=PackageLoader("citypair_identity", "templates"),
    autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=True),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
)


@dataclass(frozen=True)
class Link:
    title: str
    url: str


@dataclass(frozen=True)
class Unsubscribe:
    text: str
    label: str
    url: str


@dataclass(frozen=True)
class Mail:
    """A composed mail: its subject, its plain-text and HTML bodies, and headers of its own."""

    subject: str
    text_body: str
    html_body: str
    headers: dict[str, str]


def compose(
    language: str,
    *,
    subject: str,
    name: str = "",
    paragraphs: tuple[str, ...] = (),
    action: Link | None = None,
    items: tuple[Link, ...] = (),
    notes: tuple[str, ...] = (),
    unsubscribe: Unsubscribe | None = None,
) -> Mail:
    greeting = text(language, "hello", name=name) if name else text(language, "hello_anonymous")
    context = {
        "language": language,
        "direction": "rtl" if language in RIGHT_TO_LEFT else "ltr",
        "subject": subject,
        "greeting": greeting,
        "paragraphs": paragraphs,
        "action": action and {"label": action.title, "url": action.url},
        "items": items,
        "notes": notes,
        "unsubscribe": unsubscribe,
    }
    # RFC 2369: mail programs offer their own "unsubscribe" button from it.
    headers = {"List-Unsubscribe": f"<{unsubscribe.url}>"} if unsubscribe else {}
    return Mail(
        subject=subject,
        text_body=_templates.get_template("mail.txt.j2").render(context),
        html_body=_templates.get_template("mail.html.j2").render(context),
        headers=headers,
    )


def invitation(language: str, *, name: str, role_names: list[str], url: str, hours: int) -> Mail:
    return compose(
        language,
        subject=text(language, "invitation.subject"),
        name=name,
        paragraphs=(text(language, "invitation.body", roles=roles(language, role_names)),),
        action=Link(text(language, "invitation.action"), url),
        notes=(text(language, "invitation.expiry", hours=hours),),
    )


def password_reset(language: str, *, name: str, url: str, minutes: int, forced: bool) -> Mail:
    body = text(language, "forced_reset.body" if forced else "reset.body")
    return compose(
        language,
        subject=text(language, "forced_reset.subject" if forced else "reset.subject"),
        name=name,
        paragraphs=(body,),
        action=Link(text(language, "reset.action"), url),
        notes=(text(language, "reset.expiry", minutes=minutes),),
    )


def unsubscribe_note(language: str, *, kind: str, url: str) -> Unsubscribe:
    label = f"{text(language, 'unsubscribe.action')}: {text(language, 'kind.' + kind)}"
    return Unsubscribe(text(language, "unsubscribe"), label, url)


def notification(language: str, *, name: str, title: str, url: str, unsubscribe: Unsubscribe) -> Mail:
    return compose(
        language,
        subject=text(language, "notification.subject", title=title),
        name=name,
        paragraphs=(title,),
        action=Link(text(language, "notification.action"), url),
        unsubscribe=unsubscribe,
    )


def digest(language: str, *, name: str, items: list[Link], unsubscribe: Unsubscribe) -> Mail:
    return compose(
        language,
        subject=text(language, "digest.subject", count=len(items)),
        name=name,
        paragraphs=(text(language, "digest.body"),),
        items=tuple(items),
        unsubscribe=unsubscribe,
    )


def message_id(key: str, sender: str) -> str:
    """The same Message-ID for every attempt at one mail: a mail program may drop a copy sent again."""
    domain = sender.rsplit("@", 1)[-1].strip("> ") or "citypair.local"
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:40]}@{domain}>"


async def enqueue(session: AsyncSession, *, key: str, recipient: str, mail: Mail, wake=None) -> bool:
    """Queue `mail` for `recipient` in the caller's transaction, unless a mail with `key` exists (then False).
    `wake` (the sender's) runs once the transaction commits."""
    queued = await session.execute(
        upsertable_insert(session, MailOutbox)
        .values(
            key=key,
            recipient=recipient,
            subject=" ".join(mail.subject.split())[:300],  # one line: a title from elsewhere may hold a newline
            text_body=mail.text_body,
            html_body=mail.html_body,
            headers=mail.headers,
            next_attempt_at=datetime.now(UTC),
            attempts=0,
        )
        .on_conflict_do_nothing(index_elements=[MailOutbox.key])
        .returning(MailOutbox.seq)
    )
    if queued.first() is None:
        return False
    if wake is not None:
        after_commit(session, wake)
    return True
