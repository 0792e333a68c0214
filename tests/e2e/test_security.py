"""The attack suite: who may call what, forged and revoked tokens, mass assignment, stale writes.

Every part is a real process (services, nats, Caddy); nothing here mocks the bus, a database or a
token check. Tokens are forged with the real signing key read from identity's database, which is
what an attacker who stole it, or who tries every trick short of it, would hold.
"""

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.support import PASSWORD, city_body, client_for, create_user, eventually, query, sign_in

ROLES = ("admin", "coordinator", "own_official", "other_official", "observer", "anonymous")
PROBLEM_JSON = "application/problem+json"


# --------------------------------------------------------------------------- the world the cases act on


@dataclass
class World:
    """Cities, clients and factories for fresh objects, so that no case's success leaks into another."""

    admin: httpx.Client
    coordinator: httpx.Client
    own: httpx.Client  # an official of `home` and of every `own_spares` city
    home: str
    away: str  # the city of the other official
    own_spares: list[str]
    partners: Iterator[str]
    sample_user_id: str
    # Officials of the partner cities: a member city confirms its membership before a proposal is submitted.
    partner_officials: dict[str, httpx.Client]
    make_official: Callable[..., httpx.Client]
    shared_draft: str | None = None

    def fresh_own_city(self) -> str:
        """A city the own official acts for that no other case touches."""
        return self.own_spares.pop()

    def round_id(self, published: bool = False) -> str:
        response = self.admin.post("/api/v1/rounds", json=_round(self))
        assert response.status_code == 201, response.text
        if published:
            assert self.admin.post(f"/api/v1/rounds/{response.json()['id']}/publish").status_code == 200
        return response.json()["id"]

    def fresh_partner(self) -> str:
        return next(self.partners, None) or register(self.admin, "Late partner", country_code="UZ")

    def fresh_user(self, roles: list[str], city_ids: list[str] = ()) -> str:
        return create_user(self.admin, roles, city_ids)["id"]

    def draft(self, official: httpx.Client, city_ids: list[str]) -> str:
        """Draft as soon as pilot_zones knows every member city (it learns them from profile events)."""
        body = {"title": f"pilot zone {uuid.uuid4().hex[:6]}", "city_ids": city_ids}
        response = eventually(
            lambda: (r := official.post("/api/v1/pilot-zones", json=body)).status_code == 201 and r,
            what=f"pilot_zones to know {city_ids}",
        )
        return response.json()["id"]

    def confirm(self, proposal: str, city: str) -> None:
        if city not in self.partner_officials:
            self.partner_officials[city] = self.make_official(city)
        confirmed = self.partner_officials[city].post(f"/api/v1/pilot-zones/{proposal}/members/{city}/confirm")
        assert confirmed.status_code == 200, confirmed.text

    def proposal_in(self, state: str) -> str:
        """A new proposal of `home` and a fresh partner (confirmed), moved to `state` by the people who may."""
        partner = self.fresh_partner()
        proposal = self.draft(self.own, [self.home, partner])
        self.confirm(proposal, partner)
        for step in PATH_TO[state]:
            actor = self.own if step in PROPOSER_MOVES else self.coordinator
            moved = actor.post(f"/api/v1/pilot-zones/{proposal}/transitions", json={"to": step})
            assert moved.status_code == 200, moved.text
        return proposal


PROPOSER_MOVES = {"submitted", "withdrawn"}
PATH_TO = {
    "draft": [],
    "submitted": ["submitted"],
    "under_review": ["submitted", "under_review"],
    "approved": ["submitted", "under_review", "approved"],
    "active": ["submitted", "under_review", "approved", "active"],
}
# Each move, from the state it starts in.
TRANSITIONS = {
    "submitted": "draft",
    "withdrawn": "draft",
    "under_review": "submitted",
    "approved": "under_review",
    "rejected": "under_review",
    "changes_requested": "under_review",
    "active": "approved",
    "completed": "active",
}
OWN_SPARES = 10  # PATCH-city cases, the ETag test and the mass-assignment test each take one
PARTNERS = 90  # pilot-zone cases take one or two each (more are registered if they run out)


