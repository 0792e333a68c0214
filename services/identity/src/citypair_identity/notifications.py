"""Notifications: made from other services' events for the users concerned; read through `/api/v1/me`, and mailed
as each user chose (mailing.py)."""

import uuid
from datetime import UTC, datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from citypair_identity import mail, preferences
from citypair_identity.models import Notification, User, UserCity, UserRole
from citypair_shared.events import EVENT_TYPES, CloudEvent, SuggestionsFound
from citypair_shared.problems import not_found

# Who hears of what: officials of the cities an event names; coordinators also of the work they decide.
COORDINATOR_EVENTS = {"pilot_zones.proposal.submitted.v1", "pilot_zones.proposal.stale_flagged.v1"}
NOTIFIED_TYPES = sorted(
    t for t in EVENT_TYPES if t.startswith(("pilot_zones.proposal.", "matching.match.", "matching.suggestions."))
)
SUGGESTIONS = SuggestionsFound.event_type


def what_happened(event_type: str) -> str:
    """What happened, in English, by the type of the event (the API's titles say it; mails and pages translate it)."""
    kind = event_type.split(".")[2]
    if event_type == SUGGESTIONS:
        return "New partner suggestion"
    if event_type.startswith("matching.match."):
        return f"Match {kind}"
    return kind.replace("_", " ")


EVENTS = {event_type: what_happened(event_type) for event_type in NOTIFIED_TYPES}
SUGGESTION_TITLE = EVENTS[SUGGESTIONS]
# The names of the keys identity's mails show, each translated in the context of its kind (citypair_cli.catalogs).
LABELS = {**mail.LABELS, "event": EVENTS}


def mail_kind(event_type: str, *, decides: bool) -> str:
    """Which of the kinds a user sets mail preferences for (preferences.KINDS) the event is, to this user."""
    what = event_type.split(".")[2]
    if event_type == SUGGESTIONS:
        return "partner_suggestions"
    if event_type.startswith("matching."):
        return "match_decisions"
    if what == "stale_flagged":
        return "stale_flags"
    # A submitted proposal waits for its coordinator; one sent back with changes requested, for its officials.
    if (decides and what == "submitted") or what == "changes_requested":
        return "action_needed"
    return "proposal_transitions"


def describe(event: CloudEvent) -> tuple[str, str]:
    """A title (English: the API's; pages and mails translate it by its kind) and a link (a page of `web`)."""
    data = event.data
    if event.type.startswith("matching.match."):
        return what_happened(event.type), "/cities/{city}/partners"
    title = data.get("title", "pilot zone")
    return f"{title}: {what_happened(event.type)}", f"/pilot-zones/{data.get('proposal_id', '')}"


def title_in(language: str, kind: str, title: str) -> str:
    """A notification's title, as `describe` or `suggestion_notice` made it, in `language`: what happened by the type
    of its event; a proposal's own title and a suggested city's name stay as written. A title of another shape
    (a kind with no name yet) stays English."""
    english = EVENTS.get(kind)
    if english is None:
        return title
    what = mail.translations(language).pgettext("event", english)
    if kind == SUGGESTIONS and title.startswith(f"{english}: "):
        return mail.gettext("%(what)s: %(city)s", language, what=what, city=title.removeprefix(f"{english}: "))
    if title.endswith(f": {english}"):
        return mail.gettext("%(title)s: %(what)s", language, title=title.removesuffix(f": {english}"), what=what)
    return what if title == english else title


def suggestion_notice(found: SuggestionsFound, city_ids: set[str], min_score: float) -> tuple[str, str] | None:
    """What an official of `city_ids` is told of a newly published city's suggestions scoring at least `min_score`
    (a title and a link), if anything: for the new city, its best partner and its partners page; for a suggested
    partner, the new city and the pair, from the best of theirs."""
    wanted = [s for s in found.suggestions if s.score >= min_score]
    if found.city_id in city_ids and wanted:
        return f"{SUGGESTION_TITLE}: {wanted[0].name}", f"/cities/{found.city_id}/partners"
    mine = next((s for s in wanted if s.city_id in city_ids), None)
    if mine is None:
        return None
    return f"{SUGGESTION_TITLE}: {found.name}", f"/pairs/{mine.city_id}/{found.city_id}"


async def notify_suggestions(event: CloudEvent, session: AsyncSession) -> list[tuple[User, Notification]]:
    """One notification per official of the new city or of a suggested partner, where a score reaches theirs."""
    found = event.parsed()
    cities = {found.city_id, *(s.city_id for s in found.suggestions)}
    users = [user for user in await _concerned(session, cities) if "official" in user.roles]
    chosen = await preferences.of_users(session, [user.id for user in users])
    made = []
    for user in users:
        notice = suggestion_notice(found, set(user.city_ids), chosen[user.id]["suggestion_min_score"])
        if notice is not None:
            title, link = notice
            made.append((user, _add(session, event, user, title=title, link=link, decides=False)))
    return made


async def notify(event: CloudEvent, session: AsyncSession) -> list[tuple[User, Notification]]:
    """Notify each user concerned; returns them with their notifications (not yet committed)."""
    if event.type == SUGGESTIONS:
        return await notify_suggestions(event, session)
    city_ids = set(event.data.get("city_ids", []))
    title, link = describe(event)
    made = []
    for user in await _concerned(session, city_ids, coordinators=event.type in COORDINATOR_EVENTS):
        mine = "official" in user.roles and city_ids & set(user.city_ids)
        decides = "coordinator" in user.roles and event.type in COORDINATOR_EVENTS
        if mine or decides:
            own_city = next(iter(sorted(city_ids & set(user.city_ids))), "")
            notice = _add(session, event, user, title=title, link=link.format(city=own_city), decides=bool(decides))
            made.append((user, notice))
    return made


async def _concerned(session: AsyncSession, city_ids: set[str], *, coordinators: bool = False) -> list[User]:
    """The enabled users with one of the cities (and every coordinator, when `coordinators`), read through
    `user_city` and `user_role`: an event reads its few users, not all of them."""
    chosen = User.id.in_(select(UserCity.user_id).where(UserCity.city_id.in_(sorted(city_ids))))
    if coordinators:
        chosen |= User.id.in_(select(UserRole.user_id).where(UserRole.role == "coordinator"))
    return list(await session.scalars(select(User).where(chosen, User.disabled.is_(False)).order_by(User.email)))


def _add(session: AsyncSession, event: CloudEvent, user: User, *, title: str, link: str, decides: bool):
    notification = Notification(
        id=str(uuid.uuid4()),
        user_id=user.id,
        kind=event.type,
        title=title,
        link=link,
        event_id=event.id,
        mail_kind=mail_kind(event.type, decides=decides),
    )
    session.add(notification)
    return notification


async def list_for(*, session: AsyncSession, user_id: str, unread: bool, limit: int, offset: int):
    query = select(Notification).where(Notification.user_id == user_id)
    if unread:
        query = query.where(Notification.read_at.is_(None))
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    rows = await session.scalars(query.order_by(Notification.created_at.desc()).limit(limit).offset(offset))
    return list(rows), total


async def mark_read(*, session: AsyncSession, user_id: str, notification_id: str) -> None:
    result = await session.execute(
        update(Notification)
        .where(Notification.id == notification_id, Notification.user_id == user_id)
        .values(read_at=datetime.now(UTC))
    )
    if result.rowcount == 0:
        raise not_found("notification", notification_id)
    await session.commit()
