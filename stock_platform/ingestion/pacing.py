"""Play a stream of quotes against the wall clock: real time, N times faster, or as fast as possible."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator

from stock_platform.quotes import Quote

__all__ = ["paced"]


def paced(quotes: Iterable[Quote], speed: float | None, stop: threading.Event) -> Iterator[Quote]:
    """Yield `quotes` spaced as their event times say, divided by `speed` (None or <= 0: no waiting).

    The first quote sets the origin; a quote whose moment has passed is yielded
    at once, so a slow consumer catches up instead of drifting. Returns when
    `stop` is set, even in the middle of a wait.
    """
    if not speed or speed <= 0:
        for quote in quotes:
            if stop.is_set():
                return
            yield quote
        return
    origin_event: int | None = None
    origin_wall = 0.0
    for quote in quotes:
        if origin_event is None:
            origin_event, origin_wall = quote.event_time_ms, time.monotonic()
        due = origin_wall + (quote.event_time_ms - origin_event) / 1000.0 / speed
        wait = due - time.monotonic()
        # Sleeping for less than a millisecond costs more than it paces: such quotes go out at once.
        if wait > 0.001 and stop.wait(wait):
            return
        if stop.is_set():
            return
        yield quote
