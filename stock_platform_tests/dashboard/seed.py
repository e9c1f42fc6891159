"""Seeding PostgreSQL and Redis the way the stream job would, for the dashboard tests."""

from __future__ import annotations

import json
import math
import time
from datetime import UTC, datetime, timedelta

import psycopg2
import psycopg2.extras
import redis

from stock_platform.config import Settings
from stock_platform.storage.heartbeats import PRODUCER, WORK_FIELDS, queue_producer_beat, queue_stream_beat
from stock_platform.storage.redis_keys import RedisKeys

__all__ = [
    "build_candles",
    "insert_ticks",
    "now_utc",
    "seed_daily_bars",
    "seed_dead_letter",
    "seed_heartbeat",
    "seed_hot_quote",
    "seed_run_failure",
    "seed_stream_batch",
    "seed_supervisor_decision",
]

_CANDLES_SQL = """
INSERT INTO stock_candles_1m (symbol, minute, open, high, low, close, volume, trade_count, first_event_time, last_event_time)
SELECT symbol, date_trunc('minute', event_time), (array_agg(price ORDER BY event_time))[1], max(price), min(price),
       (array_agg(price ORDER BY event_time DESC))[1], coalesce(sum(volume), 0), count(*), min(event_time), max(event_time)
FROM stock_prices WHERE symbol = %s GROUP BY 1, 2
ON CONFLICT (symbol, minute) DO NOTHING
"""


def now_utc() -> datetime:
    """Now as the database stores it: naive UTC, whole seconds."""
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def insert_ticks(
    dsn: str, symbol: str, count: int, end: datetime, step_s: float = 10.0, start_price: float = 100.0,
    drift: float = 0.05, prev_close: float | None = 99.0, volume: int | None = 100, noise: float = 0.0,
) -> list[tuple[datetime, float]]:  # fmt: skip
    """`count` ticks of `symbol`, `step_s` apart, ending at `end`, price rising by `drift` each; returns (time, price).

    `noise` adds a deterministic wobble of that amplitude (for charts that look like a market in screenshots).
    """
    rows = []
    points = []
    for i in range(count):
        t = end - timedelta(seconds=step_s * (count - 1 - i))
        wobble = noise * (math.sin(i / 9.0) + 0.5 * math.sin(i / 2.3) + 0.3 * math.sin(i * 1.7)) if noise else 0.0
        price = round(start_price + drift * i + wobble, 2)
        points.append((t, price))
        rows.append((symbol, price, volume, price + 1, price - 1, start_price, t, prev_close, "simulator", "test", i))
    conn = psycopg2.connect(dsn)
    with conn, conn.cursor() as cur:
        psycopg2.extras.execute_values(
            cur,
            "INSERT INTO stock_prices (symbol, price, volume, day_high, day_low, open_price, event_time, prev_close,"
            " source, producer_id, seq) VALUES %s",
            rows,
        )
    conn.close()
    return points


def build_candles(dsn: str, symbol: str) -> None:
    """Aggregate the stored ticks of `symbol` into 1-minute candles, as the stream job does."""
    conn = psycopg2.connect(dsn)
    with conn, conn.cursor() as cur:
        cur.execute(_CANDLES_SQL, (symbol,))
    conn.close()


def seed_daily_bars(dsn: str, symbol: str, days: int, last_day: datetime) -> None:
    """`days` daily bars of `symbol` ending at `last_day`, closes rising by 1 a day from 100."""
    rows = []
    for i in range(days):
        day = (last_day - timedelta(days=days - 1 - i)).date()
        close = 100.0 + i
        rows.append((symbol, day, close - 0.5, close + 1, close - 1, close, 1000 + i, 10, 390, True))
    conn = psycopg2.connect(dsn)
    with conn, conn.cursor() as cur:
        psycopg2.extras.execute_values(
            cur,
            "INSERT INTO stock_daily_bars (symbol, day, open, high, low, close, volume, trade_count, candle_count, verified)"
            " VALUES %s",
            rows,
        )
    conn.close()


def _client(settings: Settings) -> redis.Redis:
    return redis.Redis.from_url(settings.redis_url, decode_responses=True)


