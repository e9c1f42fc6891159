"""The Redis side of a micro-batch: latest quote, 5-minute tick window, symbol set, notification, heartbeat.

Each Spark task writes the quotes it committed in one pipeline; the driver
then publishes the batch's notice and heartbeat. Redis is a cache: when it is
down the batch still commits to PostgreSQL, the task reports that it missed
Redis, and the driver, as soon as Redis answers again, refills it from
PostgreSQL (the newest quote of each symbol and the ticks of the last window),
so the hot data is whole again.

Key layout is `RedisKeys`'. `latest:{SYM}` only moves forward in event time (a
Lua script compares before writing), so a late or replayed batch never shows
an older price. The tick window is measured back from the newest tick of the
symbol, not from the wall clock, so replayed history still draws a sparkline.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Mapping

import redis
from redis.typing import EncodableT

from stock_platform.quotes import Quote
from stock_platform.storage.heartbeats import queue_stream_beat
from stock_platform.storage.postgres import PgConnection
from stock_platform.storage.redis_client import redis_client
from stock_platform.storage.redis_keys import RedisKeys

__all__ = ["TICK_WINDOW_MS", "RedisSink", "quotes_for_refill"]

logger = logging.getLogger(__name__)

TICK_WINDOW_MS = 5 * 60 * 1000
# A batch's pipeline carries every quote a task committed: more time to answer than a single command needs.
SOCKET_TIMEOUT_S = 5.0

# KEYS[1] latest hash; ARGV[1] event_time_ms, ARGV[2] ttl, ARGV[3..] field/value pairs.
# Day-level fields (day_high, day_low, open_price, prev_close) come only with quote snapshots; a trade that
# follows keeps the last snapshot's, so the watchlist can still show the change against the previous close.
# `volume` describes the record itself (trade size or day total), so it is replaced or removed.
_LATEST_LUA = """
local current = redis.call('HGET', KEYS[1], 'event_time_ms')
if (not current) or tonumber(current) < tonumber(ARGV[1]) then
    redis.call('HDEL', KEYS[1], 'volume')
    redis.call('HSET', KEYS[1], unpack(ARGV, 3))
    redis.call('EXPIRE', KEYS[1], ARGV[2])
    return 1
end
return 0
"""
# KEYS[1] ticks zset; ARGV[1] window ms, ARGV[2] ttl, ARGV[3..] score/member pairs.
_TICKS_LUA = """
for i = 3, #ARGV, 2 do
    -- One member per event time: a tick rebuilt from PostgreSQL (price rounded to cents) replaces, not joins.
    redis.call('ZREMRANGEBYSCORE', KEYS[1], ARGV[i], ARGV[i])
    redis.call('ZADD', KEYS[1], ARGV[i], ARGV[i + 1])
end
local newest = redis.call('ZREVRANGE', KEYS[1], 0, 0, 'WITHSCORES')
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. (tonumber(newest[2]) - tonumber(ARGV[1])))
redis.call('EXPIRE', KEYS[1], ARGV[2])
return redis.call('ZCARD', KEYS[1])
"""
_REFILL_SQL = """
SELECT symbol, price::float8, (EXTRACT(EPOCH FROM event_time) * 1000)::bigint, source, producer_id, seq, volume,
       day_high::float8, day_low::float8, open_price::float8, prev_close::float8
