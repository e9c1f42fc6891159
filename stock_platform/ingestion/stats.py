"""Counters shared by the feeds and the producer: what was published, skipped (and why), failed, dropped, left unsent.

The heartbeat publishes these to Redis for the supervisor and the dashboard,
and the tests read them to see how the producer reacted to each Finnhub behaviour.
A record the producer numbered but Kafka never acknowledged is lost in one of
three ways, each counted with the range of sequence numbers it spans, so the
producer's last log line can say exactly which records are missing:
`failed` (Kafka reported a delivery error), `dropped` (no room to buffer it,
by reason) and `unsent` (still waiting for Kafka when the producer stopped).
"""

from __future__ import annotations

import threading
import time
from collections import Counter

__all__ = ["FeedStats"]


class FeedStats:
    """Thread-safe counters: published/skipped/failed/dropped/unsent, skip and drop reasons, and named events."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.published = 0
        self.failed = 0
        self.unsent = 0
        self.last_publish_ms = 0
        self.skipped: Counter[str] = Counter()
        self.dropped: Counter[str] = Counter()
        self.events: Counter[str] = Counter()
        self.lost_seqs: tuple[int, int] | None = None  # lowest and highest seq of any lost record
        self._seen: set[str] = set()

    def add_published(self, count: int = 1) -> None:
        """Count records the broker acknowledged."""
        with self._lock:
            self.published += count
            self.last_publish_ms = int(time.time() * 1000)

    def _lost(self, seq: int | None) -> None:
        if seq is not None:
            low, high = self.lost_seqs or (seq, seq)
            self.lost_seqs = (min(low, seq), max(high, seq))

    def add_failed(self, count: int = 1, seq: int | None = None) -> None:
        """Count records Kafka reported as not delivered (`seq`: the record's, when there is one)."""
        with self._lock:
            self.failed += count
            self._lost(seq)

    def add_dropped(self, reason: str, seq: int | None = None) -> None:
        """Count a record dropped because a bounded buffer stayed full (reason: queue_full, inbox_full)."""
        with self._lock:
            self.dropped[reason] += 1
            self._lost(seq)

    def add_unsent(self, count: int = 1, seq: int | None = None) -> None:
        """Count records still unacknowledged when the producer stopped waiting for Kafka."""
        with self._lock:
            self.unsent += count
            self._lost(seq)

    def skip(self, reason: str, count: int = 1) -> None:
        """Count a record not published, under its reason (all_zero, unchanged, malformed, invalid)."""
        with self._lock:
            self.skipped[reason] += count

    def event(self, name: str, count: int = 1) -> None:
        """Count something that happened (rate_limited, retry, reconnect, ws_error, ...)."""
        with self._lock:
            self.events[name] += count

    def first_time(self, kind: str) -> bool:
        """True only the first time `kind` is seen: lets a feed log the first of each kind of problem and count the rest.

        A Finnhub answer that is wrong once is usually wrong on every poll; one line per kind keeps the
        log readable while the counters keep the totals.
        """
        with self._lock:
            if kind in self._seen:
                return False
            self._seen.add(kind)
            return True

    @property
    def lost(self) -> int:
        """Records lost after reaching the producer: failed, dropped and unsent together."""
        with self._lock:
            return self.failed + self.unsent + sum(self.dropped.values())

    def lost_summary(self) -> str:
        """One line naming how many records were lost, how, and the seq range they lie in."""
        with self._lock:
            dropped = sum(self.dropped.values())
            total = self.failed + self.unsent + dropped
            reasons = ", ".join(f"{k} {v}" for k, v in sorted(self.dropped.items()))
            parts = [f"{self.unsent} unsent at stop", f"{dropped} dropped" + (f" ({reasons})" if reasons else "")]
            parts.append(f"{self.failed} failed")
            seqs = f"seq {self.lost_seqs[0]}..{self.lost_seqs[1]}" if self.lost_seqs else "no seq"
            if self.dropped["inbox_full"]:
                seqs += " (inbox_full drops happen before numbering: no seq)"
            return f"lost {total} records: {', '.join(parts)}; {seqs}"

    def snapshot(self) -> dict[str, int]:
        """Every counter as a flat dict (`skipped_<reason>`, `dropped_<reason>`, `event_<name>`), for the heartbeat."""
        with self._lock:
            out = {
                "published": self.published,
                "skipped": sum(self.skipped.values()),
                "failed": self.failed,
                "dropped": sum(self.dropped.values()),
                "unsent": self.unsent,
                "last_publish_ms": self.last_publish_ms,
            }
            if self.lost_seqs is not None:
                out["lost_first_seq"], out["lost_last_seq"] = self.lost_seqs
            out.update({f"skipped_{k}": v for k, v in self.skipped.items()})
            out.update({f"dropped_{k}": v for k, v in self.dropped.items()})
            out.update({f"event_{k}": v for k, v in self.events.items()})
            return out
