"""The Redis key layout shared by the stream job (writer), the producer, the dashboard and Dagster.

Every key starts with `Settings.redis_key_prefix` (default `stock:`) so that
several platforms, or test sessions, can share one Redis.
"""

from __future__ import annotations

__all__ = ["RedisKeys"]


class RedisKeys:
    """Names of every key the platform uses, for one prefix."""

    def __init__(self, prefix: str = "stock:") -> None:
        self.prefix = prefix

    def latest(self, symbol: str) -> str:
        """Hash: the newest quote of a symbol (fields of `Quote` plus `updated_ms`); TTL = REDIS_TTL_SECONDS."""
        return f"{self.prefix}latest:{symbol}"

    def ticks(self, symbol: str) -> str:
        """Sorted set: the last 5 minutes of ticks, score = event_time_ms, member = JSON {"t","p","v"}; TTL set."""
        return f"{self.prefix}ticks:{symbol}"

    @property
    def symbols(self) -> str:
        """Set: symbols that have a `latest` hash (for the watchlist); TTL refreshed on each batch."""
        return f"{self.prefix}symbols"

    @property
    def updates_channel(self) -> str:
        """Pub/sub channel: one JSON message per stream batch that wrote new quotes."""
        return f"{self.prefix}updates"

    def heartbeat(self, component: str) -> str:
        """Hash: liveness and counters of a long-running component that runs once (`stream`); TTL set.

        Producers may run several at a time, so each beats under its own id (`producer_heartbeat`).
        """
        return f"{self.prefix}heartbeat:{component}"

    def producer_heartbeat(self, producer_id: str) -> str:
        """Hash: liveness and counters of the producer with this id (`Settings.producer_id`); TTL set."""
        return f"{self.prefix}heartbeat:producer:{producer_id}"

    @property
    def producers(self) -> str:
        """Sorted set: the id of every producer that beat recently, score = its last beat (epoch ms); TTL set."""
        return f"{self.prefix}heartbeat:producers"
