"""Token checks every service makes itself: signature (EdDSA only), expiry, issuer, audience,
roles, cities — and revocation, learnt from `identity.user.tokens_revoked.v1` events.

Public keys come from identity's JWKS, cached, and fetched again only for an unknown key id.
"""

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Annotated

import httpx
import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from citypair_shared.logging import get_logger
from citypair_shared.problems import Problem

log = get_logger(__name__)

ALGORITHM = "EdDSA"  # fixed: a token naming any other algorithm (or "none") is refused
ROLES = ("admin", "coordinator", "official", "observer")
JWKS_MIN_REFRESH_SECONDS = 5.0
VERIFIED_KEPT = 4096  # tokens whose signature was checked, kept until they expire (the most recently used)


@dataclass(frozen=True)
class Principal:
    """Who is calling, as the verified token says."""

    user_id: str
    email: str
    roles: frozenset[str]
    city_ids: frozenset[str]
    token_version: int

    def has_role(self, *roles: str) -> bool:
        return bool(self.roles.intersection(roles))

    def official_of(self, city_id: str) -> bool:
        return "official" in self.roles and city_id in self.city_ids


def unauthorized(detail: str) -> Problem:
    return Problem(401, "Unauthorized", detail, type_="/problems/unauthorized", headers={"WWW-Authenticate": "Bearer"})


def forbidden(detail: str, **extra) -> Problem:
    return Problem(403, "Forbidden", detail, type_="/problems/forbidden", **extra)


class TokenVerifier:
    def __init__(self, *, jwks_url: str, issuer: str, audience: str):
        self.jwks_url, self.issuer, self.audience = jwks_url, issuer, audience
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = float("-inf")  # when the last fetch ended
        self._lock = asyncio.Lock()
        # user id -> lowest token version still valid (from revocation events)
        self.min_version: dict[str, int] = {}
        # token -> (who it names, its key id, when it expires): a signature checked once, not on every request
        # (the check was ~8 % of a service's loop under load, py-spy). Revocation, expiry and the key are
        # checked again on every use.
        self._verified: OrderedDict[str, tuple[Principal, str, float]] = OrderedDict()

    def revoke(self, user_id: str, min_version: int) -> None:
        if min_version > self.min_version.get(user_id, 0):
            self.min_version[user_id] = min_version

    async def verify(self, token: str) -> Principal:
        kept = self._verified.get(token)
        if kept is None:
            principal = await self._checked(token)
        else:
            principal, kid, expires = kept
            if time.time() >= expires:
                del self._verified[token]
                raise unauthorized("token expired")
            if kid not in self._keys:  # its key is no longer published
                del self._verified[token]
                raise unauthorized("unknown signing key")
            self._verified.move_to_end(token)
        if principal.token_version < self.min_version.get(principal.user_id, 0):
            raise unauthorized("token revoked")
        return principal

    async def _checked(self, token: str) -> Principal:
        """The token's principal, its signature and claims checked (and kept, see `_verified`)."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise unauthorized("malformed token") from exc
        if header.get("alg") != ALGORITHM:
            raise unauthorized("token algorithm not accepted")
        key = await self._key(str(header.get("kid", "")))
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise unauthorized("token expired") from exc
        except jwt.PyJWTError as exc:
            raise unauthorized(f"invalid token: {exc}") from exc
        principal = Principal(
            user_id=claims["sub"],
            email=claims.get("email", ""),
            roles=frozenset(r for r in claims.get("roles", []) if r in ROLES),
            city_ids=frozenset(claims.get("cities", [])),
            token_version=int(claims.get("ver", 0)),
        )
        self._verified[token] = (principal, str(header.get("kid", "")), float(claims["exp"]))
        if len(self._verified) > VERIFIED_KEPT:
            self._verified.popitem(last=False)
        return principal

    async def _key(self, kid: str):
        if kid not in self._keys:
            # Every request with an unknown key id waits for the one fetch in flight (the first requests
            # after a start all do); a fetch is made at most every few seconds, so forged ids cannot
            # make the service hammer identity.
            async with self._lock:
                if kid not in self._keys and time.monotonic() - self._fetched_at > JWKS_MIN_REFRESH_SECONDS:
                    await self._fetch()
        if kid not in self._keys:
            raise unauthorized("unknown signing key")
        return self._keys[kid].key

    async def _fetch(self) -> None:
        try:
            async with httpx.AsyncClient(timeout=5) as client:
                response = await client.get(self.jwks_url)
                response.raise_for_status()
        except httpx.HTTPError as exc:
            log.warning("auth.jwks_unavailable", url=self.jwks_url, error=repr(exc))
            return
        finally:
            self._fetched_at = time.monotonic()
        keys = {}
        for jwk in response.json().get("keys", []):
            if jwk.get("alg") == ALGORITHM and jwk.get("kid"):
                keys[jwk["kid"]] = jwt.PyJWK(jwk, algorithm=ALGORITHM)
        self._keys = keys


_bearer = HTTPBearer(auto_error=False, description="An access token from POST /api/v1/auth/token")


async def current_principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise unauthorized("sign in: this needs an access token")
    principal = await request.app.state.runtime.verifier.verify(credentials.credentials)
    request.state.user_id = principal.user_id  # for the access log
    return principal


CurrentUser = Annotated[Principal, Depends(current_principal)]


def require_roles(*roles: str):
    """A dependency that lets through only callers holding one of `roles`."""

    async def check(user: CurrentUser) -> Principal:
        if not user.has_role(*roles):
            raise forbidden(f"this needs the role {' or '.join(roles)}", required_roles=list(roles))
        return user

    return Depends(check)