def register(client: httpx.Client, name: str, **overrides) -> str:
    response = client.post("/api/v1/cities", json=city_body(f"{name} {uuid.uuid4().hex[:6]}", **overrides))
    assert response.status_code == 201, response.text
    return response.json()["id"]


@pytest.fixture(scope="module")
def observer(stack, admin):
    user = create_user(admin, ["observer"])
    with client_for(stack.config.gateway_url, user["email"]) as client:
        yield client


@pytest.fixture(scope="module")
def world(admin, coordinator, official_of, observer) -> World:
    home = register(admin, "Home")
    away = register(admin, "Away", country_code="KZ")
    spares = [register(admin, f"Spare {i}") for i in range(OWN_SPARES)]
    partners = [register(admin, f"Partner {i}", country_code="UZ") for i in range(PARTNERS)]
    sentinel = register(admin, "Sentinel")  # registered last: once known, every city before it is
    own = official_of(home, *spares)
    # One official per 50 partners (a user acts for at most 50 cities).
    partner_officials = {}
    for start in range(0, len(partners), 50):
        chunk = partners[start : start + 50]
        client = official_of(*chunk)
        partner_officials.update(dict.fromkeys(chunk, client))
    eventually(lambda: admin.get(f"/api/v1/cities/{home}/partners").status_code == 200, what="home in matching")
    world = World(
        admin=admin,
        coordinator=coordinator,
        own=own,
        home=home,
        away=away,
        own_spares=spares,
        partners=iter(partners),
        sample_user_id=observer.get("/api/v1/me").json()["id"],
        partner_officials=partner_officials,
        make_official=official_of,
    )
    # Cases post proposals straight away: pilot_zones must know every city first (profile events, in order).
    world.draft(own, [home, sentinel])
    return world


@pytest.fixture(scope="module")
def clients(stack, world, anonymous, observer, official_of) -> dict[str, httpx.Client]:
    return {
        "admin": world.admin,
        "coordinator": world.coordinator,
        "own_official": world.own,
        "other_official": official_of(world.away),
        "observer": observer,
        "anonymous": anonymous,
    }


# --------------------------------------------------------------------------- 1. the role × endpoint matrix


@dataclass(frozen=True)
class Case:
    name: str
    allowed: frozenset[str]
    call: Callable[[httpx.Client, World], httpx.Response]


SIGNED_IN = frozenset(ROLES) - {"anonymous"}
PROGRAMME = frozenset({"admin", "coordinator"})


def _transition(to: str) -> Callable[[httpx.Client, World], httpx.Response]:
    def call(client: httpx.Client, w: World) -> httpx.Response:
        proposal = w.proposal_in(TRANSITIONS[to])
        return client.post(f"/api/v1/pilot-zones/{proposal}/transitions", json={"to": to, "comment": "matrix"})

    return call


def _shared_draft(w: World) -> str:
    """One draft for the cases that read it or leave it a draft (so they need no fresh partner each)."""
    if w.shared_draft is None:
        w.shared_draft = w.proposal_in("draft")
    return w.shared_draft


def _escalate_self(client: httpx.Client, w: World) -> httpx.Response:
    me = client.get("/api/v1/me")
    user_id = me.json()["id"] if me.status_code == 200 else w.sample_user_id
    return client.patch(f"/api/v1/users/{user_id}", json={"roles": ["admin"]})


def _decide(client: httpx.Client, w: World) -> httpx.Response:
    """A decline on (home, a partner) — only home's official may decide it; never the other city's."""
    partner = w.fresh_partner()
    eventually(
        lambda: w.admin.get(f"/api/v1/matches/{w.home}/{partner}").status_code == 200, what="partner in matching"
    )
    return client.post(f"/api/v1/matches/{w.home}/{partner}/decision", json={"decision": "decline", "reason": "other"})


def _round(w: World) -> dict:
    return {"cities": {"city_ids": [w.home, w.away]}, "capacity": 1}


def _new_user_body() -> dict:
    return {"email": f"new-{uuid.uuid4().hex[:8]}@test.citypair", "password": PASSWORD, "roles": ["observer"]}


