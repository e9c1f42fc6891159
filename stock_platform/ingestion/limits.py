"""How much the producer may buffer while Kafka is away, and how long it waits for Kafka when told to stop.

Every buffer between Finnhub and Kafka is bounded, so an outage costs records
(counted and logged) rather than all the machine's memory. The bounds are
settings (PRODUCER_* in `stock_platform.config`, where each is described): the
inbox of quotes from the Finnhub feeds, which push in real time and cannot be
paused (when full, the newest quote is dropped: `dropped_inbox_full`); the Kafka
client's queue of records not yet acknowledged, and how long a record waits for
room in it (then `dropped_queue_full`; the wait slows a simulated or replayed
source down to what Kafka takes); and, at a stop, how long Kafka gets to
acknowledge what is queued before the rest is reported as unsent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stock_platform.config import Settings

__all__ = ["ProducerLimits"]


@dataclass(frozen=True)
class ProducerLimits:
    """The producer's buffer bounds and stop timeout, taken from the settings."""

    flush_timeout_s: float = 10.0
    queue_full_timeout_s: float = 10.0
    queue_max_messages: int = 1_000_000
    queue_max_kbytes: int = 1_048_576
    inbox_max: int = 10_000

    @classmethod
    def of(cls, settings: Settings) -> ProducerLimits:
        """The limits the settings give (checked when the settings were loaded)."""
        return cls(
            flush_timeout_s=settings.producer_flush_timeout_seconds,
            queue_full_timeout_s=settings.producer_queue_full_timeout_seconds,
            queue_max_messages=settings.producer_queue_max_messages,
            queue_max_kbytes=settings.producer_queue_max_kbytes,
            inbox_max=settings.producer_inbox_max,
        )
