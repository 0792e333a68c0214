"""Server-side sessions: the browser holds only a random id (HttpOnly, SameSite); tokens stay here.

Kept in a NATS key-value bucket that every web replica shares (declared by the bus admin with the
streams): any replica serves any session, and a restart signs nobody out. The bucket's key is a hash of
the session id, so the key list alone gives nobody a cookie.
"""

import asyncio
import dataclasses
import hashlib
import json
import secrets
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError

from citypair_shared.bus import Bus, patiently

COOKIE = "citypair_session"
LANG_COOKIE = "citypair_lang"
BUCKET = "web_sessions"
# A replica refreshing a session's tokens holds it this long at most: longer than the refresh call may take
# (the API client's timeout is 30 s), so no other replica can take over a refresh still under way.
CLAIM_SECONDS = 45


class SignedOut(Exception):
    """The session's tokens no longer work: sign in again."""


@dataclass
class Session:
    id: str
    access_token: str
    refresh_token: str
    user: dict
    expires_at: float
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    # Until when a replica is refreshing the tokens (0: nobody is).
    refreshing_until: float = 0
    revision: int = field(default=0, compare=False)  # the bucket's, of the entry this was read from

    @property
    def roles(self) -> set[str]:
        return set(self.user.get("roles", []))

    @property
    def city_ids(self) -> list[str]:
        return list(self.user.get("city_ids", []))

    @property
    def language(self) -> str | None:
        """The language the user chose in My account (identity's `language`), if any."""
        return self.user.get("language")

    def encode(self) -> bytes:
        stored = dataclasses.asdict(self)
        del stored["id"], stored["revision"]
        return json.dumps(stored).encode()


# Trades a refresh token for (access token, refresh token, user); raises SignedOut if it is refused.
Exchange = Callable[[str], Awaitable[tuple[str, str, dict]]]


class SessionStore:
    def __init__(self, *, lifetime_seconds: float):
        self.lifetime = lifetime_seconds
        self.kv = None
        self._refreshing: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    async def open(self, bus: Bus) -> None:
        self.kv = await patiently(lambda: bus.js.key_value(BUCKET))

    async def create(self, *, access_token: str, refresh_token: str, user: dict) -> str:
        session = Session(secrets.token_urlsafe(32), access_token, refresh_token, user, time.time() + self.lifetime)
        await self.kv.create(_key(session.id), session.encode())
        return session.id

    async def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        try:
            entry = await self.kv.get(_key(session_id))
        except KeyNotFoundError:  # never was, or deleted
            return None
        if entry.value is None:
            return None
        session = Session(id=session_id, revision=entry.revision, **json.loads(entry.value))
        return session if session.expires_at >= time.time() else None

    async def drop(self, session_id: str | None) -> None:
        if session_id:
            await self.kv.delete(_key(session_id))

    async def refresh(self, session: Session, *, expired: str, exchange: Exchange) -> None:
        """New tokens for `session`, whose access token `expired` was refused: traded once for all the
        requests of the session on every replica (identity takes a refresh token used twice for a stolen
        one and revokes them all). A replica claims the entry (compare-and-set on its revision) before it
        trades; the others wait for the new tokens."""
        lock = self._refreshing.setdefault(session.id, asyncio.Lock())
        async with lock:  # this replica's requests wait here, not in the polling below
            give_up = time.time() + 2 * CLAIM_SECONDS
            while True:
                current = await self.get(session.id)
                if current is None:
                    raise SignedOut()
                if current.access_token != expired:
                    return _adopt(session, current)  # refreshed by another request, here or elsewhere
                if current.refreshing_until > time.time():  # another replica is trading: wait for its tokens
                    if time.time() > give_up:
                        raise SignedOut()
                    await asyncio.sleep(0.05)
                    continue
                claim = dataclasses.replace(current, refreshing_until=time.time() + CLAIM_SECONDS)
                try:
                    claim.revision = await self.kv.update(_key(session.id), claim.encode(), last=current.revision)
                except KeyWrongLastSequenceError:
                    continue  # another replica claimed it first
                return _adopt(session, await self._trade(claim, exchange))

    async def _trade(self, claim: Session, exchange: Exchange) -> Session:
        try:
            access_token, refresh_token, user = await exchange(claim.refresh_token)
        except SignedOut:
            await self.drop(claim.id)
            raise
        except BaseException:  # the trade may not have happened: release the claim, so a request can retry
            released = dataclasses.replace(claim, refreshing_until=0)
            await self.kv.update(_key(claim.id), released.encode(), last=claim.revision)
            raise
        fresh = dataclasses.replace(
            claim, access_token=access_token, refresh_token=refresh_token, user=user, refreshing_until=0
        )
        # Unconditional: nobody may take a claim before it runs out, and this is well within it.
        fresh.revision = await self.kv.put(_key(claim.id), fresh.encode())
        return fresh


def _key(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def _adopt(session: Session, current: Session) -> None:
    session.access_token, session.refresh_token, session.user = (
        current.access_token,
        current.refresh_token,
        current.user,
    )
    session.revision = current.revision
