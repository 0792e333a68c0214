"""Mails: composed in the user's language from the templates, and queued in the mail outbox in the transaction of
the change they tell of (mail_sender.py sends them).

Their words are gettext messages (Babel), English in the code; `translations/<lang>/LC_MESSAGES/messages.po`
translate them and `make` compiles each to the `.mo` read here. After changing a mail's words, run
`python -m citypair_cli.catalogs`: it re-extracts `messages.pot`, updates every catalog and lists what is left to
translate. The values filled in (names, titles) are the user's own or other services'.
"""

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

from babel.support import NullTranslations, Translations
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from sqlalchemy.ext.asyncio import AsyncSession

from citypair_identity.models import MailOutbox
from citypair_shared.db import after_commit, upsertable_insert

LANGUAGES = ("en", "zh", "ru", "ar")
RIGHT_TO_LEFT = frozenset({"ar"})
CATALOGS = Path(__file__).parent / "translations"
# The English names of the keys a mail shows: the catalogs add each in the context of its kind (and what happened,
# notifications.LABELS).
LABELS: dict[str, dict[str, str]] = {
    "role": {"admin": "administrator", "coordinator": "coordinator", "official": "official", "observer": "observer"},
    "mail_kind": {
        "action_needed": "proposals that need my action",
        "match_decisions": "decisions on my cities' matches",
        "proposal_transitions": "proposal transitions",
        "stale_flags": "stale proposals",
        "partner_suggestions": "new partner suggestions",
        "digest": "the daily digest",
    },
}

_templates = Environment(
    loader=PackageLoader("citypair_identity", "templates"),
    autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=True),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
)


@cache
def translations(language: str) -> NullTranslations:
    """The compiled catalog of `language`; English needs none (the msgids are English), nor does a language mails
    are not written in (they fall back to English)."""
    if language == "en" or language not in LANGUAGES:
        return NullTranslations()
    found = Translations.load(CATALOGS, [language])
    if not isinstance(found, Translations):
        raise RuntimeError(f"no compiled catalog for {language!r} in {CATALOGS}: run `make install` (pybabel compile)")
    return found


def gettext(message: str, language: str, **values) -> str:
    text = translations(language).gettext(message)
    return text % values if values else text


def ngettext(singular: str, plural: str, n: int, language: str, **values) -> str:
    """The form of `language` for the count `n` (the caller names `n` among `values` too)."""
    return translations(language).ngettext(singular, plural, n) % values


def label(kind: str, key: str, language: str) -> str:
    """A key of `kind` in `language`; the key itself if it has no name (yet)."""
    english = LABELS[kind].get(key)
    return translations(language).pgettext(kind, english) if english else key


def roles(language: str, names: list[str]) -> str:
    return ", ".join(label("role", name, language) for name in names)


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
    greeting = gettext("Hello %(name)s,", language, name=name) if name else gettext("Hello,", language)
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
        subject=gettext("You are invited to citypair", language),
        name=name,
        paragraphs=(
            gettext(
                "You are invited to citypair as %(roles)s. Choose your password to start.",
                language,
                roles=roles(language, role_names),
            ),
        ),
        action=Link(gettext("Choose my password", language), url),
        notes=(
            ngettext(
                "The link works once, for %(hours)s hour.",
                "The link works once, for %(hours)s hours.",
                hours,
                language,
                hours=hours,
            ),
        ),
    )


def password_reset(language: str, *, name: str, url: str, minutes: int, forced: bool) -> Mail:
    if forced:
        subject = gettext("Your citypair password was reset", language)
        body = gettext("An administrator reset your password: the old one no longer works. Choose a new one.", language)
    else:
        subject = gettext("Reset your citypair password", language)
        body = gettext("A new password was asked for your citypair account. Choose one with this link.", language)
    expiry = ngettext(
        "The link works once, for %(minutes)s minute. If you did not ask, ignore this mail.",
        "The link works once, for %(minutes)s minutes. If you did not ask, ignore this mail.",
        minutes,
        language,
        minutes=minutes,
    )
    return compose(
        language,
        subject=subject,
        name=name,
        paragraphs=(body,),
        action=Link(gettext("Choose a new password", language), url),
        notes=(expiry,),
    )


def unsubscribe_note(language: str, *, kind: str, url: str) -> Unsubscribe:
    action = gettext("Unsubscribe", language)
    return Unsubscribe(
        gettext("You get this mail because of your notification settings. Stop these mails:", language),
        f"{action}: {label('mail_kind', kind, language)}",
        url,
    )


def notification(language: str, *, name: str, title: str, url: str, unsubscribe: Unsubscribe) -> Mail:
    """A mail of one notification; `title` is in `language` already (notifications.title_in)."""
    return compose(
        language,
        subject=gettext("citypair: %(title)s", language, title=title),
        name=name,
        paragraphs=(title,),
        action=Link(gettext("Open in citypair", language), url),
        unsubscribe=unsubscribe,
    )


def digest(language: str, *, name: str, items: list[Link], unsubscribe: Unsubscribe) -> Mail:
    count = len(items)
    return compose(
        language,
        # English says the count in brackets, so its two forms are one; other languages' forms differ.
        subject=ngettext(
            "citypair: your daily digest (%(count)s)",
            "citypair: your daily digest (%(count)s)",
            count,
            language,
            count=count,
        ),
        name=name,
        paragraphs=(gettext("What happened since your last digest:", language),),
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
