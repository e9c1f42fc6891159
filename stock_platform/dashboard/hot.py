"""The dashboard's Redis reads: the hot data the stream job keeps for the last five minutes, and the heartbeats.

A whole watchlist is read in one pipelined round trip (a `latest` hash and a
`ticks` range per symbol), which is what keeps the overview under a few
milliseconds however many tiles it shows. Key names come from `RedisKeys`.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import redis

from stock_platform.dashboard.connections import redis_call
from stock_platform.storage.heartbeats import Heartbeats, read_heartbeats
from stock_platform.storage.redis_keys import RedisKeys

__all__ = ["HotQuote", "heartbeats", "hot_quotes"]

logger = logging.getLogger(__name__)

SPARKLINE_WINDOW_MS = 5 * 60 * 1000
# The stream job trims `ticks` to five minutes; this bounds the read if a writer ever forgets to.
MAX_POINTS = 1000


@dataclass(frozen=True)
class HotQuote:
    """The newest quote of one symbol from Redis, with its last five minutes of (ms, price) points."""

    symbol: str
    price: float
    event_time_ms: int
    prev_close: float | None
    day_high: float | None
    day_low: float | None
    source: str
    points: list[tuple[int, float]]


def _float(value: str | None) -> float | None:
    if value in (None, "", "None", "null"):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _points(members: list[str]) -> list[tuple[int, float]]:
    """(ms, price) of the ticks in the five minutes before the newest; members arrive sorted by time."""
    try:
        # One C-level parse of the whole set instead of one json.loads per member.
        ticks = json.loads("[" + ",".join(members) + "]")
        points = [(int(t["t"]), float(t["p"])) for t in ticks]
    except (ValueError, KeyError, TypeError):
        points = []
        for member in members:  # one odd member must not blank the sparkline: parse one by one
            try:
                tick = json.loads(member)
                points.append((int(tick["t"]), float(tick["p"])))
            except (ValueError, KeyError, TypeError):
                continue
    if points:
        since = points[-1][0] - SPARKLINE_WINDOW_MS
        points = [p for p in points if p[0] >= since]
    return points


def _quote(symbol: str, fields: dict[str, str], members: list[str]) -> HotQuote | None:
    price = _float(fields.get("price"))
    event_time = _float(fields.get("event_time_ms"))
    if price is None or event_time is None:
        return None
    return HotQuote(
        symbol=symbol,
        price=price,
        event_time_ms=int(event_time),
        prev_close=_float(fields.get("prev_close")),
        day_high=_float(fields.get("day_high")),
        day_low=_float(fields.get("day_low")),
        source=fields.get("source") or "",
        points=_points(members),
    )


def hot_quotes(redis_url: str, prefix: str, symbols: tuple[str, ...]) -> dict[str, HotQuote]:
    """The Redis quote of each symbol that has one, in one round trip; symbols without one are left out.

    The sparkline is the five minutes before the symbol's newest tick (not before
    now), so replayed or paused data still draws a line.
    """
    keys = RedisKeys(prefix)

    def read(client: redis.Redis) -> list[Any]:
        pipe = client.pipeline(transaction=False)
        for symbol in symbols:
            pipe.hgetall(keys.latest(symbol))
            pipe.zrange(keys.ticks(symbol), -MAX_POINTS, -1)
        return pipe.execute()

    replies = redis_call(redis_url, read)
    out: dict[str, HotQuote] = {}
    for i, symbol in enumerate(symbols):
        quote = _quote(symbol, replies[2 * i] or {}, replies[2 * i + 1] or [])
        if quote is not None:
            out[symbol] = quote
    return out


def heartbeats(redis_url: str, prefix: str) -> Heartbeats:
    """The stream's heartbeat and every beating producer's (`storage.heartbeats.read_heartbeats`)."""
    keys = RedisKeys(prefix)
    now_ms = int(time.time() * 1000)
    return redis_call(redis_url, lambda client: read_heartbeats(client, keys, now_ms))
