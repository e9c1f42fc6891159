"""Asset checks: the invariants every table must keep, evaluated in SQL against the real database.

Each check says in its metadata how many rows break the rule and shows a few
of them, so a red check in the UI is enough to find the bad data.
"""

import logging
import time
from typing import Any

import dagster as dg

from stock_platform.config import load_settings
from stock_platform.orchestration.assets import dead_letters, stock_candles_1m, stock_prices
from stock_platform.orchestration.daily import stock_daily_bars
from stock_platform.orchestration.resources import PostgresResource, RedisResource
from stock_platform.storage.heartbeats import is_stale, read_heartbeats

__all__ = [
    "FRESHNESS_SECONDS",
    "all_checks",
    "daily_bars_ohlc_valid",
    "daily_bars_reconcile_with_candles",
    "dead_letters_per_hour",
    "stock_candles_ohlc_valid",
    "stock_prices_fresh",
    "stock_prices_unique",
    "table_checks_job",
    "table_checks_schedule",
]

logger = logging.getLogger(__name__)

# While the producer's heartbeat is alive, the newest tick must be younger than this: a few triggers plus
# the producer's 30 s poll interval, well under the Redis hot-data TTL of 5 minutes.
FRESHNESS_SECONDS = 180

_OHLC_BAD = "NOT (low <= open AND open <= high AND low <= close AND close <= high)"