CASES = [
    # profiles
    Case("cities.create", frozenset({"admin", "coordinator"}), lambda c, w: c.post("/api/v1/cities", json=city_body())),
    Case("cities.list", SIGNED_IN, lambda c, w: c.get("/api/v1/cities")),
    Case("cities.get", SIGNED_IN, lambda c, w: c.get(f"/api/v1/cities/{w.home}")),
    Case(
        "cities.patch",
        frozenset({"admin", "coordinator", "own_official"}),
        lambda c, w: c.patch(f"/api/v1/cities/{w.fresh_own_city()}", json={"population": 1234}),
    ),
    # matching
    Case("partners.get", SIGNED_IN, lambda c, w: c.get(f"/api/v1/cities/{w.home}/partners")),
    Case("matches.get", SIGNED_IN, lambda c, w: c.get(f"/api/v1/matches/{w.home}/{w.away}")),
    Case("matches.decide", frozenset({"own_official"}), lambda c, w: _decide(c, w)),
    Case("rounds.create", frozenset({"admin", "coordinator"}), lambda c, w: c.post("/api/v1/rounds", json=_round(w))),
    Case("rounds.get", SIGNED_IN, lambda c, w: c.get(f"/api/v1/rounds/{w.round_id(published=True)}")),
    Case("rounds.get_draft", PROGRAMME, lambda c, w: c.get(f"/api/v1/rounds/{w.round_id()}")),
    Case("rounds.list", SIGNED_IN, lambda c, w: c.get("/api/v1/rounds")),
    Case("rounds.publish", PROGRAMME, lambda c, w: c.post(f"/api/v1/rounds/{w.round_id()}/publish")),
    Case("clusters.get", SIGNED_IN, lambda c, w: c.get("/api/v1/clusters", params={"size": 3})),
    # pilot_zones
    Case(
        "pilot_zones.create_with_own_city",
        frozenset({"own_official"}),
        lambda c, w: c.post("/api/v1/pilot-zones", json={"title": "own", "city_ids": [w.home, w.fresh_partner()]}),
    ),
    Case(
        "pilot_zones.create_with_away_city",
        frozenset({"other_official"}),
        lambda c, w: c.post("/api/v1/pilot-zones", json={"title": "away", "city_ids": [w.away, w.fresh_partner()]}),
    ),
    Case(
        "pilot_zones.create_with_nobodys_city",
        frozenset(),
        lambda c, w: c.post(
            "/api/v1/pilot-zones", json={"title": "none", "city_ids": [w.fresh_partner(), w.fresh_partner()]}
        ),
    ),
    Case("pilot_zones.list", SIGNED_IN, lambda c, w: c.get("/api/v1/pilot-zones")),
    Case("pilot_zones.get", SIGNED_IN, lambda c, w: c.get(f"/api/v1/pilot-zones/{w.proposal_in('draft')}")),
    Case(
        "pilot_zones.patch_draft",
        frozenset({"own_official"}),
        lambda c, w: c.patch(f"/api/v1/pilot-zones/{_shared_draft(w)}", json={"objectives": ["matrix"]}),
    ),
    Case(
        "pilot_zones.confirm_own_city",
        frozenset({"own_official"}),
        lambda c, w: c.post(f"/api/v1/pilot-zones/{_shared_draft(w)}/members/{w.home}/confirm"),
    ),
    Case(
        "pilot_zones.assign",
        frozenset({"admin", "coordinator"}),
        lambda c, w: c.post(
            f"/api/v1/pilot-zones/{_shared_draft(w)}/assign",
            json={"coordinator_id": w.coordinator.get("/api/v1/me").json()["id"]},
        ),
    ),
    Case("pilot_zones.timeline", SIGNED_IN, lambda c, w: c.get(f"/api/v1/pilot-zones/{_shared_draft(w)}/timeline")),
    Case(
        "pilot_zones.comments.list", SIGNED_IN, lambda c, w: c.get(f"/api/v1/pilot-zones/{_shared_draft(w)}/comments")
    ),
    Case(
        "pilot_zones.comments.create",
        frozenset({"coordinator", "own_official"}),
        lambda c, w: c.post(f"/api/v1/pilot-zones/{_shared_draft(w)}/comments", json={"body": "matrix"}),
    ),
    Case(
        "pilot_zones.comments.create_private_note",
        frozenset({"coordinator"}),
        lambda c, w: c.post(f"/api/v1/pilot-zones/{_shared_draft(w)}/comments", json={"body": "note", "private": True}),
    ),
    Case("pilot_zones.board", SIGNED_IN, lambda c, w: c.get("/api/v1/pilot-zones/board")),
    Case(
        "pilot_zones.export",
        frozenset({"admin", "coordinator", "own_official", "other_official"}),
        lambda c, w: c.get("/api/v1/pilot-zones/export", params={"format": "json"}),
    ),
    Case(
        "pilot_zones.stale_sweep",
        frozenset({"admin", "coordinator"}),
        lambda c, w: c.post("/api/v1/pilot-zones/stale-sweep"),
    ),
    Case("pilot_zones.open_data", frozenset(ROLES), lambda c, w: c.get("/api/v1/open-data/pilot-zones")),
    *(
        Case(
            f"pilot_zones.transition.{to}",
            frozenset({"own_official"} if to in PROPOSER_MOVES else {"coordinator"}),
            _transition(to),
        )
        for to in TRANSITIONS
    ),
    # identity
    Case("me.get", SIGNED_IN, lambda c, w: c.get("/api/v1/me")),
    Case("users.list", frozenset({"admin", "coordinator"}), lambda c, w: c.get("/api/v1/users")),
    Case("users.get", frozenset({"admin", "coordinator"}), lambda c, w: c.get(f"/api/v1/users/{w.sample_user_id}")),
    Case("users.create", frozenset({"admin"}), lambda c, w: c.post("/api/v1/users", json=_new_user_body())),
    Case(
        "users.patch_cities_of_official",
        frozenset({"admin", "coordinator"}),
        lambda c, w: c.patch(f"/api/v1/users/{w.fresh_user(['official'])}", json={"city_ids": [w.away]}),
    ),
    Case(
        "users.patch_cities_of_observer",
        frozenset({"admin"}),
        lambda c, w: c.patch(f"/api/v1/users/{w.fresh_user(['observer'])}", json={"city_ids": [w.away]}),
    ),
    Case(
        "users.patch_roles",
        frozenset({"admin"}),
        lambda c, w: c.patch(f"/api/v1/users/{w.fresh_user(['official'])}", json={"roles": ["coordinator"]}),
    ),
    Case(
        "users.patch_disabled",
        frozenset({"admin"}),
        lambda c, w: c.patch(f"/api/v1/users/{w.fresh_user(['observer'])}", json={"disabled": True}),
    ),
    Case("users.escalate_self", frozenset(), _escalate_self),
    Case("audit.list", frozenset({"admin"}), lambda c, w: c.get("/api/v1/audit")),
    # Last: from here on, new tokens carry the new key id.
    Case("keys.rotate", frozenset({"admin"}), lambda c, w: c.post("/api/v1/auth/keys/rotate")),
]
MATRIX = [(case, role) for case in CASES for role in ROLES]
OUTCOMES: list[tuple[str, str, int, bool]] = []


