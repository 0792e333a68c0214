"""Accounts through the gateway: a user changes their password (the current one required), which ends their
sessions elsewhere; a new user's password takes the policy (NIST SP 800-63B) too."""

import httpx

from tests.support import PASSWORD, create_user, eventually, sign_in

NEW_PASSWORD = "a new pass phrase for the silk road"


def change(client: httpx.Client, current: str, new: str) -> httpx.Response:
    return client.post("/api/v1/me/password", json={"current_password": current, "new_password": new})


def fields(response: httpx.Response) -> list[str]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return [error["field"] for error in response.json()["errors"]]


def signed_in(base_url: str, email: str, password: str = PASSWORD) -> tuple[httpx.Client, str]:
    tokens = sign_in(base_url, email, password)
    assert tokens.status_code == 200, tokens.text
    bearer = {"Authorization": f"Bearer {tokens.json()['access_token']}"}
    return httpx.Client(base_url=base_url, timeout=30, headers=bearer), tokens.json()["refresh_token"]


def test_a_password_change_needs_the_current_one_and_ends_every_other_session(stack, admin):
    gateway = stack.config.gateway_url
    user = create_user(admin, ["observer"])
    here, _ = signed_in(gateway, user["email"])
    elsewhere, elsewhere_refresh = signed_in(gateway, user["email"])

    assert fields(change(here, "not my password at all", NEW_PASSWORD)) == ["current_password"]
    assert fields(change(here, PASSWORD, "q1w2e3r4t5y6")) == ["new_password"]  # a common one
    assert fields(change(here, PASSWORD, f"{user['email']} is mine")) == ["new_password"]
    assert sign_in(gateway, user["email"], PASSWORD).status_code == 200  # nothing changed so far

    changed = change(here, PASSWORD, NEW_PASSWORD)
    assert changed.status_code == 200, changed.text
    assert sign_in(gateway, user["email"], PASSWORD).status_code == 401
    assert sign_in(gateway, user["email"], NEW_PASSWORD).status_code == 200
    # This session goes on with the tokens returned; the other one's tokens are void.
    here.headers["Authorization"] = f"Bearer {changed.json()['access_token']}"
    assert here.get("/api/v1/me").status_code == 200
    assert httpx.post(f"{gateway}/api/v1/auth/refresh", json={"refresh_token": elsewhere_refresh}).status_code == 401
    eventually(lambda: elsewhere.get("/api/v1/cities").status_code == 401, what="profiles to void the old token")
    audit = admin.get("/api/v1/audit", params={"action": "password.changed"}).json()["items"]
    assert [entry["subject"] for entry in audit if entry["subject"] == user["id"]] == [user["id"]]


def test_guessing_the_current_password_is_throttled_like_a_sign_in(stack, admin):
    user = create_user(admin, ["observer"])
    client, _ = signed_in(stack.config.gateway_url, user["email"])
    statuses = [change(client, f"guess number {i:03}", NEW_PASSWORD).status_code for i in range(40)]
    assert 429 in statuses, statuses
    assert statuses[0] == 422


def test_an_admin_cannot_give_a_new_user_a_common_password(admin):
    body = {"email": "new.official@xian.gov.cn", "password": "1qaz2wsx3edc", "roles": ["official"]}
    assert fields(admin.post("/api/v1/users", json=body)) == ["password"]
