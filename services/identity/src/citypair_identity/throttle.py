"""Sliding-window counters for sign-in throttling. Pure: the clock is passed in."""

from collections import defaultdict, deque


class Throttle:
    """At most `limit` hits per key within `window` seconds."""

    def __init__(self, *, limit: int, window: float):
        self.limit, self.window = limit, window
        self._hits: dict[str, deque[float]] = defaultdict(deque)

    def retry_after(self, key: str, now: float) -> float:
        """Seconds until `key` may try again; 0 if it may now."""
        hits = self._hits.get(key)
        if not hits:
            return 0.0
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if len(hits) < self.limit:
            return 0.0
        return hits[0] + self.window - now

    def hit(self, key: str, now: float) -> None:
        self._hits[key].append(now)

    def clear(self, key: str) -> None:
        self._hits.pop(key, None)