FROM stock_prices
WHERE event_time >= (SELECT max(event_time) FROM stock_prices) - %s * INTERVAL '1 millisecond'
ORDER BY symbol, event_time
"""


def _latest_fields(q: Quote, now_ms: int) -> list[str]:
    pairs: list[str] = []
    for name, value in q.to_dict().items():
        if value is not None:
            pairs += [name, str(value)]
    return pairs + ["updated_ms", str(now_ms)]


def _tick_member(q: Quote) -> str:
    return json.dumps({"t": q.event_time_ms, "p": q.price, "v": q.volume}, separators=(",", ":"))


def quotes_for_refill(conn: PgConnection, window_ms: int = TICK_WINDOW_MS) -> list[Quote]:
    """Stored quotes of the last `window_ms` before the newest one, to rebuild Redis after an outage."""
    with conn.cursor() as cur:
        cur.execute(_REFILL_SQL, (window_ms,))
        rows = cur.fetchall()
    conn.rollback()  # read-only: end the transaction so the sink's next batch starts clean
    return [
        Quote(symbol=r[0], price=r[1], event_time_ms=r[2], source=r[3] or "replay", producer_id=r[4] or "postgres",
              seq=r[5] or 0, volume=r[6], day_high=r[7], day_low=r[8], open_price=r[9], prev_close=r[10])
        for r in rows
    ]  # fmt: skip


class RedisSink:
    """Writes hot data to Redis in one pipeline per call; never lets a Redis failure escape."""

    def __init__(
        self, redis_url: str, keys: RedisKeys, ttl_seconds: int, window_ms: int = TICK_WINDOW_MS, refill_first: bool = True
    ) -> None:
        self.client = redis_client(redis_url, socket_timeout=SOCKET_TIMEOUT_S)
        self.keys = keys
        self.ttl = ttl_seconds
        self.window_ms = window_ms
        # The driver's sink starts by refilling: Redis may have been flushed or expired while the job was down.
        self.needs_refill = refill_first
        self._failing = False  # warn once per outage, on every sink (executors' sinks never refill)
        self._latest = self.client.register_script(_LATEST_LUA)
        self._ticks = self.client.register_script(_TICKS_LUA)

    def write_quotes(self, quotes: Iterable[Quote]) -> bool:
        """Latest quote, tick window and symbol set for these quotes, in one pipeline; False (logged) if Redis failed.

        Spark tasks call this for the quotes they just committed, and the driver for a refill.
        """
        now_ms = int(time.time() * 1000)
        by_symbol: dict[str, list[Quote]] = {}
        for q in quotes:
            by_symbol.setdefault(q.symbol, []).append(q)
        if not by_symbol:
            return True
        pipe = self.client.pipeline(transaction=False)
        for symbol, items in by_symbol.items():
            newest = max(items, key=lambda q: q.event_time_ms)
            self._latest(
                keys=[self.keys.latest(symbol)],
                args=[newest.event_time_ms, self.ttl, *_latest_fields(newest, now_ms)],
                client=pipe,
            )
            floor = newest.event_time_ms - self.window_ms
            args: list[EncodableT] = [self.window_ms, self.ttl]
            for q in items:
                if q.event_time_ms >= floor:
                    args += [q.event_time_ms, _tick_member(q)]
            self._ticks(keys=[self.keys.ticks(symbol)], args=args, client=pipe)
        pipe.sadd(self.keys.symbols, *by_symbol)
        pipe.expire(self.keys.symbols, self.ttl)
        return self._execute(pipe)

    def publish_batch(self, notice: Mapping[str, object], heartbeat: Mapping[str, object]) -> bool:
        """The driver's part once a batch committed: one published notice and the heartbeat; False if Redis failed."""
        pipe = self.client.pipeline(transaction=False)
        pipe.publish(self.keys.updates_channel, json.dumps(notice, default=str))
        self._queue_beat(pipe, heartbeat)
        return self._execute(pipe)

    def beat(self, fields: Mapping[str, object]) -> bool:
        """Refresh the stream's heartbeat hash (also when idle, so supervisors see a live job); False if Redis failed."""
        pipe = self.client.pipeline(transaction=False)
        self._queue_beat(pipe, fields)
        return self._execute(pipe)

    def _queue_beat(self, pipe: redis.client.Pipeline, fields: Mapping[str, object]) -> None:
        queue_stream_beat(pipe, self.keys, fields)

    def _execute(self, pipe: redis.client.Pipeline) -> bool:
        try:
            pipe.execute()
        except (redis.RedisError, OSError) as e:
            if not self._failing:
                logger.warning("redis write failed (%s); PostgreSQL is unaffected, Redis will be refilled", type(e).__name__)
            self._failing = self.needs_refill = True
            return False
        self._failing = False
        return True

    def available(self) -> bool:
        """True when Redis answers PING (checked before paying for a refill query)."""
        try:
            return bool(self.client.ping())
        except (redis.RedisError, OSError):
            return False

    def close(self) -> None:
        """Release the connection pool."""
        self.client.close()