@pytest.mark.parametrize(("case", "role"), MATRIX, ids=[f"{c.name}-{r}" for c, r in MATRIX])
def test_access_matrix(case: Case, role: str, clients, world):
    response = case.call(clients[role], world)
    allowed = role in case.allowed
    OUTCOMES.append((case.name, role, response.status_code, allowed))
    if allowed:
        assert 200 <= response.status_code < 300, response.text
        return
    expected = 401 if role == "anonymous" else 403
    assert response.status_code == expected, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    if expected == 401:
        assert response.headers["www-authenticate"] == "Bearer"


def test_matrix_counts_no_unauthorized_success():
    if len(OUTCOMES) != len(MATRIX):
        pytest.skip("the count needs the whole matrix")
    breaches = [o for o in OUTCOMES if not o[3] and 200 <= o[2] < 300]
    assert breaches == [], f"{len(breaches)} unauthorized successes"
    denied = sum(1 for o in OUTCOMES if not o[3])
    assert denied > 100  # the matrix is mostly refusals: make sure they were all asked


# --------------------------------------------------------------------------- 2. tokens: forged, expired, replayed


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _compact(header: dict, claims: dict, sign: Callable[[bytes], bytes]) -> str:
    """A JWS built by hand, for algorithms no honest library will sign with."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{_b64(sign(signing_input.encode()))}"


DROP = object()


@dataclass
class Forge:
    """The real signing key (read from identity's database) and a real user's claims."""

    kid: str
    private_pem: str
    claims: dict
    real_token: str

    @property
    def public_pem(self) -> bytes:
        private = serialization.load_pem_private_key(self.private_pem.encode(), password=None)
        return private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @property
    def public_raw(self) -> bytes:
        private = serialization.load_pem_private_key(self.private_pem.encode(), password=None)
        return private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    def fresh_claims(self, **changes) -> dict:
        now = int(time.time())
        claims = {**self.claims, "iat": now, "exp": now + 300, "jti": uuid.uuid4().hex, **changes}
        return {k: v for k, v in claims.items() if v is not DROP}

    def sign(self, claims: dict | None = None, *, key=None, kid: str | None = None) -> str:
        headers = {"kid": self.kid if kid is None else kid}
        return jwt.encode(claims or self.fresh_claims(), key or self.private_pem, algorithm="EdDSA", headers=headers)


@pytest.fixture(scope="module")
def forge(stack, observer) -> Forge:
    [(kid, private_pem)] = query(
        stack.config.database_url("identity"), "SELECT kid, private_pem FROM signing_key WHERE retired_at IS NULL"
    )
    real_token = observer.headers["authorization"].removeprefix("Bearer ")
    claims = jwt.decode(real_token, options={"verify_signature": False})
    return Forge(kid=kid, private_pem=private_pem, claims=claims, real_token=real_token)


def _edited_payload(token: str, **changes) -> str:
    header, payload, signature = token.split(".")
    claims = {**json.loads(base64.urlsafe_b64decode(payload + "==")), **changes}
    return f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"


def _now() -> int:
    return int(time.time())


BAD_TOKENS: dict[str, Callable[[Forge], str | None]] = {
    "no-token": lambda f: None,
    "garbage": lambda f: "Bearer not-a-jwt",
    "bearer-without-token": lambda f: "Bearer",
    "basic-scheme": lambda f: "Basic " + f.sign(),
    "expired": lambda f: "Bearer " + f.sign(f.fresh_claims(iat=_now() - 700, exp=_now() - 60)),
    "not-yet-valid": lambda f: "Bearer " + f.sign(f.fresh_claims(nbf=_now() + 600)),
    "wrong-audience": lambda f: "Bearer " + f.sign(f.fresh_claims(aud="another-system")),
    "wrong-issuer": lambda f: "Bearer " + f.sign(f.fresh_claims(iss="https://evil.example")),
    "missing-exp": lambda f: "Bearer " + f.sign(f.fresh_claims(exp=DROP)),
    "missing-sub": lambda f: "Bearer " + f.sign(f.fresh_claims(sub=DROP)),
    "unknown-kid": lambda f: "Bearer " + f.sign(kid="no-such-key"),
    "no-kid": lambda f: "Bearer " + jwt.encode(f.fresh_claims(), f.private_pem, algorithm="EdDSA"),
    "alg-none": lambda f: "Bearer " + _compact({"alg": "none", "kid": f.kid}, f.fresh_claims(), lambda m: b""),
    "hs256-keyed-with-public-pem": lambda f: (
        "Bearer "
        + _compact(
            {"alg": "HS256", "kid": f.kid},
            f.fresh_claims(),
            lambda m: hmac.new(f.public_pem, m, hashlib.sha256).digest(),
        )
    ),
    "hs256-keyed-with-public-raw": lambda f: (
        "Bearer "
        + _compact(
            {"alg": "HS256", "kid": f.kid},
            f.fresh_claims(),
            lambda m: hmac.new(f.public_raw, m, hashlib.sha256).digest(),
        )
    ),
    "other-ed25519-key-with-real-kid": lambda f: "Bearer " + f.sign(key=Ed25519PrivateKey.generate()),
    "real-token-payload-edited-to-admin": lambda f: "Bearer " + _edited_payload(f.real_token, roles=["admin"]),
}
# A protected endpoint of each service (matching's needs a city it knows: filled in with `home`).
PROTECTED = {
    "profiles": "/api/v1/cities",
    "matching": "/api/v1/cities/{home}/partners",
    "pilot_zones": "/api/v1/pilot-zones",
    "identity": "/api/v1/me",
}
TARGETS = [(via, service) for service in PROTECTED for via in ("gateway", "direct")]


def _url(stack, world: World, via: str, service: str) -> str:
    base = stack.config.gateway_url if via == "gateway" else stack.config.service_url(service)
    return base + PROTECTED[service].format(home=world.home)


def _status(stack, world: World, via: str, service: str, authorization: str | None) -> httpx.Response:
    headers = {"Authorization": authorization} if authorization is not None else {}
    return httpx.get(_url(stack, world, via, service), headers=headers, timeout=30)


@pytest.mark.parametrize(("via", "service"), TARGETS, ids=[f"{v}-{s}" for v, s in TARGETS])
def test_a_token_forged_with_the_real_key_is_accepted(stack, world, forge, via, service):
    """The control: the forge makes tokens the services accept, so the refusals below are about the defect."""
    # After keys.rotate a service may have fetched the JWKS moments ago, and refetches at most every 5 s.
    eventually(
        lambda: _status(stack, world, via, service, "Bearer " + forge.sign()).status_code == 200,
        timeout=8,
        what=f"{via} {service} to accept a well-formed token",
    )


@pytest.mark.parametrize("kind", BAD_TOKENS)
@pytest.mark.parametrize(("via", "service"), TARGETS, ids=[f"{v}-{s}" for v, s in TARGETS])
def test_bad_token_is_401_everywhere(stack, world, forge, via, service, kind):
    response = _status(stack, world, via, service, BAD_TOKENS[kind](forge))
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.headers["www-authenticate"] == "Bearer"


def _refresh(stack, token: str) -> httpx.Response:
    return httpx.post(stack.config.gateway_url + "/api/v1/auth/refresh", json={"refresh_token": token}, timeout=30)


def test_a_refresh_token_used_twice_revokes_its_whole_family(stack, world):
    user = create_user(world.admin, ["observer"])
    first = sign_in(stack.config.gateway_url, user["email"], PASSWORD).json()
    rotated = _refresh(stack, first["refresh_token"])
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["refresh_token"] != first["refresh_token"]

    replayed = _refresh(stack, first["refresh_token"])
    assert replayed.status_code == 401
    assert replayed.headers["content-type"] == PROBLEM_JSON
    assert _refresh(stack, rotated.json()["refresh_token"]).status_code == 401, "the family is revoked"
    reused = world.admin.get("/api/v1/audit", params={"action": "refresh.reused", "limit": 100}).json()["items"]
    assert user["id"] in [e["actor_id"] for e in reused]


def test_a_refresh_token_is_dead_after_logout(stack, world):
    email = create_user(world.admin, ["observer"])["email"]
    tokens = sign_in(stack.config.gateway_url, email, PASSWORD).json()
    logout = httpx.post(
        stack.config.gateway_url + "/api/v1/auth/logout", json={"refresh_token": tokens["refresh_token"]}, timeout=30
    )
    assert logout.status_code == 204
    assert _refresh(stack, tokens["refresh_token"]).status_code == 401
    assert _refresh(stack, "never-issued").status_code == 401


def _refused_everywhere(stack, world: World, token: str) -> bool:
    return all(_status(stack, world, v, s, f"Bearer {token}").status_code == 401 for v, s in TARGETS)


def _accepted_everywhere(stack, world: World, token: str) -> bool:
    return all(_status(stack, world, v, s, f"Bearer {token}").status_code == 200 for v, s in TARGETS)


def test_a_disabled_users_tokens_are_refused_by_every_service(stack, world):
    user = create_user(world.admin, ["official"], [world.home])
    tokens = sign_in(stack.config.gateway_url, user["email"], PASSWORD).json()
    assert eventually(lambda: _accepted_everywhere(stack, world, tokens["access_token"]), what="the token to work")

    disabled = world.admin.patch(f"/api/v1/users/{user['id']}", json={"disabled": True})
    assert disabled.status_code == 200 and disabled.json()["disabled"] is True

    # Revocation travels by event (identity.user.tokens_revoked.v1): each service learns it on its own.
    eventually(lambda: _refused_everywhere(stack, world, tokens["access_token"]), what="every service to refuse")
    assert _refused_everywhere(stack, world, tokens["access_token"]), "and it stays refused"
    assert sign_in(stack.config.gateway_url, user["email"], PASSWORD).status_code == 401
    assert _refresh(stack, tokens["refresh_token"]).status_code == 401


@pytest.mark.parametrize(
    ("actor", "roles", "city_ids", "change"),
    [
        ("admin", ["observer"], [], {"roles": ["official"]}),
        ("coordinator", ["official"], ["home"], {"city_ids": ["away"]}),
    ],
    ids=["admin-changes-roles", "coordinator-changes-cities"],
)
def test_a_token_from_before_a_role_or_city_change_is_refused(stack, world, actor, roles, city_ids, change):
    names = {"home": world.home, "away": world.away}
    user = create_user(world.admin, roles, [names[c] for c in city_ids])
    before = sign_in(stack.config.gateway_url, user["email"], PASSWORD).json()["access_token"]
    assert eventually(lambda: _accepted_everywhere(stack, world, before), what="the token to work")

    body = {k: [names.get(v, v) for v in vs] for k, vs in change.items()}
    changed = getattr(world, actor).patch(f"/api/v1/users/{user['id']}", json=body)
    assert changed.status_code == 200, changed.text

    eventually(lambda: _refused_everywhere(stack, world, before), what="every service to refuse the old token")
    after = sign_in(stack.config.gateway_url, user["email"], PASSWORD).json()["access_token"]
    claims = jwt.decode(after, options={"verify_signature": False})
    assert claims["ver"] > jwt.decode(before, options={"verify_signature": False})["ver"]
    assert eventually(lambda: _accepted_everywhere(stack, world, after), what="the new token to work")


# --------------------------------------------------------------------------- 3. mass assignment


def _assert_names_field(response: httpx.Response, field_name: str) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert [e["field"] for e in response.json()["errors"]] == [field_name], response.json()


def _total(client: httpx.Client, path: str) -> int:
    response = client.get(path, params={"limit": 1})
    assert response.status_code == 200, response.text
    return response.json()["total"]


@pytest.mark.parametrize(
    ("field_name", "value"),
    [("id", "chosen-by-me"), ("status", "retired"), ("verified", True), ("version", 99), ("role", "admin")],
)
def test_creating_a_city_refuses_fields_the_server_owns(world, field_name, value):
    before = _total(world.admin, "/api/v1/cities")
    response = world.coordinator.post("/api/v1/cities", json={**city_body("Mass"), field_name: value})
    _assert_names_field(response, field_name)
    assert _total(world.admin, "/api/v1/cities") == before
    assert world.admin.get("/api/v1/cities/chosen-by-me").status_code == 404


@pytest.fixture(scope="module")
def mass_city(world) -> str:
    return world.fresh_own_city()


@pytest.mark.parametrize(
    ("field_name", "value"),
    [("country_code", "KZ"), ("status", "retired"), ("id", "chosen-by-me"), ("version", 99), ("created_at", "2000")],
)
def test_updating_a_city_refuses_fields_outside_the_update(world, mass_city, field_name, value):
    before = world.own.get(f"/api/v1/cities/{mass_city}")
    response = world.own.patch(f"/api/v1/cities/{mass_city}", json={"population": 1, field_name: value})
    _assert_names_field(response, field_name)
    after = world.own.get(f"/api/v1/cities/{mass_city}")
    assert after.json() == before.json()
    assert after.headers["etag"] == before.headers["etag"]


@pytest.mark.parametrize(
    ("field_name", "value"),
    [("disabled", True), ("token_version", 99), ("id", "chosen-by-me"), ("password_hash", "x")],
)
def test_creating_a_user_refuses_fields_the_server_owns(world, field_name, value):
    before = _total(world.admin, "/api/v1/users")
    response = world.admin.post("/api/v1/users", json={**_new_user_body(), field_name: value})
    _assert_names_field(response, field_name)
    assert _total(world.admin, "/api/v1/users") == before


@pytest.fixture(scope="module")
def mass_user(stack, world):
    """A user who signs in once, so that a token-version bump would show as a refused token."""
    user = create_user(world.admin, ["official"], [world.home])
    with client_for(stack.config.gateway_url, user["email"]) as client:
        yield user, client


@pytest.mark.parametrize(
    ("field_name", "value"),
    [("email", "taken-over@test.citypair"), ("password_hash", "x"), ("token_version", 0), ("id", "chosen-by-me")],
)
def test_updating_a_user_refuses_fields_outside_the_update(world, mass_user, field_name, value):
    user, client = mass_user
    before = world.admin.get(f"/api/v1/users/{user['id']}").json()
    # A valid change next to the forbidden field: the whole request is refused, not half applied.
    response = world.admin.patch(f"/api/v1/users/{user['id']}", json={"city_ids": [world.away], field_name: value})
    _assert_names_field(response, field_name)
    assert world.admin.get(f"/api/v1/users/{user['id']}").json() == before
    assert client.get("/api/v1/me").status_code == 200, "the user's token version did not move"


@pytest.mark.parametrize(
    ("field_name", "value"),
    [("status", "approved"), ("id", "chosen-by-me"), ("version", 9), ("transitions", [])],
)
def test_drafting_a_pilot_zone_refuses_fields_the_workflow_owns(world, field_name, value):
    partner = world.fresh_partner()
    before = _total(world.admin, "/api/v1/pilot-zones")
    body = {"title": "mass", "city_ids": [world.home, partner], field_name: value}
    _assert_names_field(world.own.post("/api/v1/pilot-zones", json=body), field_name)
    assert _total(world.admin, "/api/v1/pilot-zones") == before


def test_a_transition_refuses_a_chosen_actor(world):
    proposal = world.proposal_in("draft")
    body = {"to": "submitted", "actor_id": world.sample_user_id}
    _assert_names_field(world.own.post(f"/api/v1/pilot-zones/{proposal}/transitions", json=body), "actor_id")
    assert world.own.get(f"/api/v1/pilot-zones/{proposal}").json()["status"] == "draft"


# --------------------------------------------------------------------------- 5. optimistic concurrency


def test_an_official_edits_their_city_and_a_stale_if_match_is_412(world, clients):
    city = world.fresh_own_city()
    read = world.own.get(f"/api/v1/cities/{city}")
    etag = read.headers["etag"]

    edited = world.own.patch(f"/api/v1/cities/{city}", json={"population": 4242}, headers={"If-Match": etag})
    assert edited.status_code == 200, edited.text
    assert edited.headers["etag"] != etag
    assert edited.headers["etag"] == f'"{read.json()["version"] + 1}"'

    stale = world.own.patch(f"/api/v1/cities/{city}", json={"population": 1}, headers={"If-Match": etag})
    assert stale.status_code == 412, stale.text
    assert stale.headers["content-type"] == PROBLEM_JSON
    assert stale.json()["current_version"] == read.json()["version"] + 1

    fresh_etag = edited.headers["etag"]
    other = clients["other_official"].patch(
        f"/api/v1/cities/{city}", json={"population": 2}, headers={"If-Match": fresh_etag}
    )
    assert other.status_code == 403, "a current ETag is no licence to edit another city"

    now = world.own.get(f"/api/v1/cities/{city}")
    assert now.json()["population"] == 4242
    assert now.headers["etag"] == fresh_etag


# --------------------------------------------------------------------------- last: a restart forgets nothing


def test_a_restarted_service_still_refuses_a_revoked_token(stack, world):
    """Revocations live in memory; a restarted service must replay them before it takes requests."""
    user = create_user(world.admin, ["observer"])
    token = sign_in(stack.config.gateway_url, user["email"], PASSWORD).json()["access_token"]
    assert eventually(lambda: _status(stack, world, "direct", "profiles", f"Bearer {token}").status_code == 200)
    assert world.admin.patch(f"/api/v1/users/{user['id']}", json={"disabled": True}).status_code == 200
    eventually(lambda: _status(stack, world, "direct", "profiles", f"Bearer {token}").status_code == 401)

    stack.stop_part("profiles")
    stack.start_service("profiles")
    stack.wait_ready(names=["profiles"])
    assert _status(stack, world, "direct", "profiles", f"Bearer {token}").status_code == 401
