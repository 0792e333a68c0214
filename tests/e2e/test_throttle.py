"""Sign-in throttling on a stack of its own with tight limits: per account (failures), per address (attempts).

Everything goes through the Caddy gateway, so the address identity sees is the one Caddy saw.
"""

import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.e2e.conftest import start_stack
from tests.support import ADMIN_EMAIL, ADMIN_PASSWORD, PASSWORD, create_user, sign_in

ACCOUNT_FAILURES, ADDRESS_ATTEMPTS, WINDOW_SECONDS = 3, 8, 3


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    stack = start_stack(
        tmp_path_factory.mktemp("throttle"),
        CITYPAIR_IDENTITY_SIGNIN_ACCOUNT_FAILURES=str(ACCOUNT_FAILURES),
        CITYPAIR_IDENTITY_SIGNIN_ADDRESS_ATTEMPTS=str(ADDRESS_ATTEMPTS),
        CITYPAIR_IDENTITY_SIGNIN_WINDOW_SECONDS=str(WINDOW_SECONDS),
    )
    yield stack
    stack.stop()


def retry_after(response: httpx.Response) -> int:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/problem+json"
    seconds = int(response.headers["retry-after"])  # delta-seconds: an integer, never a date here
    assert 1 <= seconds <= WINDOW_SECONDS
    return seconds


def throttled_subjects(admin: httpx.Client) -> set[str]:
    page = admin.get("/api/v1/audit", params={"action": "signin.throttled", "limit": 100})
    assert page.status_code == 200, page.text
    assert all(e["action"] == "signin.throttled" for e in page.json()["items"])
    return {e["subject"] for e in page.json()["items"]}


def at_once(call: Callable[[], httpx.Response], times: int) -> list[httpx.Response]:
    with ThreadPoolExecutor(times) as pool:
        return [f.result() for f in [pool.submit(call) for _ in range(times)]]


def let_the_window_pass() -> None:
    time.sleep(WINDOW_SECONDS)


def test_wrong_passwords_lock_the_account_until_the_window_passes(stack, admin):
    gateway = stack.config.gateway_url
    email = create_user(admin, ["observer"])["email"]
    bystander = create_user(admin, ["observer"])["email"]
    # The address sees at most 1 (admin) + 3 + 1 + 1 attempts here: below its limit of 8.

    # At once, so that password hashing on a busy machine cannot stretch them past the window.
    failures = at_once(lambda: sign_in(gateway, email, "wrong-password"), ACCOUNT_FAILURES)
    assert [r.status_code for r in failures] == [401] * ACCOUNT_FAILURES
    wait = retry_after(sign_in(gateway, email, PASSWORD))  # even the right password
    retry_after(sign_in(gateway, email.upper(), PASSWORD))  # the same account, however it is spelt
    assert sign_in(gateway, bystander, PASSWORD).status_code == 200, "other accounts are not locked"
    assert email in throttled_subjects(admin)

    time.sleep(wait)
    assert sign_in(gateway, email, PASSWORD).status_code == 200


def test_concurrent_guesses_cannot_outrun_the_account_limit(stack, admin):
    """Guesses sent at once must not all pass the check before the first failure is counted."""
    gateway = stack.config.gateway_url
    email = create_user(admin, ["observer"])["email"]
    # At most 2 attempts of the test before are still in the address's window: 6 of 8 remain, more than 3.
    guesses = at_once(lambda: sign_in(gateway, email, "wrong-password"), ADDRESS_ATTEMPTS)
    statuses = sorted(r.status_code for r in guesses)
    assert statuses == [401] * ACCOUNT_FAILURES + [429] * (ADDRESS_ATTEMPTS - ACCOUNT_FAILURES)


def test_many_accounts_from_one_address_are_throttled(stack, admin):
    gateway = stack.config.gateway_url
    let_the_window_pass()  # the attempts of the test before leave the address's window
    run = uuid.uuid4().hex[:6]
    guesses = iter(f"guess-{run}-{i}@test.citypair" for i in range(ADDRESS_ATTEMPTS + 1))

    with ThreadPoolExecutor(ADDRESS_ATTEMPTS) as pool:
        burst = [pool.submit(sign_in, gateway, next(guesses), "a-guessed-password") for _ in range(ADDRESS_ATTEMPTS)]
        time.sleep(0.5)  # every attempt is counted on arrival; their password checks are still running
        # Identity keeps answering while it checks passwords (the checks run off its event loop).
        started = time.monotonic()
        assert httpx.get(f"{gateway}/.well-known/jwks.json", timeout=30).status_code == 200
        assert time.monotonic() - started < 1.0, "a burst of sign-ins stalls identity"
        last_guess = next(guesses)
        retry_after(sign_in(gateway, last_guess, "a-guessed-password"))
        retry_after(sign_in(gateway, ADMIN_EMAIL, ADMIN_PASSWORD))  # right credentials, throttled address
        # Caddy does not pass on a forwarded-for the client made up, so the address cannot be faked.
        spoofed = httpx.post(
            f"{gateway}/api/v1/auth/token",
            data={"username": ADMIN_EMAIL, "password": ADMIN_PASSWORD},
            headers={"X-Forwarded-For": "203.0.113.7", "X-Real-IP": "203.0.113.7"},
            timeout=30,
        )
        retry_after(spoofed)
        assert [f.result().status_code for f in burst] == [401] * ADDRESS_ATTEMPTS

    audited = admin.get("/api/v1/audit", params={"action": "signin.throttled", "limit": 100}).json()["items"]
    mine = [e for e in audited if e["subject"] in {last_guess, ADMIN_EMAIL}]
    assert len(mine) >= 3
    assert {e["address"] for e in mine} == {"127.0.0.1"}
