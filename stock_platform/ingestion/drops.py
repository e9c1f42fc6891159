"""Dropping records from a full buffer loudly but briefly: a run of drops is two log lines, not one per record.

While Kafka is down a feed may drop hundreds of records a second; one line each
would bury everything else in the log. Each drop is counted in `FeedStats` at
once (the heartbeat shows it); the log gets a line when a run of drops starts
and one when it ends, with the count and the seq range in between.
"""

from __future__ import annotations

import logging
import threading
import time

from stock_platform.ingestion.stats import FeedStats

__all__ = ["DropRun"]

logger = logging.getLogger(__name__)


class DropRun:
    """Counts drops under `reason` and logs each run of them; `end()` closes a run (room again, or stopping)."""

    def __init__(self, stats: FeedStats, reason: str, what: str) -> None:
        self.stats = stats
        self.reason = reason
        self.what = what  # "records" or "Finnhub quotes": the noun in the log lines
        self._lock = threading.Lock()
        self._count = 0
        self._seqs: tuple[int, int] | None = None
        self._started = 0.0

    @property
    def active(self) -> bool:
        """True between the first drop of a run and `end()`."""
        return self._count > 0

    def drop(self, why: str, seq: int | None = None) -> None:
        """Count one dropped record; the first of a run is logged with `why` (what is full, and its limit)."""
        self.stats.add_dropped(self.reason, seq)
        with self._lock:
            self._count += 1
            if seq is not None:
                low, high = self._seqs or (seq, seq)
                self._seqs = (min(low, seq), max(high, seq))
            if self._count > 1:
                return
            self._started = time.monotonic()
        at = f" from seq {seq}" if seq is not None else ""
        logger.warning("%s: dropping %s%s until there is room (counted as dropped_%s)", why, self.what, at, self.reason)

    def end(self) -> None:
        """Close the current run, if any, with one line: how many were dropped, which seqs, for how long."""
        with self._lock:
            count, seqs, started = self._count, self._seqs, self._started
            self._count, self._seqs = 0, None
        if count:
            span = f" (seq {seqs[0]}..{seqs[1]})" if seqs else ""
            logger.warning("dropped %d %s%s over %.1f s (%s)", count, self.what, span, time.monotonic() - started, self.reason)
