"""The dashboard's PostgreSQL reads of market data: parameterised SQL, short-lived caching.

Every query is an index range scan on `(symbol, time)` (the seed's
`idx_symbol_time`, the candles' primary key) so a page stays fast with tens of
millions of ticks. Chart ranges are anchored on a symbol's newest candle, not
on the wall clock, so a chart still shows the last day of data over a weekend
or after the pipeline was stopped. Results are pandas frames with float prices
(DECIMALs are cast in SQL) and naive-UTC timestamps, as stored.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import pandas as pd

from stock_platform.dashboard.cache import ttl_cache
from stock_platform.dashboard.connections import pg_cursor
from stock_platform.dashboard.symbols import ChartRange

__all__ = [
    "CANDLE_COLUMNS",
    "candles",
    "latest_quotes",
    "latest_ticks",
    "previous_closes",
    "recent_ticks",
    "symbol_in_database",
]

logger = logging.getLogger(__name__)

CACHE_SECONDS = 2.0
CANDLE_COLUMNS = ["time", "open", "high", "low", "close", "volume"]
_ORIGIN = "2000-01-03 00:00:00"  # a Monday at midnight: buckets of 15 min, 1 h or a day start on round times

_LATEST_SQL = """
SELECT l.symbol, l.price::float8, l.volume, l.day_high::float8, l.day_low::float8, l.open_price::float8,
       l.prev_close::float8, l.event_time
FROM unnest(%(symbols)s::text[]) AS s(symbol)
CROSS JOIN LATERAL (
    SELECT p.symbol, p.price, p.volume, p.day_high, p.day_low, p.open_price, p.prev_close, p.event_time
    FROM stock_prices p WHERE p.symbol = s.symbol ORDER BY p.event_time DESC LIMIT 1
) AS l
"""

_RECENT_SQL = """
SELECT s.symbol, t.event_time, t.price::float8, t.volume
FROM unnest(%(symbols)s::text[]) AS s(symbol)
CROSS JOIN LATERAL (
    SELECT max(p.event_time) AS last FROM stock_prices p WHERE p.symbol = s.symbol
) AS m
CROSS JOIN LATERAL (
    SELECT p.event_time, p.price, p.volume FROM stock_prices p
    WHERE p.symbol = s.symbol AND p.event_time >= m.last - %(window)s::interval
    ORDER BY p.event_time
) AS t
"""

_CANDLES_1M_SQL = """
WITH a AS (SELECT max(minute) AS last FROM stock_candles_1m WHERE symbol = %(symbol)s)
SELECT c.minute, c.open::float8, c.high::float8, c.low::float8, c.close::float8, c.volume
FROM a JOIN stock_candles_1m c ON c.symbol = %(symbol)s AND c.minute > a.last - %(span)s::interval AND c.minute <= a.last
ORDER BY c.minute
"""

_CANDLES_BUCKET_SQL = """
WITH a AS (SELECT max(minute) AS last FROM stock_candles_1m WHERE symbol = %(symbol)s)
SELECT date_bin(%(bucket)s::interval, c.minute, %(origin)s::timestamp) AS t,
       (array_agg(c.open ORDER BY c.minute))[1]::float8, max(c.high)::float8, min(c.low)::float8,
       (array_agg(c.close ORDER BY c.minute DESC))[1]::float8, sum(c.volume)::bigint
FROM a JOIN stock_candles_1m c ON c.symbol = %(symbol)s AND c.minute > a.last - %(span)s::interval AND c.minute <= a.last
GROUP BY 1 ORDER BY 1
"""

# When the stream job has not written candles yet (or for data loaded by other tools): build them from the ticks.
_CANDLES_FROM_TICKS_SQL = """
WITH a AS (SELECT max(event_time) AS last FROM stock_prices WHERE symbol = %(symbol)s)
SELECT date_bin(%(bucket)s::interval, p.event_time, %(origin)s::timestamp) AS t,
       (array_agg(p.price ORDER BY p.event_time))[1]::float8, max(p.price)::float8, min(p.price)::float8,
       (array_agg(p.price ORDER BY p.event_time DESC))[1]::float8, coalesce(sum(p.volume), 0)::bigint
FROM a JOIN stock_prices p ON p.symbol = %(symbol)s AND p.event_time > a.last - %(span)s::interval AND p.event_time <= a.last
GROUP BY 1 ORDER BY 1
"""

# Compacted daily bars, then the days compaction has not reached yet (today, at least) aggregated from the
# 1-minute candles, so a long range ends at the newest data; the last column says which is which.
_DAILY_SQL = """
WITH a AS (SELECT max(day) AS last FROM stock_daily_bars WHERE symbol = %(symbol)s),
bars AS (
    SELECT b.day::timestamp AS day, b.open, b.high, b.low, b.close, b.volume, TRUE AS compacted
    FROM a JOIN stock_daily_bars b ON b.symbol = %(symbol)s AND b.day > a.last - %(days)s AND b.day <= a.last
),
recent AS (
    SELECT date_trunc('day', c.minute) AS day,
           (array_agg(c.open ORDER BY c.minute))[1] AS open, max(c.high) AS high, min(c.low) AS low,
           (array_agg(c.close ORDER BY c.minute DESC))[1] AS close, coalesce(sum(c.volume), 0) AS volume,
           FALSE AS compacted
    FROM a JOIN stock_candles_1m c ON c.symbol = %(symbol)s AND c.minute >= a.last + 1
    GROUP BY 1
),
days AS (SELECT * FROM bars UNION ALL SELECT * FROM recent)
SELECT day, open::float8, high::float8, low::float8, close::float8, volume, compacted
FROM days WHERE day > (SELECT max(day) FROM days) - make_interval(days => %(days)s)
ORDER BY day
"""

# When a quote carries no previous close (simulated or replayed data): the last 1-minute close before
# the day of the symbol's newest candle.
_PREVIOUS_CLOSE_SQL = """
SELECT s.symbol, c.close::float8
FROM unnest(%(symbols)s::text[]) AS s(symbol)
CROSS JOIN LATERAL (SELECT max(minute) AS last FROM stock_candles_1m WHERE symbol = s.symbol) AS m
CROSS JOIN LATERAL (
    SELECT close FROM stock_candles_1m
    WHERE symbol = s.symbol AND minute < date_trunc('day', m.last) ORDER BY minute DESC LIMIT 1
) AS c
"""

_TICKS_SQL = """
SELECT event_time, price::float8, volume, day_high::float8, day_low::float8, open_price::float8,
       prev_close::float8, source, ingestion_time
