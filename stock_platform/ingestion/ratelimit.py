"""Politeness towards Finnhub: a shared token bucket for both call limits, and backoff with jitter.

Finnhub's free plan allows 60 calls a minute and 30 a second. A bucket of
capacity C refilled at r per second lets through at most C + r*W calls in any
window of W seconds, so each limit gets a bucket with C + r*W = limit: bursts
stay small and no sliding window is ever exceeded.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

__all__ = ["Backoff", "CallLimiter", "TokenBucket"]


class TokenBucket:
    """Tokens refill continuously up to a capacity; `acquire` waits for one."""

    def __init__(self, capacity: float, rate_per_second: float, clock: Callable[[], float] = time.monotonic) -> None:
        if capacity < 1 or rate_per_second <= 0:
            raise ValueError("a token bucket needs capacity >= 1 and a positive rate")
        self.capacity = capacity
        self.rate = rate_per_second
        self._clock = clock
        self._tokens = capacity
        self._stamp = clock()

    @classmethod
    def for_window(cls, limit: int, window_seconds: float) -> TokenBucket:
        """A bucket that never lets more than `limit` calls through in any `window_seconds`."""
        if limit < 1:
            raise ValueError("a call limit must be at least 1")
        capacity = max(1, limit // 10)
        rate = (limit - capacity) / window_seconds if limit > capacity else limit / (2 * window_seconds)
        return cls(capacity, rate)

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def wait_time(self) -> float:
        """Seconds until a token is available (0 when one is)."""
        self._refill()
        # The tolerance stops float rounding from asking for waits too small to move the clock.
        return 0.0 if self._tokens >= 1 - 1e-9 else (1 - self._tokens) / self.rate

    def take(self) -> None:
        """Spend one token (call after `wait_time()` returned 0)."""
        self._refill()
        self._tokens -= 1

    def empty(self) -> None:
        """Drop every token, so the next call waits a full refill (after a 429)."""
        self._refill()
        self._tokens = min(self._tokens, 0.0)


class CallLimiter:
    """The calls-per-second and calls-per-minute buckets, shared by every thread calling Finnhub."""

    def __init__(
        self,
        per_second: int,
        per_minute: int,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        buckets = (TokenBucket.for_window(per_second, 1.0), TokenBucket.for_window(per_minute, 60.0))
        self._buckets = tuple(TokenBucket(b.capacity, b.rate, clock) for b in buckets)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._paused_until = 0.0

    def pause(self, seconds: float) -> None:
        """Hold every caller for `seconds` (Retry-After) and empty the buckets."""
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + seconds)
            for bucket in self._buckets:
                bucket.empty()

    def acquire(self, stop: threading.Event | None = None) -> bool:
        """Wait for a call slot under both limits; False if `stop` was set while waiting."""
        while True:
            with self._lock:
                wait = max(self._paused_until - self._clock(), *(b.wait_time() for b in self._buckets))
                if wait <= 0:
                    for bucket in self._buckets:
                        bucket.take()
                    return True
            if stop is not None:
                if stop.wait(min(wait, 1.0)):
                    return False
            else:
                self._sleep(min(wait, 1.0))


class Backoff:
    """Exponential backoff with full jitter: attempt n waits uniform(base, min(cap, base * 2**n))."""

    def __init__(self, base: float = 0.5, cap: float = 30.0, rng: random.Random | None = None) -> None:
        self.base = base
        self.cap = cap
        self.attempt = 0
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography

    def next_delay(self) -> float:
        """The delay before the next attempt; each call doubles the ceiling up to `cap`."""
        ceiling = min(self.cap, self.base * (2**self.attempt))
        self.attempt += 1
        return self._rng.uniform(min(self.base, ceiling), ceiling)

    def reset(self) -> None:
        """Start again from `base` after a success."""
        self.attempt = 0
