"""The producer's heartbeat in Redis: liveness and counters for the supervisor and the dashboard.

A hash at `RedisKeys(prefix).producer_heartbeat(producer_id)` (one per
producer, listed in `RedisKeys.producers`; see `storage.heartbeats`) with
producer_id, source, pid, started_ms, updated_ms, last_publish_ms (0 until the
first publish), published, skipped, failed and one `skipped_<reason>` /
`event_<name>` field per counter, refreshed every few seconds with a TTL, so a
dead producer's heartbeat disappears. Redis being down never stops
production: the write is retried on the next beat.
"""

from __future__ import annotations

import logging
import os
import threading
import time

import redis

from stock_platform.config import Settings
from stock_platform.ingestion.stats import FeedStats
from stock_platform.storage.heartbeats import queue_producer_beat
from stock_platform.storage.redis_client import redis_client
from stock_platform.storage.redis_keys import RedisKeys

__all__ = ["Heartbeat"]

logger = logging.getLogger(__name__)


class Heartbeat:
    """Writes `stats` to Redis every `interval` seconds from a daemon thread (`start`, `stop`)."""

    def __init__(self, settings: Settings, stats: FeedStats, source: str, *, interval: float = 5.0) -> None:
        self.keys = RedisKeys(settings.redis_key_prefix)
        self.producer_id = settings.producer_id
        self.key = self.keys.producer_heartbeat(self.producer_id)
        self.stats = stats
        self.interval = interval
        self._identity = {
            "producer_id": settings.producer_id,
            "source": source,
            "pid": os.getpid(),
            "started_ms": int(time.time() * 1000),
        }
        self._client = redis_client(settings.redis_url)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._healthy = True

    def beat(self, state: str = "running") -> bool:
        """Write the heartbeat now; False (and one warning per outage) when Redis is unreachable."""
        mapping: dict[str, object] = {**self._identity, **self.stats.snapshot()}
        mapping["state"] = state
        mapping["updated_ms"] = now_ms = int(time.time() * 1000)
        try:
            with self._client.pipeline(transaction=True) as pipe:
                queue_producer_beat(pipe, self.keys, self.producer_id, mapping, now_ms)
                pipe.execute()
        except redis.RedisError as e:
            if self._healthy:
                logger.warning("cannot write the producer heartbeat to Redis (will keep trying): %s", e)
            self._healthy = False
            return False
        if not self._healthy:
            logger.info("producer heartbeat is back in Redis")
        self._healthy = True
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.beat()

    def start(self) -> None:
        """Write a first beat and keep beating in the background."""
        self.beat()
        self._thread = threading.Thread(target=self._run, name="producer-heartbeat", daemon=True)
        self._thread.start()

    def stop(self, state: str = "stopped") -> None:
        """Stop beating and write a last beat with the final counters and `state`."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.beat(state)
        self._client.close()
