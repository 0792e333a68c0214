"""A token's signature is checked once and the result kept: every later use still checks its expiry, its key and
revocations, and a token that failed is never kept."""

import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

from citypair_shared import auth
from citypair_shared.auth import ALGORITHM, TokenVerifier
from citypair_shared.problems import Problem

KID = "k1"


@pytest.fixture
def key():
    return Ed25519PrivateKey.generate()


@pytest.fixture
def verifier(key):
    verifier = TokenVerifier(jwks_url="http://127.0.0.1:9/jwks", issuer="citypair-identity", audience="citypair")
    jwk = json.loads(OKPAlgorithm.to_jwk(key.public_key())) | {"kid": KID, "alg": ALGORITHM}
    verifier._keys = {KID: jwt.PyJWK(jwk, algorithm=ALGORITHM)}  # as if fetched from the JWKS
    verifier._fetched_at = time.monotonic()
    return verifier


def token(key, *, minutes: float = 10, ver: int = 1, sub: str | None = None) -> str:
    now = datetime.now(UTC)
    claims = {"iss": "citypair-identity", "aud": "citypair", "sub": sub or str(uuid.uuid4()), "roles": ["observer"]}
    claims |= {"ver": ver, "iat": now, "exp": now + timedelta(minutes=minutes)}
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return jwt.encode(claims, pem, algorithm=ALGORITHM, headers={"kid": KID})


async def refused(verifier: TokenVerifier, bearer: str) -> str:
    with pytest.raises(Problem) as caught:
        await verifier.verify(bearer)
    assert caught.value.status == 401
    return caught.value.detail


async def test_a_checked_token_is_not_checked_again(verifier, key, monkeypatch):
    bearer = token(key)
    first = await verifier.verify(bearer)

    def no_second_check(*args, **kwargs):
        raise AssertionError("the signature was checked again")

    monkeypatch.setattr(auth.jwt, "decode", no_second_check)
    assert await verifier.verify(bearer) == first


async def test_a_kept_token_is_still_revoked_expired_or_refused_for_its_key(verifier, key, monkeypatch):
    revoked, expiring, rotated = token(key), token(key, minutes=1), token(key)
    for bearer in (revoked, expiring, rotated):
        await verifier.verify(bearer)
    user = (await verifier.verify(revoked)).user_id
    verifier.revoke(user, 2)
    assert await refused(verifier, revoked) == "token revoked"
    later = time.time() + 61
    monkeypatch.setattr(auth.time, "time", lambda: later)
    assert await refused(verifier, expiring) == "token expired"
    monkeypatch.undo()
    verifier._keys = {}  # the key is no longer published (and a fetch now finds none)
    assert await refused(verifier, rotated) == "unknown signing key"


async def test_a_refused_token_is_never_kept(verifier, key):
    forged = token(Ed25519PrivateKey.generate())  # signed by another key under the same key id
    for _ in range(2):
        assert (await refused(verifier, forged)).startswith("invalid token")
    assert forged not in verifier._verified


async def test_the_kept_tokens_are_bounded(verifier, key, monkeypatch):
    monkeypatch.setattr(auth, "VERIFIED_KEPT", 3)
    bearers = [token(key) for _ in range(5)]
    for bearer in bearers:
        await verifier.verify(bearer)
    assert list(verifier._verified) == bearers[2:]
