"""Ed25519 signing keys and the JWKS that publishes their public halves."""

import json
import uuid
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm
from sqlalchemy import Select, select

from citypair_identity.models import SigningKey
from citypair_shared.auth import ALGORITHM


def new_signing_key() -> SigningKey:
    private = Ed25519PrivateKey.generate()
    kid = uuid.uuid4().hex
    jwk = json.loads(OKPAlgorithm.to_jwk(private.public_key()))
    jwk.update({"kid": kid, "alg": ALGORITHM, "use": "sig"})
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return SigningKey(kid=kid, private_pem=pem.decode(), public_jwk=jwk, created_at=datetime.now(UTC))


def published(keys: list[SigningKey], *, token_lifetime: timedelta) -> list[dict]:
    """Keys a token may still be signed with: unretired, or retired less than a token lifetime ago."""
    now = datetime.now(UTC)
    return [k.public_jwk for k in keys if k.retired_at is None or k.retired_at > now - token_lifetime]


def current_key() -> Select:
    """The key that signs: the newest one not retired (read at each signing, so a key made or rotated by
    another replica signs here too)."""
    active = select(SigningKey).where(SigningKey.retired_at.is_(None))
    return active.order_by(SigningKey.created_at.desc(), SigningKey.kid.desc()).limit(1)
