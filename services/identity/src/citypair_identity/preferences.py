"""Which notifications a user wants mailed, and how: each kind at once, in the daily digest, or not at all; and the
signed links in mails that turn a kind off without signing in."""

from datetime import UTC, datetime

import jwt
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from citypair_identity.models import MailPreference, SigningKey, User
from citypair_shared.auth import ALGORITHM
from citypair_shared.db import insert_if_absent, upsertable_insert
from citypair_shared.problems import invalid

KINDS = ("action_needed", "match_decisions", "proposal_transitions", "stale_flags", "partner_suggestions")
MODES = ("immediate", "digest", "off")
DEFAULT_MODE = "digest"
DEFAULT_MIN_SCORE = 0.8
# A digest's link turns off every kind the user gets in digests.
DIGEST = "digest"
UNSUBSCRIBE_AUDIENCE = "citypair-unsubscribe"


def with_defaults(preference: MailPreference | None) -> dict:
    stored = preference.notifications if preference else {}
    return {
        "notifications": {kind: stored.get(kind, DEFAULT_MODE) for kind in KINDS},
        "suggestion_min_score": preference.suggestion_min_score if preference else DEFAULT_MIN_SCORE,
    }


async def get(session: AsyncSession, user_id: str) -> dict:
    return with_defaults(await session.get(MailPreference, user_id))


async def of_users(session: AsyncSession, user_ids: list[str]) -> dict[str, dict]:
    """Each user's preferences (defaults for users who never chose)."""
    rows = await session.scalars(select(MailPreference).where(MailPreference.user_id.in_(user_ids)))
    chosen = {row.user_id: row for row in rows}
    return {user_id: with_defaults(chosen.get(user_id)) for user_id in user_ids}


async def modes_of(session: AsyncSession, user_ids: list[str]) -> dict[str, dict[str, str]]:
    """Each user's mode per kind (defaults for users who never chose)."""
    return {user_id: chosen["notifications"] for user_id, chosen in (await of_users(session, user_ids)).items()}


async def put(session: AsyncSession, user_id: str, *, notifications: dict[str, str], min_score: float) -> dict:
    """Replace the user's preferences (kinds not named take the default) in one upsert."""
    values = {
        "notifications": {k: notifications.get(k, DEFAULT_MODE) for k in KINDS},
        "suggestion_min_score": min_score,
    }
    upsert = upsertable_insert(session, MailPreference).values(user_id=user_id, **values)
    await session.execute(upsert.on_conflict_do_update(index_elements=[MailPreference.user_id], set_=values))
    await session.commit()
    return await get(session, user_id)


def unsubscribe_token(key: SigningKey, *, user_id: str, kind: str) -> str:
    """A link's token naming the user and the kind, signed with identity's signing key (no expiry: a mail's
    link keeps working)."""
    claims = {"aud": UNSUBSCRIBE_AUDIENCE, "sub": user_id, "kind": kind, "iat": datetime.now(UTC)}
    return jwt.encode(claims, key.private_pem, algorithm=ALGORITHM, headers={"kid": key.kid})


async def unsubscribe(session: AsyncSession, token: str) -> tuple[str, str]:
    """Turn off the kind the token names for its user (for a digest's token: every kind mailed in digests);
    returns (user id, kind). 422 `token` if it is not one of ours."""
    try:
        kid = jwt.get_unverified_header(token).get("kid", "")
        key = await session.get(SigningKey, kid) if isinstance(kid, str) and kid else None
        if key is None:
            raise jwt.InvalidTokenError("unknown key")
        claims = jwt.decode(token, jwt.PyJWK(key.public_jwk).key, algorithms=[ALGORITHM], audience=UNSUBSCRIBE_AUDIENCE)
    except jwt.InvalidTokenError:
        raise invalid("token", "is not a valid unsubscribe link", code="bad_unsubscribe_link") from None
    user_id, kind = claims.get("sub"), claims.get("kind")
    if not isinstance(user_id, str) or kind not in (*KINDS, DIGEST) or await session.get(User, user_id) is None:
        raise invalid("token", "is not a valid unsubscribe link", code="bad_unsubscribe_link")
    # The row is created if missing, then locked: two links clicked at once both take effect.
    await insert_if_absent(
        session, MailPreference, user_id=user_id, notifications={}, suggestion_min_score=DEFAULT_MIN_SCORE
    )
    row = await session.scalar(select(MailPreference).where(MailPreference.user_id == user_id).with_for_update())
    modes = with_defaults(row)["notifications"]
    off = [k for k, mode in modes.items() if mode == "digest"] if kind == DIGEST else [kind]
    row.notifications = {**modes, **dict.fromkeys(off, "off")}
    await session.commit()
    return user_id, kind
