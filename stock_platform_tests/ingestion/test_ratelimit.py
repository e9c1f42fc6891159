"""Token buckets never exceed their window limit; backoff grows, jitters and resets."""

from __future__ import annotations

import bisect
import random

import pytest

from stock_platform.ingestion.ratelimit import Backoff, CallLimiter, TokenBucket


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(("limit", "window"), [(60, 60.0), (30, 1.0), (5, 1.0), (2, 60.0)])
def test_bucket_allows_at_most_limit_calls_in_any_window(limit: int, window: float) -> None:
    for_window = TokenBucket.for_window(limit, window)
    clock = _Clock()
    bucket = TokenBucket(for_window.capacity, for_window.rate, clock)
    calls: list[float] = []
    while clock.now < 5 * window:
        wait = bucket.wait_time()
        if wait > 0:
            clock.now += wait
            continue
        bucket.take()
        calls.append(clock.now)
    assert len(calls) >= limit * 2  # it is not needlessly slow either
    for i, start in enumerate(calls):
        in_window = [t for t in calls[i:] if t < start + window - 1e-6]
        assert len(in_window) <= limit


def test_emptied_bucket_waits_for_a_refill() -> None:
    clock = _Clock()
    bucket = TokenBucket(5, 1.0, clock)
    bucket.empty()
    assert bucket.wait_time() == pytest.approx(1.0)


def test_backoff_grows_to_the_cap_with_jitter_and_resets() -> None:
    backoff = Backoff(0.5, 8.0, random.Random(1))
    delays = [backoff.next_delay() for _ in range(10)]
    ceilings = [min(8.0, 0.5 * 2**i) for i in range(10)]
    assert all(0.5 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    assert len(set(delays)) == 10
    backoff.reset()
    assert backoff.next_delay() == 0.5


def _max_in_window(times: list[float], window: float) -> int:
    """The most calls in any half-open window [t, t + window) starting at a call."""
    return max(bisect.bisect_left(times, t + window) - i for i, t in enumerate(times))


@pytest.mark.parametrize(("per_second", "per_minute"), [(30, 60), (5, 300), (30, 2000)])
def test_call_limiter_keeps_both_finnhub_limits_at_once(per_second: int, per_minute: int) -> None:
    clock = _Clock()

    def sleep(seconds: float) -> None:
        clock.now += seconds

    limiter = CallLimiter(per_second, per_minute, clock=clock, sleep=sleep)
    times = []
    for _ in range(400):
        assert limiter.acquire()
        times.append(clock.now)
    assert _max_in_window(times, 1.0) <= per_second
    assert _max_in_window(times, 60.0) <= per_minute
    # Not needlessly slow either: at least three quarters of the tighter limit is used.
    span = times[-1] - times[0]
    assert 400 / max(span, 1e-9) >= 0.75 * min(per_second, per_minute / 60)


def test_call_limiter_pause_holds_every_call_for_retry_after() -> None:
    clock = _Clock()

    def sleep(seconds: float) -> None:
        clock.now += seconds

    limiter = CallLimiter(30, 60, clock=clock, sleep=sleep)
    assert limiter.acquire()
    limiter.pause(7.5)
    assert limiter.acquire()
    assert clock.now >= 7.5
