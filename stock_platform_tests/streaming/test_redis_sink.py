"""The latest-quote hash keeps the day's fields of the last snapshot when a trade follows it."""

from __future__ import annotations

import time

import pytest
import redis

from stock_platform.config import Settings
from stock_platform.quotes import Quote
from stock_platform.storage.redis_keys import RedisKeys
from stock_platform.streaming.redis_sink import RedisSink

pytestmark = pytest.mark.integration


def test_a_trade_after_a_snapshot_keeps_the_previous_close(platform_settings: Settings) -> None:
    keys = RedisKeys(platform_settings.redis_key_prefix)
    sink = RedisSink(platform_settings.redis_url, keys, platform_settings.redis_ttl_seconds)
    now = int(time.time() * 1000)
    snapshot = Quote(symbol="AAPL", price=190.0, event_time_ms=now - 2000, source="simulator", producer_id="p", seq=1,
                     volume=5_000_000, day_high=191.0, day_low=188.0, open_price=189.0, prev_close=187.5)  # fmt: skip
    trade = Quote(symbol="AAPL", price=190.4, event_time_ms=now - 1000, source="simulator", producer_id="p", seq=2, volume=100)
    trade_without_volume = Quote(symbol="AAPL", price=190.5, event_time_ms=now, source="simulator", producer_id="p", seq=3)
    try:
        assert sink.write_quotes([snapshot])
        assert sink.write_quotes([trade])
        latest = redis.Redis.from_url(platform_settings.redis_url, decode_responses=True).hgetall(keys.latest("AAPL"))
        assert float(latest["price"]) == 190.4 and int(latest["volume"]) == 100
        assert float(latest["prev_close"]) == 187.5 and float(latest["day_high"]) == 191.0
        assert sink.write_quotes([trade_without_volume])
        latest = redis.Redis.from_url(platform_settings.redis_url, decode_responses=True).hgetall(keys.latest("AAPL"))
        assert float(latest["price"]) == 190.5 and "volume" not in latest and float(latest["prev_close"]) == 187.5
    finally:
        sink.close()
