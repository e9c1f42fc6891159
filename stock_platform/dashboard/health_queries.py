"""PostgreSQL reads behind the pipeline-health page: freshness, throughput, offsets, dead letters.

The newest tick per symbol uses a loose index scan (a recursive walk of
`idx_symbol_time`, one probe per symbol) instead of `GROUP BY symbol`, which
would read every row of a table with millions of ticks.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from stock_platform.dashboard.cache import ttl_cache
from stock_platform.dashboard.connections import pg_cursor
from stock_platform.storage.stream_offsets import COMMITTED_OFFSETS_SQL, merge_committed_offsets, parse_offsets

__all__ = ["committed_offsets", "dead_letter_summary", "last_event_per_symbol", "parse_offsets", "rows_per_minute"]

logger = logging.getLogger(__name__)

CACHE_SECONDS = 2.0

_LAST_EVENT_SQL = """
WITH RECURSIVE syms AS (
    (SELECT symbol FROM stock_prices ORDER BY symbol LIMIT 1)
    UNION ALL
    SELECT (SELECT p.symbol FROM stock_prices p WHERE p.symbol > syms.symbol ORDER BY p.symbol LIMIT 1)
    FROM syms WHERE syms.symbol IS NOT NULL
)
SELECT l.symbol, l.event_time, l.ingestion_time, l.price::float8,
       extract(epoch FROM (now() AT TIME ZONE 'UTC') - l.event_time)::float8 AS age_s
FROM syms
CROSS JOIN LATERAL (
    SELECT p.symbol, p.event_time, p.ingestion_time, p.price FROM stock_prices p
    WHERE p.symbol = syms.symbol ORDER BY p.event_time DESC LIMIT 1
) AS l
WHERE syms.symbol IS NOT NULL
ORDER BY l.symbol
"""

# Rows the stream job inserted per minute, from its own per-batch log (indexed on committed_at).
_ROWS_PER_MINUTE_SQL = """
SELECT date_trunc('minute', committed_at) AS minute, sum(inserted)::bigint AS inserted,
       sum(duplicates)::bigint AS duplicates, sum(dead_letters)::bigint AS dead_letters
FROM stream_batches
WHERE committed_at >= (now() AT TIME ZONE 'UTC') - %(window)s::interval
GROUP BY 1 ORDER BY 1
"""

_DEAD_COUNT_SQL = """
SELECT count(*), count(*) FILTER (WHERE received_at >= (now() AT TIME ZONE 'UTC') - interval '1 hour')
FROM dead_letters
"""

_DEAD_LATEST_SQL = """
SELECT received_at, reason, kafka_partition, kafka_offset, message_key, topic
FROM dead_letters ORDER BY received_at DESC, id DESC LIMIT %(limit)s
"""


@ttl_cache(CACHE_SECONDS)
def last_event_per_symbol(dsn: str) -> pd.DataFrame:
    """Each symbol's newest tick time, when it was ingested, its price, and its age in seconds."""
    with pg_cursor(dsn) as cur:
        cur.execute(_LAST_EVENT_SQL)
        rows = cur.fetchall()
    return pd.DataFrame.from_records(rows, columns=["symbol", "event_time", "ingestion_time", "price", "age_s"])


@ttl_cache(CACHE_SECONDS)
def rows_per_minute(dsn: str, minutes: int = 30) -> pd.DataFrame:
    """Rows inserted, duplicates and dead letters per minute over the last `minutes`, from `stream_batches`."""
    with pg_cursor(dsn) as cur:
        cur.execute(_ROWS_PER_MINUTE_SQL, {"window": f"{int(minutes)} minutes"})
        rows = cur.fetchall()
    return pd.DataFrame.from_records(rows, columns=["minute", "inserted", "duplicates", "dead_letters"])


@ttl_cache(CACHE_SECONDS)
def committed_offsets(dsn: str, topic: str, batches: int = 200) -> tuple[dict[int, int], Any]:
    """Partition -> next offset the stream job committed on `topic` (over its last `batches`), and when (None if never)."""
    with pg_cursor(dsn) as cur:
        cur.execute(COMMITTED_OFFSETS_SQL, {"topic": topic, "batches": batches})
        rows = cur.fetchall()
    if not rows:
        return {}, None
    return merge_committed_offsets([raw for raw, _ in rows], topic), rows[0][1]


@ttl_cache(CACHE_SECONDS)
def dead_letter_summary(dsn: str, limit: int = 10) -> tuple[int, int, pd.DataFrame]:
    """Dead letters in total, in the last hour, and the newest `limit` with their reasons."""
    with pg_cursor(dsn) as cur:
        cur.execute(_DEAD_COUNT_SQL)
        total, last_hour = cur.fetchone()
        cur.execute(_DEAD_LATEST_SQL, {"limit": limit})
        rows = cur.fetchall()
    latest = pd.DataFrame.from_records(rows, columns=["received_at", "reason", "partition", "offset", "key", "topic"])
    return int(total), int(last_hour), latest
