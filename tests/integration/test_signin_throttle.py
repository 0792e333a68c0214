"""Sign-in throttle counters in a real database, shared by two replicas (two engines), with a hand-moved clock."""

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from citypair_identity import throttle
from citypair_identity.models import Base, SigninCounter
from citypair_identity.throttle import ANY, Allowance, Policy
from citypair_shared.db import create_engine, create_session_factory
from tests.support import fresh_database_url

WAITS = timedelta(seconds=1), timedelta(seconds=8)  # the first, the longest
POLICY = Policy(
    per_account_and_address=Allowance(3, *WAITS),
    under_attack=Allowance(1, *WAITS),
    account_wide_failures=1000,
    address_attempts=10,
    window=timedelta(seconds=60),
)
START = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
ANA, BO = "ana@test.citypair", "bo@test.citypair"
HOME, CAFE = "192.0.2.1", "198.51.100.7"


@pytest.fixture
async def replicas(tmp_path):
    url = fresh_database_url("identity", tmp_path)
    engines = [create_engine(url) for _ in range(2)]
    async with engines[0].begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    yield [create_session_factory(engine) for engine in engines]
    for engine in engines:
        await engine.dispose()


async def attempt(replica, at: float, *, account=ANA, address=HOME, right=False, policy=POLICY) -> float:
    """One sign-in as identity makes it, `at` seconds after START: 0 if let through (then it fails, unless
    `right`), else the seconds it must wait."""
    now = START + timedelta(seconds=at)
    async with replica() as session:
        wait = await throttle.admit(session, account=account, address=address, now=now, policy=policy)
        if wait:
            return wait.total_seconds()
        if right:
            await throttle.forget(session, account=account, address=address)
        else:
            await throttle.record_failure(session, account=account, now=now, policy=policy)
        await session.commit()
        return 0.0


async def counters(replica) -> dict[tuple[str, str], int]:
    async with replica() as session:
        rows = await session.execute(select(SigninCounter.account, SigninCounter.address, SigninCounter.attempts))
        return {(account, address): attempts for account, address, attempts in rows}


async def test_an_address_has_free_attempts_on_an_account_then_waits_that_double(replicas):
    one, two = replicas
    assert [await attempt(one, 0), await attempt(two, 0), await attempt(one, 0)] == [0, 0, 0]
    assert await attempt(two, 0) == 1  # even with the right password: this address has been guessing
    assert await attempt(one, 0.5, right=True) == 0.5  # a refused attempt is not counted: the wait does not grow
    assert await attempt(two, 1) == 0
    assert await attempt(one, 1) == 2
    assert await attempt(two, 3) == 0
    assert await attempt(one, 3) == 4
    assert await attempt(two, 7) == 0
    assert await attempt(one, 7) == 8
    assert await attempt(two, 15) == 0
    assert await attempt(one, 15) == 8  # the longest wait
    # Only that address on that account waits.
    assert await attempt(one, 15, address=CAFE, right=True) == 0
    assert await attempt(two, 15, account=BO) == 0


async def test_free_attempts_never_wait_whatever_order_they_read_the_clock_in(replicas):
    """Attempts sent at once read the clock, then are counted one at a time, not necessarily in that order."""
    one, two = replicas
    assert [await attempt(one, 0.3), await attempt(two, 0.1), await attempt(one, 0.2)] == [0, 0, 0]
    assert await attempt(two, 0.4) == 0.8  # the wait runs from the time the last one counted read


async def test_a_success_forgets_the_attempts_of_its_address(replicas):
    one, two = replicas
    for _ in range(3):
        await attempt(one, 0)
    assert await attempt(two, 0) == 1
    assert await attempt(two, 1, right=True) == 0
    assert [await attempt(one, 1) for _ in range(4)] == [0, 0, 0, 1]


async def test_attempts_are_forgotten_a_window_after_the_wait(replicas):
    one, _ = replicas
    for _ in range(3):
        await attempt(one, 0)
    # Three attempts could call for a 4 s wait (were the account under attack); then the 60 s window.
    assert await attempt(one, 63.9) == 0  # still counted: the fourth
    assert await attempt(one, 63.9) == 2
    await attempt(one, 65.9 + 8 + 60)
    assert [await attempt(one, 200) for _ in range(4)] == [0, 0, 0, 1]


async def test_guessing_from_many_addresses_never_locks_the_owner_out(replicas):
    """The attack: five wrong passwords from five addresses locked the account, the right password too."""
    one, two = replicas
    policy = dataclasses.replace(POLICY, account_wide_failures=5)
    guessers = [f"203.0.113.{i}" for i in range(1, 6)]
    for address in guessers:
        assert await attempt(one, 0, address=address, policy=policy) == 0
    assert await attempt(two, 0, address=HOME, right=True, policy=policy) == 0  # the owner, from anywhere else
    # …while the account is under attack an address that failed on it waits from its first failure.
    assert await attempt(two, 0, address=guessers[0], policy=policy) == 1
    assert await attempt(one, 1, address=guessers[0], policy=policy) == 0
    assert await attempt(two, 1, address=guessers[0], policy=policy) == 2
    assert await attempt(one, 1, address=HOME, right=True, policy=policy) == 0


async def test_an_address_has_a_limit_per_window_on_all_accounts(replicas):
    one, two = replicas
    accounts = [f"guess-{i}@test.citypair" for i in range(11)]
    for i, account in enumerate(accounts[:10]):
        assert await attempt(replicas[i % 2], i, account=account) == 0
    assert await attempt(one, 10, account=accounts[10]) == 50  # until its window (from its first attempt) ends
    assert await attempt(two, 59, account=accounts[10]) == 1
    assert await attempt(one, 59, address=CAFE, account=accounts[10]) == 0  # other addresses are not held back
    # The refused attempts counted nowhere: not on the address, not on the account from it.
    assert (accounts[10], HOME) not in await counters(one)
    assert (await counters(one))[(ANY, HOME)] == 10
    assert await attempt(two, 60, account=accounts[10]) == 0  # a new window


async def test_attempts_at_once_in_two_replicas_are_each_counted_once(replicas):
    one, two = replicas
    # At once on one account: exactly the free attempts get through; the rest must wait.
    at_once = await asyncio.gather(*(attempt(replicas[i % 2], 0) for i in range(12)))
    assert sorted(at_once) == [0] * 3 + [1] * 9
    # At once on many accounts: exactly the address's limit gets through (the 3 above count too).
    many = await asyncio.gather(*(attempt(replicas[i % 2], 0, account=f"g{i}@test.citypair") for i in range(12)))
    assert sorted(many) == [0] * 7 + [60] * 5
    assert (await counters(two))[(ANY, HOME)] == 10


async def test_old_counters_are_pruned(replicas):
    one, _ = replicas
    await attempt(one, 0)
    await attempt(one, 0, account=BO, address=CAFE)
    assert len(await counters(one)) == 6  # two addresses, each one's account on it, the two accounts' failures
    await attempt(one, 3600, address=CAFE)
    assert await counters(one) == {(ANY, CAFE): 1, (ANA, CAFE): 1, (ANA, ANY): 1}