def _rows(postgres: PostgresResource, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with postgres.connect() as conn, conn.cursor() as cur:
        cur.execute(query, params)
        return cur.fetchall()


def _feed_running(redis: RedisResource) -> bool:
    """Whether any producer beats (by the shared stale rule): only then is fresh data expected."""
    now = time.time()
    client = redis.client()
    try:
        producers = read_heartbeats(client, redis.key_layout(), int(now * 1000)).producers
    finally:
        client.close()
    return any(not is_stale(beat, now) for beat in producers.values())


def _sample(rows: list[tuple[Any, ...]]) -> dg.MetadataValue:
    return dg.MetadataValue.json([[str(v) for v in row] for row in rows[:5]])


@dg.asset_check(asset=stock_prices, description="No two ticks share (symbol, event_time): the stream's writes are idempotent.")
def stock_prices_unique(postgres: PostgresResource) -> dg.AssetCheckResult:
    """Count (symbol, event_time) pairs that occur more than once."""
    rows = _rows(
        postgres,
        "SELECT symbol, event_time, count(*) FROM stock_prices GROUP BY symbol, event_time HAVING count(*) > 1 LIMIT 100",
    )
    return dg.AssetCheckResult(passed=not rows, metadata={"duplicate_keys": len(rows), "sample": _sample(rows)})


@dg.asset_check(asset=stock_prices, description="While the producer runs, the newest tick arrived in the last few minutes.")
def stock_prices_fresh(postgres: PostgresResource, redis: RedisResource) -> dg.AssetCheckResult:
    """Pass when the feed is stopped (no producer heartbeat) or the newest ingestion is recent enough.

    The newest ingestion is the last stream batch that inserted rows (`stream_batches`, indexed on
    `committed_at`), not `max(ingestion_time)`, which would scan all of `stock_prices` on every check.
    """
    running = _feed_running(redis)
    age = _rows(
        postgres,
        "SELECT EXTRACT(EPOCH FROM (now() AT TIME ZONE 'UTC') - max(committed_at)) FROM stream_batches WHERE inserted > 0",
    )[0][0]
    age_s = None if age is None else float(age)
    if not running:
        return dg.AssetCheckResult(
            passed=True,
            metadata={"feed_running": False, "newest_ingestion_age_s": age_s if age_s is not None else -1.0},
            description="feed not running (no producer heartbeat): freshness not expected",
        )
    passed = age_s is not None and age_s <= FRESHNESS_SECONDS
    return dg.AssetCheckResult(
        passed=passed,
        metadata={
            "feed_running": True,
            "newest_ingestion_age_s": age_s if age_s is not None else -1.0,
            "max_age_s": FRESHNESS_SECONDS,
        },
    )


@dg.asset_check(asset=stock_candles_1m, description="Every candle keeps low <= open, close <= high.")
def stock_candles_ohlc_valid(postgres: PostgresResource) -> dg.AssetCheckResult:
    """Count candles whose open or close lies outside [low, high]."""
    rows = _rows(postgres, f"SELECT symbol, minute, open, high, low, close FROM stock_candles_1m WHERE {_OHLC_BAD} LIMIT 100")  # noqa: S608 - constant SQL
    return dg.AssetCheckResult(passed=not rows, metadata={"bad_candles": len(rows), "sample": _sample(rows)})


@dg.asset_check(asset=stock_daily_bars, description="Every daily bar keeps low <= open, close <= high.")
def daily_bars_ohlc_valid(postgres: PostgresResource) -> dg.AssetCheckResult:
    """Count daily bars whose open or close lies outside [low, high]."""
    rows = _rows(postgres, f"SELECT symbol, day, open, high, low, close FROM stock_daily_bars WHERE {_OHLC_BAD} LIMIT 100")  # noqa: S608 - constant SQL
    return dg.AssetCheckResult(passed=not rows, metadata={"bad_bars": len(rows), "sample": _sample(rows)})


_RECONCILE_SQL = """
WITH c AS (
    SELECT symbol, minute::date AS day, max(high) AS high, min(low) AS low,
           coalesce(sum(volume), 0) AS volume, sum(trade_count) AS trade_count, count(*) AS candle_count,
           (array_agg(open ORDER BY minute))[1] AS open, (array_agg(close ORDER BY minute DESC))[1] AS close
    FROM stock_candles_1m
    WHERE minute >= (SELECT min(day) FROM stock_daily_bars)
    GROUP BY 1, 2
)
SELECT b.symbol, b.day, b.high, c.high, b.low, c.low, b.trade_count, c.trade_count
FROM stock_daily_bars b LEFT JOIN c ON c.symbol = b.symbol AND c.day = b.day
WHERE c.symbol IS NULL OR b.open <> c.open OR b.high <> c.high OR b.low <> c.low OR b.close <> c.close
   OR b.volume <> c.volume OR b.trade_count <> c.trade_count OR b.candle_count <> c.candle_count
LIMIT 100
"""


@dg.asset_check(asset=stock_daily_bars, description="Each daily bar equals the aggregate of that day's 1-minute candles.")
def daily_bars_reconcile_with_candles(postgres: PostgresResource) -> dg.AssetCheckResult:
    """Count bars that differ from (or lack) the candles they were built from."""
    rows = _rows(postgres, _RECONCILE_SQL)
    return dg.AssetCheckResult(passed=not rows, metadata={"mismatched_bars": len(rows), "sample": _sample(rows)})


@dg.asset_check(asset=dead_letters, description="Dead letters in the last hour stay under DEAD_LETTERS_WARN_PER_HOUR (warns).")
def dead_letters_per_hour(postgres: PostgresResource) -> dg.AssetCheckResult:
    """Warn (not fail) when the last hour produced more dead letters than the threshold."""
    threshold = load_settings().dead_letters_warn_per_hour
    count = _rows(
        postgres,
        "SELECT count(*) FROM dead_letters WHERE received_at >= (now() AT TIME ZONE 'UTC') - interval '1 hour'",
    )[0][0]
    return dg.AssetCheckResult(
        passed=count <= threshold,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"dead_letters_last_hour": int(count), "threshold": threshold},
    )


def all_checks() -> list[dg.AssetChecksDefinition]:
    """Every asset check, for the Definitions."""
    return [
        stock_prices_unique,
        stock_prices_fresh,
        stock_candles_ohlc_valid,
        daily_bars_ohlc_valid,
        daily_bars_reconcile_with_candles,
        dead_letters_per_hour,
    ]


# The cheap checks of the tables the stream writes, on their own: compaction runs them only once a night, and a
# stall or a burst of dead letters should turn a light red within minutes, not by morning. The uniqueness check
# scans the whole table, which the UNIQUE constraint already guarantees; it stays with the nightly compaction.
table_checks_job = dg.define_asset_job(
    "check_stream_tables",
    selection=dg.AssetSelection.checks(stock_prices_fresh, dead_letters_per_hour),
    description="Run the asset checks of stock_prices and dead_letters (without materialising anything).",
)
table_checks_schedule = dg.ScheduleDefinition(
    job=table_checks_job, cron_schedule="*/15 * * * *", default_status=dg.DefaultScheduleStatus.RUNNING
)
