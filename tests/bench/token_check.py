"""What the token check costs per request (a script, not a test).

    .venv/bin/python tests/bench/token_check.py [--requests N] [--json]

Two identical routes on one FastAPI app built with citypair's shared app factory, one with the
shared `CurrentUser` dependency (EdDSA signature, expiry, issuer, audience, roles, revocation),
one without; both called in the same run through the ASGI stack, interleaved, with a real token
signed by a fresh Ed25519 key. Prints p50/p95 of each, the difference (the check's cost per
request) and the bare `TokenVerifier.verify` time, of the token the requests send (its signature checked once,
then kept) and of tokens not seen before. Target: the check adds ≤ 0.3 ms p50.
"""

import argparse
import asyncio
import json
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import APIRouter
from jwt.algorithms import OKPAlgorithm

from citypair_shared.app import build_app
from citypair_shared.auth import ALGORITHM, CurrentUser
from citypair_shared.runtime import Runtime
from citypair_shared.settings import ServiceSettings

TARGET_MS = 0.3


def signed_token(private_key, kid: str) -> str:
    now = datetime.now(UTC)
    claims = {
        "iss": "citypair-identity",
        "aud": "citypair",
        "sub": str(uuid.uuid4()),
        "roles": ["official"],
        "cities": ["c1"],
        "ver": 1,
        "iat": now,
        "exp": now + timedelta(minutes=10),
    }
    pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return jwt.encode(claims, pem, algorithm=ALGORITHM, headers={"kid": kid})


def percentile(samples: list[float], q: float) -> float:
    return statistics.quantiles(samples, n=100)[int(q) - 1]


async def main(requests: int) -> dict:
    private_key, kid = Ed25519PrivateKey.generate(), "bench"
    jwk = json.loads(OKPAlgorithm.to_jwk(private_key.public_key())) | {"kid": kid, "alg": ALGORITHM}
    router = APIRouter()

    @router.get("/open")
    async def open_route() -> dict:
        return {"ok": True}

    @router.get("/checked")
    async def checked_route(user: CurrentUser) -> dict:
        return {"ok": True}

    settings = ServiceSettings(service_name="bench", log_level="WARNING")
    runtime = Runtime(settings)
    app = build_app(title="bench", runtime=runtime, routers=[router])
    runtime.verifier._keys = {kid: jwt.PyJWK(jwk, algorithm=ALGORITHM)}  # as if fetched from the JWKS
    runtime.verifier._fetched_at = time.monotonic()
    token = signed_token(private_key, kid)
    headers = {"Authorization": f"Bearer {token}"}
    timings: dict[str, list[float]] = {"open": [], "checked": []}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as client:
        for i in range(requests + 200):
            for name in ("open", "checked") if i % 2 else ("checked", "open"):
                start = time.perf_counter()
                response = await client.get(f"/{name}", headers=headers)
                elapsed = (time.perf_counter() - start) * 1000
                assert response.status_code == 200, response.text
                if i >= 200:
                    timings[name].append(elapsed)
    verify, verify_new = [], []
    for _ in range(requests):
        start = time.perf_counter()
        await runtime.verifier.verify(token)
        verify.append((time.perf_counter() - start) * 1000)
    for new in [signed_token(private_key, kid) for _ in range(min(requests, 1000))]:  # a token not seen before
        start = time.perf_counter()
        await runtime.verifier.verify(new)
        verify_new.append((time.perf_counter() - start) * 1000)
    result = {name: {"p50": statistics.median(t), "p95": percentile(t, 95)} for name, t in timings.items()}
    result["added_p50_ms"] = result["checked"]["p50"] - result["open"]["p50"]
    result["ratio_p50"] = result["checked"]["p50"] / result["open"]["p50"]
    result["verify_p50_ms"] = statistics.median(verify)
    result["verify_new_token_p50_ms"] = statistics.median(verify_new)
    result["target_met"] = result["added_p50_ms"] <= TARGET_MS
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures = asyncio.run(main(args.requests))
    if args.json:
        print(json.dumps(figures))
    else:
        print(f"token check, {args.requests} requests each (interleaved, in-process ASGI)")
        print(f"  without check  p50 {figures['open']['p50']:.3f} ms   p95 {figures['open']['p95']:.3f} ms")
        print(f"  with check     p50 {figures['checked']['p50']:.3f} ms   p95 {figures['checked']['p95']:.3f} ms")
        print(
            f"  added by the check: p50 {figures['added_p50_ms']:.3f} ms (ratio {figures['ratio_p50']:.2f}x); "
            f"TokenVerifier.verify alone p50 {figures['verify_p50_ms']:.3f} ms "
            f"(a token not seen before: {figures['verify_new_token_p50_ms']:.3f} ms, its signature checked)"
        )
        print(f"  target ≤ {TARGET_MS} ms p50: {'MET' if figures['target_met'] else 'NOT MET'}")
