"""Sign-in throttling on a stack of its own with tight limits, each test from a loopback address of its own.

Everything goes through the Caddy gateway, so the address identity sees is the one Caddy saw. The waits'
schedule is tested with a hand-moved clock in tests/integration/test_signin_throttle.py; the attacks from
outside (many addresses, the web form) in test_security_signin.py.
"""

import math
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.e2e.conftest import start_stack
from tests.support import ADMIN_EMAIL, ADMIN_PASSWORD, PASSWORD, create_user

ACCOUNT_FAILURES, ADDRESS_ATTEMPTS, WINDOW_SECONDS = 3, 8, 30
FIRST_WAIT = 5  # longer than a password check takes on a busy machine, so that a test sees the wait it caused


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    stack = start_stack(
        tmp_path_factory.mktemp("throttle"),
        CITYPAIR_IDENTITY_SIGNIN_ACCOUNT_FAILURES=str(ACCOUNT_FAILURES),
        CITYPAIR_IDENTITY_SIGNIN_ADDRESS_ATTEMPTS=str(ADDRESS_ATTEMPTS),
        CITYPAIR_IDENTITY_SIGNIN_WINDOW_SECONDS=str(WINDOW_SECONDS),
        CITYPAIR_IDENTITY_SIGNIN_FIRST_WAIT_SECONDS=str(FIRST_WAIT),
    )
    yield stack
    stack.stop()


def sign_in_from(address: str, gateway: str, email: str, password: str, **headers: str) -> httpx.Response:
    """A sign-in from a client at this loopback address (the gateway listens on 127.0.0.1: all reach it)."""
    transport = httpx.HTTPTransport(local_address=address)
    with httpx.Client(base_url=gateway, transport=transport, timeout=30) as client:
        return client.post("/api/v1/auth/token", data={"username": email, "password": password}, headers=headers)


def retry_after(response: httpx.Response, longest: float) -> int:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/problem+json"
    seconds = int(response.headers["retry-after"])  # delta-seconds: an integer, never a date here
    assert 1 <= seconds <= math.ceil(longest)
    return seconds


def throttled_subjects(admin: httpx.Client) -> set[str]:
    page = admin.get("/api/v1/audit", params={"action": "signin.throttled", "limit": 100})
    assert page.status_code == 200, page.text
    assert all(e["action"] == "signin.throttled" for e in page.json()["items"])
    return {e["subject"] for e in page.json()["items"]}


def at_once(call: Callable[[], httpx.Response], times: int) -> list[httpx.Response]:
    with ThreadPoolExecutor(times) as pool:
        return [f.result() for f in [pool.submit(call) for _ in range(times)]]


def test_wrong_passwords_make_that_address_wait_before_it_tries_the_account_again(stack, admin):
    gateway, address = stack.config.gateway_url, "127.0.0.2"
    email = create_user(admin, ["observer"])["email"]
    bystander = create_user(admin, ["observer"])["email"]

    failures = at_once(lambda: sign_in_from(address, gateway, email, "wrong-password"), ACCOUNT_FAILURES)
    assert [r.status_code for r in failures] == [401] * ACCOUNT_FAILURES
    wait = retry_after(sign_in_from(address, gateway, email, PASSWORD), longest=FIRST_WAIT)  # even the right one
    retry_after(sign_in_from(address, gateway, email.upper(), PASSWORD), longest=FIRST_WAIT)  # however spelt
    assert sign_in_from(address, gateway, bystander, PASSWORD).status_code == 200, "other accounts do not wait"
    assert sign_in_from("127.0.0.3", gateway, email, PASSWORD).status_code == 200, "nor do other addresses"
    assert email in throttled_subjects(admin)

    time.sleep(wait)
    assert sign_in_from(address, gateway, email, PASSWORD).status_code == 200
    # The success forgot this address's failures: it has its free attempts again.
    again = at_once(lambda: sign_in_from(address, gateway, email, "wrong-password"), ACCOUNT_FAILURES)
    assert [r.status_code for r in again] == [401] * ACCOUNT_FAILURES


def test_concurrent_guesses_cannot_outrun_the_free_attempts(stack, admin):
    """Guesses sent at once must not all pass the check before the first failure is counted."""
    gateway = stack.config.gateway_url
    email = create_user(admin, ["observer"])["email"]
    guesses = at_once(lambda: sign_in_from("127.0.0.4", gateway, email, "wrong-password"), ADDRESS_ATTEMPTS)
    statuses = sorted(r.status_code for r in guesses)
    assert statuses == [401] * ACCOUNT_FAILURES + [429] * (ADDRESS_ATTEMPTS - ACCOUNT_FAILURES)


def timed_guess(client: httpx.Client, email: str) -> tuple[int, float]:
    started = time.monotonic()
    response = client.post("/api/v1/auth/token", data={"username": email, "password": "a-guessed-password"})
    return response.status_code, time.monotonic() - started


def test_many_accounts_from_one_address_are_throttled(stack, admin):
    gateway, address = stack.config.gateway_url, "127.0.0.5"
    run = uuid.uuid4().hex[:6]
    guesses = iter(f"guess-{run}-{i}@test.citypair" for i in range(ADDRESS_ATTEMPTS + 1))

    # Identity keeps answering while it checks the burst's passwords (the checks run off its event loop). Were
    # a check run on the loop, a request arriving meanwhile would wait for it and the ones queued with it: about
    # as long as the quickest sign-in of the burst takes. Compared with that rather than with a fixed time, a
    # busy machine, which slows both alike, does not make this fail. The clients exist before the burst, so
    # that the test's own work does not count.
    transport = httpx.HTTPTransport(local_address=address)
    with (
        httpx.Client(base_url=gateway, transport=transport, timeout=30) as guesser,
        httpx.Client(base_url=stack.config.service_url("identity"), timeout=30) as probe,
    ):
        assert probe.get("/healthz").status_code == 200
        with ThreadPoolExecutor(ADDRESS_ATTEMPTS) as pool:
            burst = [pool.submit(timed_guess, guesser, next(guesses)) for _ in range(ADDRESS_ATTEMPTS)]
            stalls = []
            while not all(f.done() for f in burst):
                started = time.monotonic()
                assert probe.get("/healthz").status_code == 200
                stalls.append(time.monotonic() - started)
            answered = [f.result() for f in burst]
    assert [status for status, _ in answered] == [401] * ADDRESS_ATTEMPTS
    quickest_check = min(seconds for _, seconds in answered)
    assert max(stalls) < quickest_check / 2, f"a burst of sign-ins stalls identity: {stalls} vs {quickest_check}"

    last_guess = next(guesses)
    retry_after(sign_in_from(address, gateway, last_guess, "a-guessed-password"), longest=WINDOW_SECONDS)
    # Right credentials, throttled address.
    retry_after(sign_in_from(address, gateway, ADMIN_EMAIL, ADMIN_PASSWORD), longest=WINDOW_SECONDS)
    # The gateway believes a forwarded-for from web's address only, so this client cannot pass for another.
    spoofed = sign_in_from(
        address, gateway, ADMIN_EMAIL, ADMIN_PASSWORD, **{"X-Forwarded-For": "203.0.113.7", "X-Real-IP": "203.0.113.7"}
    )
    retry_after(spoofed, longest=WINDOW_SECONDS)

    audited = admin.get("/api/v1/audit", params={"action": "signin.throttled", "limit": 100}).json()["items"]
    mine = [e for e in audited if e["subject"] in {last_guess, ADMIN_EMAIL}]
    assert len(mine) >= 3
    assert {e["address"] for e in mine} == {address}
