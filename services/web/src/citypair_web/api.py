"""Calls to the citypair API (through the gateway) as the signed-in user, refreshing the token once."""

import httpx

from citypair_shared.idempotency import HEADER as IDEMPOTENCY_KEY
from citypair_shared.idempotency import new_key
from citypair_shared.logging import request_id_var
from citypair_shared.middleware import REQUEST_ID_HEADER
from citypair_web.sessions import Session, SessionStore, SignedOut


async def _pass_request_id(request: httpx.Request) -> None:
    """The page's request id goes with each API call it makes: one id across the gateway and the services."""
    if (request_id := request_id_var.get()) and REQUEST_ID_HEADER not in request.headers:
        request.headers[REQUEST_ID_HEADER] = request_id


class Api:
    def __init__(self, base_url: str, sessions: SessionStore):
        self.client = httpx.AsyncClient(base_url=base_url, timeout=30, event_hooks={"request": [_pass_request_id]})
        self.sessions = sessions

    async def close(self) -> None:
        await self.client.aclose()

    async def sign_in(self, email: str, password: str, client_address: str) -> httpx.Response:
        return await self.client.post(
            "/api/v1/auth/token",
            data={"username": email, "password": password},
            # Sign-in is throttled per address: the browser's, which the gateway believes from web only.
            headers={"X-Forwarded-For": client_address},
        )

    async def me(self, access_token: str) -> dict:
        response = await self.client.get("/api/v1/me", headers={"Authorization": f"Bearer {access_token}"})
        response.raise_for_status()
        return response.json()

    async def call(self, session: Session, method: str, path: str, **kwargs) -> httpx.Response:
        """One API call; on 401, refresh the tokens once and retry; raise SignedOut if that fails too.

        A POST (one per form submission) carries a fresh `Idempotency-Key`, the same on that retry: it is applied
        at most once however the first attempt ended.
        """
        if method.upper() == "POST":
            kwargs["headers"] = {IDEMPOTENCY_KEY: new_key(), **kwargs.get("headers", {})}
        response = await self._send(session, method, path, **kwargs)
        if response.status_code != 401:
            return response
        await self.sessions.refresh(session, expired=session.access_token, exchange=self._exchange)
        response = await self._send(session, method, path, **kwargs)
        if response.status_code == 401:
            raise SignedOut()
        return response

    async def _exchange(self, refresh_token: str) -> tuple[str, str, dict]:
        refreshed = await self.client.post("/api/v1/auth/refresh", json={"refresh_token": refresh_token})
        if refreshed.status_code != 200:
            raise SignedOut()
        tokens = refreshed.json()
        return tokens["access_token"], tokens["refresh_token"], await self.me(tokens["access_token"])

    async def _send(
        self, session: Session, method: str, path: str, headers: dict[str, str] | None = None, **kwargs
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {session.access_token}", **(headers or {})}
        return await self.client.request(method, path, headers=headers, **kwargs)

    async def logout(self, session: Session) -> None:
        await self.client.post("/api/v1/auth/logout", json={"refresh_token": session.refresh_token})
