"""Server-side sessions: the browser holds only a random id (HttpOnly, SameSite); tokens stay here.

Kept in memory: a restart of `web` signs everyone out, which is the safe failure.
"""

import asyncio
import secrets
import time
from dataclasses import dataclass, field

COOKIE = "citypair_session"
LANG_COOKIE = "citypair_lang"


@dataclass
class Session:
    access_token: str
    refresh_token: str
    user: dict
    expires_at: float
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    refreshing: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False, compare=False)

    @property
    def roles(self) -> set[str]:
        return set(self.user.get("roles", []))

    @property
    def city_ids(self) -> list[str]:
        return list(self.user.get("city_ids", []))


class SessionStore:
    def __init__(self, *, lifetime_seconds: float):
        self.lifetime = lifetime_seconds
        self._sessions: dict[str, Session] = {}

    def create(self, *, access_token: str, refresh_token: str, user: dict) -> str:
        self._evict()
        session_id = secrets.token_urlsafe(32)
        self._sessions[session_id] = Session(access_token, refresh_token, user, time.time() + self.lifetime)
        return session_id

    def get(self, session_id: str | None) -> Session | None:
        session = self._sessions.get(session_id or "")
        if session is None or session.expires_at < time.time():
            return None
        return session

    def drop(self, session_id: str | None) -> Session | None:
        return self._sessions.pop(session_id or "", None)

    def _evict(self) -> None:
        now = time.time()
        for key in [k for k, s in self._sessions.items() if s.expires_at < now]:
            del self._sessions[key]
