"""The walking skeleton: a quote published to the real Kafka broker reaches PostgreSQL and Redis through the real Spark job."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psycopg2
import pytest
import redis
from kafka import KafkaProducer

from stock_platform.config import Settings
from stock_platform.quotes import Quote
from stock_platform.storage.redis_keys import RedisKeys

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_quote_flows_from_kafka_through_spark_to_postgres_and_redis(platform_settings: Settings, clean_tables: str) -> None:
    now_ms = int(time.time() * 1000)
    quotes = [
        Quote(symbol="AAPL", price=189.12, event_time_ms=now_ms - 2000, source="simulator", producer_id="e2e", seq=1,
              volume=100, day_high=190.0, day_low=187.0, open_price=188.0, prev_close=187.5),
        Quote(symbol="MSFT", price=410.5, event_time_ms=now_ms - 1000, source="simulator", producer_id="e2e", seq=2, volume=7),
    ]  # fmt: skip
    producer = KafkaProducer(bootstrap_servers=platform_settings.kafka_bootstrap_servers, acks="all")
    for quote in quotes:
        producer.send(platform_settings.kafka_topic, key=quote.key, value=quote.to_json())
    producer.flush()
    producer.close()

    env = {**os.environ, **platform_settings.to_env()}
    result = subprocess.run(
        [sys.executable, "-m", "stock_platform.cli", "stream", "--available-now", "--starting-offsets", "earliest"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]

    with psycopg2.connect(platform_settings.postgres_dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT symbol, price::float, volume, producer_id, seq FROM stock_prices ORDER BY seq")
        assert cur.fetchall() == [("AAPL", 189.12, 100, "e2e", 1), ("MSFT", 410.5, 7, "e2e", 2)]

    client = redis.Redis.from_url(platform_settings.redis_url, decode_responses=True)
    keys = RedisKeys(platform_settings.redis_key_prefix)
    latest = client.hgetall(keys.latest("AAPL"))
    assert float(latest["price"]) == 189.12
    assert 0 < client.ttl(keys.latest("AAPL")) <= platform_settings.redis_ttl_seconds
    assert float(client.hgetall(keys.latest("MSFT"))["price"]) == 410.5
