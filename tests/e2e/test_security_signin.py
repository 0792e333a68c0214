"""The outside attacks on sign-in of issue 13, kept in the suite, on a stack with the default throttle policy.

Each client binds a loopback address of its own (127.0.0.2, 127.0.0.3, …; the gateway listens on 127.0.0.1,
which all of them reach), so each is a different client address, through the gateway as from outside:
- web sign-ins shared web's address, so bad ones from one browser locked every browser out;
- wrong passwords from a few addresses locked an account, its owner (and the predictable admin) too.
"""

import re
import uuid
from contextlib import contextmanager

import httpx
import pytest

from tests.e2e.conftest import start_stack
from tests.support import ADMIN_EMAIL, ADMIN_PASSWORD, PASSWORD, create_user

ADDRESS_ATTEMPTS, ACCOUNT_FAILURES, ACCOUNT_WIDE_FAILURES = 30, 5, 20  # identity's defaults
FIRST_WAIT = 10  # not the default 1 s: longer than a password check takes on a busy machine
GUESS = "a-guessed-password"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    stack = start_stack(
        tmp_path_factory.mktemp("signin-attack"), CITYPAIR_IDENTITY_SIGNIN_FIRST_WAIT_SECONDS=str(FIRST_WAIT)
    )
    yield stack
    stack.stop()


@contextmanager
def client_at(stack, address: str, **kwargs):
    """A browser or API client whose connections come from `address`."""
    transport = httpx.HTTPTransport(local_address=address)
    with httpx.Client(base_url=stack.config.gateway_url, transport=transport, timeout=30, **kwargs) as client:
        yield client


def api_sign_in(client: httpx.Client, email: str, password: str, **headers: str) -> int:
    data = {"username": email, "password": password}
    return client.post("/api/v1/auth/token", data=data, headers=headers).status_code


def web_sign_in(browser: httpx.Client, email: str, password: str, **headers: str) -> int:
    """The sign-in form, as a browser fills it in (its CSRF token comes with the page)."""
    page = browser.get("/", headers=headers)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    data = {"email": email, "password": password, "csrf": csrf}
    return browser.post("/sign-in", data=data, headers=headers).status_code


def audited_addresses(admin: httpx.Client, action: str, subjects: set[str]) -> set[str]:
    page = admin.get("/api/v1/audit", params={"action": action, "limit": 100})
    assert page.status_code == 200, page.text
    return {e["address"] for e in page.json()["items"] if e["subject"] in subjects}


def guesses(count: int) -> list[str]:
    run = uuid.uuid4().hex[:8]
    return [f"guess-{run}-{i}@test.citypair" for i in range(count)]


def test_bad_web_sign_ins_throttle_their_own_browser_only(stack, admin):
    emails = guesses(40)  # password spraying: each account is tried once, so only the address limit applies
    with client_at(stack, "127.0.0.2") as attacker:
        statuses = [web_sign_in(attacker, email, GUESS) for email in emails]
    assert statuses == [401] * ADDRESS_ATTEMPTS + [429] * (40 - ADDRESS_ATTEMPTS)

    user = create_user(admin, ["observer"])
    with client_at(stack, "127.0.0.3") as browser:
        assert web_sign_in(browser, user["email"], PASSWORD) == 303  # signed in, sent on to the dashboard
        assert user["email"] in browser.get("/").text
    # Identity saw each browser's address, not web's.
    assert audited_addresses(admin, "signin.failed", set(emails)) == {"127.0.0.2"}
    assert audited_addresses(admin, "signin.throttled", set(emails)) == {"127.0.0.2"}
    assert audited_addresses(admin, "signin.succeeded", {user["email"]}) == {"127.0.0.3"}


def test_a_client_cannot_make_up_its_address(stack, admin):
    made_up = {"X-Forwarded-For": "203.0.113.7", "X-Real-IP": "203.0.113.7", "Forwarded": "for=203.0.113.7"}
    through_api, through_web = guesses(2)
    with client_at(stack, "127.0.0.5") as client:
        assert api_sign_in(client, through_api, GUESS, **made_up) == 401
        assert web_sign_in(client, through_web, GUESS, **made_up) == 401
    assert audited_addresses(admin, "signin.failed", {through_api, through_web}) == {"127.0.0.5"}


def test_wrong_passwords_from_five_addresses_do_not_lock_the_owner_out(stack):
    """Five wrong passwords from five addresses locked the (predictable) admin account, right password too."""
    for i in range(5):
        with client_at(stack, f"127.0.0.{11 + i}") as guesser:
            assert api_sign_in(guesser, ADMIN_EMAIL, GUESS) == 401
    with client_at(stack, "127.0.0.6") as owner:
        assert api_sign_in(owner, ADMIN_EMAIL, ADMIN_PASSWORD) == 200
    with client_at(stack, "127.0.0.7") as browser:
        assert web_sign_in(browser, ADMIN_EMAIL, ADMIN_PASSWORD) == 303


def test_an_address_that_keeps_guessing_one_account_must_wait(stack, admin):
    email = create_user(admin, ["observer"])["email"]
    with client_at(stack, "127.0.0.8") as guesser:
        assert [api_sign_in(guesser, email, GUESS) for _ in range(ACCOUNT_FAILURES)] == [401] * ACCOUNT_FAILURES
        refused = guesser.post("/api/v1/auth/token", data={"username": email, "password": PASSWORD})
    assert refused.status_code == 429, refused.text  # the right password waits too, from this address
    assert 1 <= int(refused.headers["retry-after"]) <= FIRST_WAIT  # each further failure doubles the wait
    with client_at(stack, "127.0.0.9") as owner:
        assert api_sign_in(owner, email, PASSWORD) == 200


def test_an_account_under_attack_slows_its_guessers_but_never_its_owner(stack, admin):
    email = create_user(admin, ["observer"])["email"]
    guessers = [f"127.0.1.{i}" for i in range(1, ACCOUNT_WIDE_FAILURES + 1)]
    for address in guessers:  # one guess each: under the free attempts of every address
        with client_at(stack, address) as guesser:
            assert api_sign_in(guesser, email, GUESS) == 401
    # Now an address that has failed on it has no free attempts left: it waits after each one, where it had
    # four more before…
    with client_at(stack, guessers[0]) as guesser:
        assert 429 in [api_sign_in(guesser, email, GUESS) for _ in range(3)]
    # …and one that has not is never held back.
    with client_at(stack, "127.0.0.10") as owner:
        assert api_sign_in(owner, email, PASSWORD) == 200
