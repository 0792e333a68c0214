"""The supervisor's restart policy: 0.5 s doubling to 30 s per part, forgiven after a minute up."""

from citypair_cli.stack import Backoff


def test_delays_double_up_to_the_ceiling_while_the_part_keeps_crashing():
    backoff = Backoff()
    assert [backoff.next_delay(uptime=1) for _ in range(9)] == [0.5, 1, 2, 4, 8, 16, 30, 30, 30]
    assert backoff.restarts == 9


def test_a_part_that_stayed_up_long_enough_restarts_at_once_again():
    backoff = Backoff()
    for _ in range(5):
        backoff.next_delay(uptime=1)
    assert backoff.next_delay(uptime=59.9) == 16
    assert backoff.next_delay(uptime=60) == 0.5
    assert backoff.restarts == 1


def test_a_part_failing_for_days_stays_at_the_ceiling():
    backoff = Backoff(restarts=10_000)
    assert backoff.next_delay(uptime=0) == 30
