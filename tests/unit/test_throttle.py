"""Sign-in throttling windows (pure, with a hand-moved clock)."""

from citypair_identity.throttle import Throttle


def test_blocks_after_the_limit_until_the_window_passes():
    throttle = Throttle(limit=3, window=60)
    for t in (0, 1, 2):
        assert throttle.retry_after("ana", t) == 0
        throttle.hit("ana", t)
    assert throttle.retry_after("ana", 3) == 57
    assert throttle.retry_after("ana", 59.5) == 0.5
    assert throttle.retry_after("ana", 60) == 0  # the first hit has left the window: one more is allowed
    throttle.hit("ana", 60)
    assert throttle.retry_after("ana", 60) == 1


def test_keys_are_independent_and_clear_forgets():
    throttle = Throttle(limit=1, window=10)
    throttle.hit("ana", 0)
    assert throttle.retry_after("ana", 1) == 9
    assert throttle.retry_after("bo", 1) == 0
    throttle.clear("ana")
    assert throttle.retry_after("ana", 1) == 0