FROM stock_prices WHERE symbol = %(symbol)s ORDER BY event_time DESC LIMIT %(limit)s
"""


def _frame(rows: list[tuple], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame.from_records(rows, columns=columns)


def _fetch(dsn: str, query: str, params: dict[str, object]) -> list[tuple]:
    with pg_cursor(dsn) as cur:
        cur.execute(query, params)
        return cur.fetchall()


@ttl_cache(CACHE_SECONDS)
def latest_quotes(dsn: str, symbols: tuple[str, ...]) -> pd.DataFrame:
    """The newest stored quote of each symbol (the watchlist's fallback when Redis has nothing)."""
    columns = ["symbol", "price", "volume", "day_high", "day_low", "open_price", "prev_close", "event_time"]
    return _frame(_fetch(dsn, _LATEST_SQL, {"symbols": list(symbols)}), columns)


@ttl_cache(CACHE_SECONDS)
def recent_ticks(dsn: str, symbols: tuple[str, ...], window: timedelta = timedelta(minutes=5)) -> pd.DataFrame:
    """Each symbol's ticks in the `window` before its newest one (the fallback sparkline)."""
    rows = _fetch(dsn, _RECENT_SQL, {"symbols": list(symbols), "window": window})
    return _frame(rows, ["symbol", "event_time", "price", "volume"])


@ttl_cache(CACHE_SECONDS)
def candles(dsn: str, symbol: str, chart_range: ChartRange) -> tuple[pd.DataFrame, str]:
    """OHLCV candles of `symbol` over `chart_range`, and where they came from (for the chart's caption).

    Daily bars for the long ranges when compaction has built them, else 1-minute
    candles (merged into the range's bucket), else candles built from raw ticks.
    """
    if chart_range.use_daily_bars:
        rows = _fetch(dsn, _DAILY_SQL, {"symbol": symbol, "days": chart_range.span.days})
        if len(rows) >= 2:
            pending = sum(1 for row in rows if not row[-1])
            label = "daily bars" + (f" ({pending} newest day(s) from 1-minute candles, not compacted yet)" if pending else "")
            return _frame([row[:-1] for row in rows], CANDLE_COLUMNS), label
    params = {"symbol": symbol, "span": chart_range.span, "bucket": chart_range.bucket, "origin": _ORIGIN}
    one_minute = chart_range.bucket == timedelta(minutes=1)
    rows = _fetch(dsn, _CANDLES_1M_SQL if one_minute else _CANDLES_BUCKET_SQL, params)
    label = "1-minute candles" if one_minute else f"{_bucket_label(chart_range.bucket)} candles (from 1-minute candles)"
    if not rows:
        rows = _fetch(dsn, _CANDLES_FROM_TICKS_SQL, params)
        label = f"{_bucket_label(chart_range.bucket)} candles built from raw ticks (no stored candles yet)"
    return _frame(rows, CANDLE_COLUMNS), label


@ttl_cache(CACHE_SECONDS)
def previous_closes(dsn: str, symbols: tuple[str, ...]) -> dict[str, float]:
    """Each symbol's last close of the previous day from the 1-minute candles (symbols without one are left out)."""
    return dict(_fetch(dsn, _PREVIOUS_CLOSE_SQL, {"symbols": list(symbols)}))


@ttl_cache(CACHE_SECONDS)
def latest_ticks(dsn: str, symbol: str, limit: int = 50) -> pd.DataFrame:
    """The newest `limit` stored ticks of `symbol`, newest first (the symbol view's table)."""
    columns = ["event_time", "price", "volume", "day_high", "day_low", "open_price", "prev_close", "source", "ingestion_time"]
    return _frame(_fetch(dsn, _TICKS_SQL, {"symbol": symbol, "limit": limit}), columns)


@ttl_cache(CACHE_SECONDS)
def symbol_in_database(dsn: str, symbol: str) -> bool:
    """True when PostgreSQL holds at least one tick or candle of `symbol`."""
    rows = _fetch(
        dsn,
        "SELECT EXISTS (SELECT 1 FROM stock_prices WHERE symbol = %(s)s)"
        " OR EXISTS (SELECT 1 FROM stock_candles_1m WHERE symbol = %(s)s)",
        {"s": symbol},
    )
    return bool(rows[0][0])


def _bucket_label(bucket: timedelta) -> str:
    minutes = int(bucket.total_seconds() // 60)
    if minutes % 1440 == 0:
        return f"{minutes // 1440}-day"
    if minutes % 60 == 0:
        return f"{minutes // 60}-hour"
    return f"{minutes}-minute"
