"""How much the producer may buffer while Kafka is away, and how long it waits for Kafka when told to stop.

Every buffer between Finnhub and Kafka is bounded, so an outage costs records
(counted and logged) rather than all the machine's memory:
- `PRODUCER_INBOX_MAX` (10,000): quotes from the Finnhub feeds waiting for the
  producer; the feeds push in real time and cannot be paused, so when it is
  full the newest quote is dropped (`dropped_inbox_full`).
- `PRODUCER_QUEUE_MAX_MESSAGES` (1,000,000) and `PRODUCER_QUEUE_MAX_KBYTES`
  (1,048,576, librdkafka's own default): the Kafka client's queue of records
  not yet acknowledged.
- `PRODUCER_QUEUE_FULL_TIMEOUT_SECONDS` (10): how long a record waits for room
  in that queue before it is dropped (`dropped_queue_full`). The wait slows a
  simulated or replayed source down to what Kafka takes.
- `PRODUCER_FLUSH_TIMEOUT_SECONDS` (10): at a stop, how long Kafka gets to
  acknowledge what is queued; the rest is reported as unsent. Kept well under
  the 45 s Dagster allows between SIGTERM and SIGKILL, so the producer always
  gets to say what it lost.

Read from the environment when `stock-platform produce` starts (not at import).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["ProducerLimits"]


def _positive(environ: Mapping[str, str], name: str, default: float, kind: type[int] | type[float]) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        value = 0
    if not (math.isfinite(value) and value > 0):
        noun = "whole number" if kind is int else "number"
        raise ValueError(f"setting {name} must be a positive {noun}, got {raw!r}")
    return value


@dataclass(frozen=True)
class ProducerLimits:
    """The producer's buffer bounds and stop timeout (see the module docstring for the variables)."""

    flush_timeout_s: float = 10.0
    queue_full_timeout_s: float = 10.0
    queue_max_messages: int = 1_000_000
    queue_max_kbytes: int = 1_048_576
    inbox_max: int = 10_000

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ProducerLimits:
        """The limits set in the environment, defaults for the rest; ValueError names a bad variable."""
        env = os.environ if environ is None else environ
        d = cls()
        return cls(
            flush_timeout_s=_positive(env, "PRODUCER_FLUSH_TIMEOUT_SECONDS", d.flush_timeout_s, float),
            queue_full_timeout_s=_positive(env, "PRODUCER_QUEUE_FULL_TIMEOUT_SECONDS", d.queue_full_timeout_s, float),
            queue_max_messages=int(_positive(env, "PRODUCER_QUEUE_MAX_MESSAGES", d.queue_max_messages, int)),
            queue_max_kbytes=int(_positive(env, "PRODUCER_QUEUE_MAX_KBYTES", d.queue_max_kbytes, int)),
            inbox_max=int(_positive(env, "PRODUCER_INBOX_MAX", d.inbox_max, int)),
        )
