"""Counters shared by the feeds and the producer: what was published, skipped (and why), failed.

The heartbeat publishes these to Redis for the supervisor and the dashboard,
and the tests read them to see how the producer reacted to each Finnhub behaviour.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

__all__ = ["FeedStats"]


class FeedStats:
    """Thread-safe counters: published/skipped/failed, skip reasons, and named events (retries, reconnects)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.published = 0
        self.failed = 0
        self.last_publish_ms = 0
        self.skipped: Counter[str] = Counter()
        self.events: Counter[str] = Counter()

    def add_published(self, count: int = 1) -> None:
        """Count records the broker acknowledged."""
        with self._lock:
            self.published += count
            self.last_publish_ms = int(time.time() * 1000)

    def add_failed(self, count: int = 1) -> None:
        """Count records that could not be delivered."""
        with self._lock:
            self.failed += count

    def skip(self, reason: str, count: int = 1) -> None:
        """Count a record not published, under its reason (all_zero, unchanged, malformed, invalid)."""
        with self._lock:
            self.skipped[reason] += count

    def event(self, name: str, count: int = 1) -> None:
        """Count something that happened (rate_limited, retry, reconnect, ws_error, ...)."""
        with self._lock:
            self.events[name] += count

    @property
    def skipped_total(self) -> int:
        """All skipped records, whatever the reason."""
        with self._lock:
            return sum(self.skipped.values())

    def snapshot(self) -> dict[str, int]:
        """Every counter as a flat dict (`skipped_<reason>`, `event_<name>`), for the heartbeat."""
        with self._lock:
            out = {
                "published": self.published,
                "skipped": sum(self.skipped.values()),
                "failed": self.failed,
                "last_publish_ms": self.last_publish_ms,
            }
            out.update({f"skipped_{k}": v for k, v in self.skipped.items()})
            out.update({f"event_{k}": v for k, v in self.events.items()})
            return out
