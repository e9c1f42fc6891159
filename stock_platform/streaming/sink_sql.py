"""The SQL of the stream job's PostgreSQL sink (`pg_sink`, `span_writer`), kept apart from the code that runs it.

Candle rules (documented here because the dashboard and the daily compaction
rely on them):
- open/close are the prices at the earliest/latest event time of the minute,
  kept right across batches by comparing first_event_time/last_event_time;
- trade_count counts every stored tick (trade or snapshot) of the minute;
- volume sums only trade-shaped records (no day_high: WebSocket trades and the
  simulator's trades). Snapshot records (REST-shaped, with day_high/day_low)
  carry the day's cumulative volume, which would count the same shares many
  times over, so they contribute price but not volume.
"""

from __future__ import annotations

__all__ = [
    "BATCH_ROW",
    "CANDLE_RECOMPUTE_SQL",
    "CLAIMED_SPAN",
    "CLAIM_SPAN",
    "CONFLICTS",
    "DEAD_LETTERS",
    "DEAD_LETTER_ROW",
    "FINISH_SPAN",
    "INSERT_AND_CANDLES",
    "SESSION_SETUP",
    "SPAN_SETUP",
    "STAGE_CLEAR",
    "STAGE_COPY",
]

# Per connection. A statement that runs this long is stuck, not busy (a span of 200,000 rows takes seconds);
# a lock wait this long means a hung writer holds the claim or a candle (Spark retries the task); a
# transaction left idle this long belongs to a task that stalled mid-span and frees what it holds.
STATEMENT_TIMEOUT_S = 300
LOCK_TIMEOUT_S = 120
IDLE_IN_TRANSACTION_S = 300
SESSION_SETUP = f"""
SET statement_timeout = '{STATEMENT_TIMEOUT_S}s';
SET lock_timeout = '{LOCK_TIMEOUT_S}s';
SET idle_in_transaction_session_timeout = '{IDLE_IN_TRANSACTION_S}s';
"""
# Per span transaction: sorting the staged rows (by key, by minute) stays in memory; the stage exists.
SPAN_SETUP = """
SET LOCAL work_mem = '64MB';
CREATE TEMP TABLE IF NOT EXISTS stream_stage (
    symbol TEXT, price NUMERIC, volume BIGINT, day_high NUMERIC, day_low NUMERIC, open_price NUMERIC,
    prev_close NUMERIC, event_time_ms BIGINT, source TEXT, producer_id TEXT, seq BIGINT, kafka_offset BIGINT
) ON COMMIT DELETE ROWS
"""
STAGE_COPY = (
    "COPY stream_stage (symbol, price, volume, day_high, day_low, open_price, prev_close,"
    " event_time_ms, source, producer_id, seq, kafka_offset) FROM STDIN"
)
STAGE_CLEAR = "DELETE FROM stream_stage"
_EVENT_TIME = "TIMESTAMP '1970-01-01 00:00:00' + {ms} * INTERVAL '1 millisecond'"
# What a 1-minute candle is, over any set of ticks ({source}): open/close by event time, volume of trades only
# (snapshots carry the day's running total), every tick counted. The sink applies it to the rows a batch just
# inserted, the recomputation to all of stock_prices; the test and the Dagster check compare the two.
_CANDLES_FROM = """
SELECT symbol, date_trunc('minute', event_time) AS minute,
       (array_agg(price ORDER BY event_time))[1] AS open, max(price) AS high, min(price) AS low,
       (array_agg(price ORDER BY event_time DESC))[1] AS close,
       coalesce(sum(volume) FILTER (WHERE day_high IS NULL), 0) AS volume,
       count(*)::INTEGER AS trade_count, min(event_time) AS first_event_time, max(event_time) AS last_event_time
FROM {source} GROUP BY 1, 2
"""
# Event times become naive UTC TIMESTAMPs (the seed's column type) by exact integer arithmetic.
INSERT_AND_CANDLES = """
WITH ins AS (
    INSERT INTO stock_prices (symbol, price, volume, day_high, day_low, open_price, prev_close,
                              event_time, source, producer_id, seq)
    SELECT symbol, price, volume, day_high, day_low, open_price, prev_close, {event_time}, source, producer_id, seq
    FROM stream_stage
    -- Of several staged rows with one key (records with other market data), the lowest offset is inserted.
    ORDER BY symbol, event_time_ms, kafka_offset
    ON CONFLICT (symbol, event_time) DO NOTHING
    RETURNING symbol, price, volume, day_high, event_time
), agg AS (
    {candles}
), up AS (
    INSERT INTO stock_candles_1m AS c (symbol, minute, open, high, low, close, volume, trade_count,
                                       first_event_time, last_event_time)
    -- One lock order for every writer: two tasks sharing a minute (a Kafka partition split between tasks)
    -- queue on its candle instead of deadlocking.
    SELECT * FROM agg ORDER BY symbol, minute
    ON CONFLICT (symbol, minute) DO UPDATE SET
        open = CASE WHEN EXCLUDED.first_event_time < c.first_event_time THEN EXCLUDED.open ELSE c.open END,
        close = CASE WHEN EXCLUDED.last_event_time > c.last_event_time THEN EXCLUDED.close ELSE c.close END,
        high = GREATEST(c.high, EXCLUDED.high),
        low = LEAST(c.low, EXCLUDED.low),
        volume = c.volume + EXCLUDED.volume,
        trade_count = c.trade_count + EXCLUDED.trade_count,
        first_event_time = LEAST(c.first_event_time, EXCLUDED.first_event_time),
        last_event_time = GREATEST(c.last_event_time, EXCLUDED.last_event_time)
    RETURNING 1
)
SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM up)
""".replace("{event_time}", _EVENT_TIME.format(ms="event_time_ms")).replace(
    "{candles}", _CANDLES_FROM.format(source="ins").strip()
)
# Staged rows that `ON CONFLICT DO NOTHING` skipped because a stored quote has the same key but other market
# data (the columns of `Quote.market_data`, rounded as the table rounds them). Run as its own statement after
# the insert, so it also sees a row that a concurrent task committed while the insert waited for it.
CONFLICTS = """
SELECT s.kafka_offset, p.price::float8 FROM stream_stage s
JOIN stock_prices p ON p.symbol = s.symbol AND p.event_time = {event_time}
WHERE (p.price, p.volume, p.day_high, p.day_low, p.open_price, p.prev_close) IS DISTINCT FROM
      (round(s.price, 2), s.volume, round(s.day_high, 2), round(s.day_low, 2), round(s.open_price, 2),
       round(s.prev_close, 2))
""".replace("{event_time}", _EVENT_TIME.format(ms="s.event_time_ms"))
# The candles as they must be, recomputed from stock_prices alone (used by tests and data-quality checks).
CANDLE_RECOMPUTE_SQL = _CANDLES_FROM.format(source="stock_prices")
DEAD_LETTERS = """
INSERT INTO dead_letters (topic, kafka_partition, kafka_offset, kafka_timestamp, message_key, raw_payload, reason, kind)
VALUES %s ON CONFLICT (topic, kafka_partition, kafka_offset) DO NOTHING
"""
DEAD_LETTER_ROW = f"(%s, %s, %s, {_EVENT_TIME.format(ms='%s')}, %s, %s, %s, %s)"
BATCH_ROW = """
INSERT INTO stream_batches (query_id, batch_id, topic, start_offsets, end_offsets, rows_in, inserted,
                            duplicates, dead_letters, duration_ms)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (query_id, batch_id) DO NOTHING
"""
# A task claims its span first: a second attempt of the same task (Spark's retry, or a speculative copy) waits
# here on the first one's uncommitted row and then finds it, so the two can never both write.
CLAIM_SPAN = """
INSERT INTO stream_task_commits (query_id, batch_id, topic, kafka_partition, start_offset, end_offset, rows_in)
VALUES (%s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (query_id, batch_id, topic, kafka_partition, start_offset) DO NOTHING
RETURNING 1
"""
CLAIMED_SPAN = """
SELECT end_offset, inserted, duplicates, dead_letters, candles FROM stream_task_commits
WHERE query_id = %s AND batch_id = %s AND topic = %s AND kafka_partition = %s AND start_offset = %s
"""
FINISH_SPAN = """
UPDATE stream_task_commits
SET end_offset = %s, rows_in = %s, inserted = %s, duplicates = %s, dead_letters = %s, candles = %s,
    committed_at = now() AT TIME ZONE 'UTC'
WHERE query_id = %s AND batch_id = %s AND topic = %s AND kafka_partition = %s AND start_offset = %s
"""