def seed_hot_quote(
    settings: Settings, symbol: str, price: float, prev_close: float | None, points: int = 30, step_ms: int = 5000,
    noise: float = 0.0,
) -> int:  # fmt: skip
    """A `latest` hash and `points` sparkline ticks of `symbol` ending now; returns the last event time in ms.

    The sparkline moves 0.1 a tick towards `price` (up if `price` is above `prev_close`); `noise` adds a wobble.
    """
    keys = RedisKeys(settings.redis_key_prefix)
    now_ms = int(time.time() * 1000)
    fields = {
        "symbol": symbol, "price": price, "volume": 1234, "day_high": price + 2, "day_low": price - 2,
        "open_price": price - 1, "prev_close": "" if prev_close is None else prev_close, "event_time_ms": now_ms,
        "source": "simulator", "updated_ms": now_ms,
    }  # fmt: skip
    trend = -0.1 if prev_close is not None and price < prev_close else 0.1
    client = _client(settings)
    pipe = client.pipeline()
    pipe.hset(keys.latest(symbol), mapping=fields)
    pipe.expire(keys.latest(symbol), settings.redis_ttl_seconds)
    for i in range(points):
        t = now_ms - step_ms * (points - 1 - i)
        wobble = noise * (math.sin(i / 4.0 + price) + 0.6 * math.sin(i * 1.3)) if i < points - 1 else 0.0
        member = json.dumps({"t": t, "p": round(price - trend * (points - 1 - i) + wobble, 2), "v": 10})
        pipe.zadd(keys.ticks(symbol), {member: t})
    pipe.expire(keys.ticks(symbol), settings.redis_ttl_seconds)
    pipe.sadd(keys.symbols, symbol)
    pipe.execute()
    client.close()
    return now_ms


def seed_heartbeat(
    settings: Settings, component: str, age_s: float | None, *, producer_id: str = "seed-producer", beat_age_s: float = 1.0,
    **fields: object,
) -> None:  # fmt: skip
    """A heartbeat of `component` (a producer's under `producer_id`) written `beat_age_s` ago, as its process writes it.

    Its last sign of work was `age_s` seconds ago; None: it has done none yet (its field is 0, as a new producer's).
    """
    now_ms = int(time.time() * 1000)
    beat_ms = now_ms - int(beat_age_s * 1000)
    last = 0 if age_s is None else now_ms - int(age_s * 1000)
    mapping = {"pid": 4242, "started_ms": now_ms - 600_000, "updated_ms": beat_ms, WORK_FIELDS[component]: last, **fields}
    keys = RedisKeys(settings.redis_key_prefix)
    client = _client(settings)
    with client.pipeline() as pipe:
        if component == PRODUCER:
            queue_producer_beat(pipe, keys, producer_id, {"producer_id": producer_id, **mapping}, beat_ms)
        else:
            queue_stream_beat(pipe, keys, mapping)
        pipe.execute()
    client.close()


def seed_dead_letter(dsn: str, topic: str, offset: int, reason: str, kind: str = "contract", age_s: float = 0.0) -> None:
    """One dead-letter row of `kind` with `reason`, received `age_s` seconds ago."""
    conn = psycopg2.connect(dsn)
    with conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO dead_letters (topic, kafka_partition, kafka_offset, message_key, raw_payload, reason, kind,"
            " received_at) VALUES (%s, 0, %s, 'AAPL', %s, %s, %s, %s)",
            (topic, offset, b"{not json", reason, kind, now_utc() - timedelta(seconds=age_s)),
        )
    conn.close()


def seed_run_failure(dsn: str, component: str, age_s: float, error: str) -> None:
    """One `run_failures` row of `component`'s job, failed `age_s` seconds ago (as `record_run_failures` writes it)."""
    conn = psycopg2.connect(dsn)
    with conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO run_failures (run_id, job_name, component, error, failed_at) VALUES (%s, %s, %s, %s, %s)",
            (f"run-{component}-{age_s}", f"{component}_job", component, error, now_utc() - timedelta(seconds=age_s)),
        )
    conn.close()


def seed_supervisor_decision(
    dsn: str, component: str, action: str, failures: int, reason: str, wait_s: float = 0.0, age_s: float = 0.0
) -> None:
    """`component`'s supervisor decision made `age_s` seconds ago, its launch due `wait_s` after it (as a tick stores it)."""
    decided = now_utc() - timedelta(seconds=age_s)
    next_launch = decided + timedelta(seconds=wait_s) if wait_s > 0 else None
    conn = psycopg2.connect(dsn)
    with conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO supervisor_decisions (component, decided_at, action, failures, last_error, next_launch_at, reason)"
            " VALUES (%s, %s, %s, %s, '', %s, %s)",
            (component, decided, action, failures, next_launch, reason),
        )
    conn.close()


def seed_stream_batch(dsn: str, topic: str, batch_id: int, end_offsets: object, inserted: int = 10) -> None:
    """One `stream_batches` row committed now with `end_offsets` stored as given."""
    conn = psycopg2.connect(dsn)
    with conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO stream_batches (query_id, batch_id, topic, start_offsets, end_offsets, rows_in, inserted,"
            " duplicates, dead_letters, duration_ms) VALUES ('q-test', %s, %s, '{}', %s, %s, %s, 0, 1, 50)",
            (batch_id, topic, json.dumps(end_offsets), inserted + 1, inserted),
        )
    conn.close()
