"""The sign-in throttle's waits (pure); the counting itself is tested on a database in tests/integration."""

from datetime import timedelta

from citypair_identity.config import Settings
from citypair_identity.throttle import Allowance, Policy


def seconds(wait: timedelta) -> float:
    return wait.total_seconds()


def test_free_attempts_then_waits_that_double_up_to_the_longest():
    allowance = Allowance(free=3, first_wait=timedelta(seconds=1), max_wait=timedelta(seconds=10))
    assert [seconds(allowance.wait_after(n)) for n in range(9)] == [0, 0, 0, 1, 2, 4, 8, 10, 10]
    slower = Allowance(free=1, first_wait=timedelta(seconds=5), max_wait=timedelta(seconds=12))
    assert [seconds(slower.wait_after(n)) for n in range(5)] == [0, 5, 10, 12, 12]


def test_an_endless_guesser_waits_the_longest_and_no_more():
    allowance = Allowance(free=1, first_wait=timedelta(days=1), max_wait=timedelta(days=10**6))
    assert allowance.wait_after(10**6) == timedelta(days=10**6)  # doubling a wait never overflows


def test_policy_from_settings_is_the_documented_default():
    policy = Policy.from_settings(Settings())
    waits = timedelta(seconds=1), timedelta(minutes=15)
    assert policy.per_account_and_address == Allowance(5, *waits)
    # An account under attack: every address that failed on it waits from its first failure.
    assert policy.under_attack == Allowance(1, *waits)
    assert (policy.account_wide_failures, policy.address_attempts) == (20, 30)
    assert policy.window == timedelta(minutes=5)
