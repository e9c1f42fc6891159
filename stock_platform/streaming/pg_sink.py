"""The PostgreSQL side of a micro-batch: each Spark task writes its span in one transaction; the driver the batch row.

A span is one Kafka topic-partition's share of a batch. Its task writes
prices, candles, dead letters and a `stream_task_commits` row naming the
offsets it covered, all in one transaction, so a task that Spark runs again
(a retry, a lost executor, a batch replayed from the checkpoint) finds the row
and writes nothing twice. Every statement is idempotent besides: rows go
through COPY into a session temp table and then `INSERT ... ON CONFLICT
(symbol, event_time) DO NOTHING RETURNING`, the 1-minute candles are upserted
from exactly the rows that statement inserted, and dead letters conflict on
their Kafka coordinates, so re-reading the topic with a new checkpoint leaves
every table as it was too. The driver records the batch in `stream_batches`
once all its tasks committed.

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

import io
import json
import logging
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import psycopg2
from psycopg2.extras import execute_values

from stock_platform.quotes import Quote
from stock_platform.storage.postgres import PgConnection, connect
from stock_platform.streaming.parse import DeadLetter, ParsedBatch
from stock_platform.streaming.summary import BatchSummary

__all__ = ["CANDLE_RECOMPUTE_SQL", "PostgresSink", "SinkResult", "TaskSpan", "copy_text"]

logger = logging.getLogger(__name__)

_STAGE_DDL = """
CREATE TEMP TABLE IF NOT EXISTS stream_stage (
    symbol TEXT, price NUMERIC, volume BIGINT, day_high NUMERIC, day_low NUMERIC, open_price NUMERIC,
    prev_close NUMERIC, event_time_ms BIGINT, source TEXT, producer_id TEXT, seq BIGINT
) ON COMMIT DELETE ROWS
"""
_STAGE_COPY = (
    "COPY stream_stage (symbol, price, volume, day_high, day_low, open_price, prev_close,"
    " event_time_ms, source, producer_id, seq) FROM STDIN"
)
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
_INSERT_AND_CANDLES = """
WITH ins AS (
    INSERT INTO stock_prices (symbol, price, volume, day_high, day_low, open_price, prev_close,
                              event_time, source, producer_id, seq)
    SELECT symbol, price, volume, day_high, day_low, open_price, prev_close,
           TIMESTAMP '1970-01-01 00:00:00' + event_time_ms * INTERVAL '1 millisecond', source, producer_id, seq
    FROM stream_stage
    ORDER BY symbol, event_time_ms
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
""".replace("{candles}", _CANDLES_FROM.format(source="ins").strip())
# The candles as they must be, recomputed from stock_prices alone (used by tests and data-quality checks).
CANDLE_RECOMPUTE_SQL = _CANDLES_FROM.format(source="stock_prices")
_DEAD_LETTERS = """
INSERT INTO dead_letters (topic, kafka_partition, kafka_offset, kafka_timestamp, message_key, raw_payload, reason)
VALUES %s ON CONFLICT (topic, kafka_partition, kafka_offset) DO NOTHING
"""
_DEAD_LETTER_ROW = "(%s, %s, %s, TIMESTAMP '1970-01-01 00:00:00' + %s * INTERVAL '1 millisecond', %s, %s, %s)"
_BATCH_ROW = """
INSERT INTO stream_batches (query_id, batch_id, topic, start_offsets, end_offsets, rows_in, inserted,
                            duplicates, dead_letters, duration_ms)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (query_id, batch_id) DO NOTHING
"""
# A task claims its span first: a second attempt of the same task (Spark's retry, or a speculative copy) waits
# here on the first one's uncommitted row and then finds it, so the two can never both write.
_CLAIM_SPAN = """
INSERT INTO stream_task_commits (query_id, batch_id, topic, kafka_partition, start_offset, end_offset, rows_in)
VALUES (%s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (query_id, batch_id, topic, kafka_partition, start_offset) DO NOTHING
RETURNING 1
"""
_CLAIMED_SPAN = """
SELECT end_offset, inserted, duplicates, dead_letters, candles FROM stream_task_commits
WHERE query_id = %s AND batch_id = %s AND topic = %s AND kafka_partition = %s AND start_offset = %s
"""
_FINISH_SPAN = """
UPDATE stream_task_commits
SET end_offset = %s, rows_in = %s, inserted = %s, duplicates = %s, dead_letters = %s, candles = %s,
    committed_at = now() AT TIME ZONE 'UTC'
WHERE query_id = %s AND batch_id = %s AND topic = %s AND kafka_partition = %s AND start_offset = %s
"""
LOCK_TIMEOUT_S = 120
IDLE_IN_TRANSACTION_S = 300
# One round trip before the claim. A second attempt waiting on a hung first one's claim gives up (Spark
# retries it), a first attempt whose task stalls mid-span frees its claim, and sorting the staged rows
# (by key, by minute) stays in memory.
_SPAN_SETUP = f"""
SET LOCAL lock_timeout = '{LOCK_TIMEOUT_S}s';
SET LOCAL idle_in_transaction_session_timeout = '{IDLE_IN_TRANSACTION_S}s';
SET LOCAL work_mem = '64MB';
{_STAGE_DDL}
"""
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


@dataclass(frozen=True)
class TaskSpan:
    """The share of a micro-batch that one Spark task writes: one Kafka topic-partition, offsets [start, end)."""

    query_id: str
    batch_id: int
    topic: str
    partition: int
    start_offset: int
    end_offset: int
    rows_in: int

    def key(self) -> tuple[str, int, str, int, int]:
        """The span's primary key in `stream_task_commits`."""
        return (self.query_id, self.batch_id, self.topic, self.partition, self.start_offset)


@dataclass(frozen=True)
class SinkResult:
    """What one span did to PostgreSQL (for a replayed span: what its first, committed run did)."""

    inserted: int
    duplicates: int
    dead_letters: int
    candles_touched: int
    replayed: bool


def _num(value: float | int | None) -> str:
    return "\\N" if value is None else repr(value)


def copy_text(quotes: Sequence[Quote]) -> str:
    """The quotes as PostgreSQL COPY text rows for `stream_stage` (tab separated, \\N for null)."""
    lines = []
    for q in quotes:
        producer = q.producer_id.translate(_ESCAPES)
        lines.append(
            f"{q.symbol}\t{q.price!r}\t{_num(q.volume)}\t{_num(q.day_high)}\t{_num(q.day_low)}\t{_num(q.open_price)}\t"
            f"{_num(q.prev_close)}\t{q.event_time_ms}\t{q.source}\t{producer}\t{q.seq}\n"
        )
    return "".join(lines)


def _dead_letter_rows(dead: Sequence[DeadLetter]) -> list[tuple]:
    rows = []
    for d in dead:
        r = d.record
        key = None if r.key is None else r.key.decode("utf-8", "replace").replace("\x00", "")
        payload = None if r.value is None else psycopg2.Binary(r.value)
        rows.append((r.topic, r.partition, r.offset, r.timestamp_ms, key, payload, d.reason.replace("\x00", "")))
    return rows


class PostgresSink:
    """Writes spans of micro-batches to PostgreSQL idempotently; keeps one connection for its process's life.

    On an executor one sink lives in each Python worker and serves every task that worker runs.
    """

    def __init__(self, dsn: str, application_name: str = "stock-platform-stream") -> None:
        self.dsn = dsn
        self.application_name = application_name
        self._conn: PgConnection | None = None

    def connection(self) -> PgConnection:
        """The open connection (reconnecting after a failure)."""
        if self._conn is None or self._conn.closed:
            self._conn = connect(self.dsn, self.application_name)
        return self._conn

    def close(self) -> None:
        """Close the connection."""
        if self._conn is not None and not self._conn.closed:
            self._conn.close()
        self._conn = None

    def write_span(self, span: TaskSpan, chunks: Iterable[ParsedBatch]) -> SinkResult:
        """Write one span, arriving as parsed chunks, in one transaction that also records the span.

        A span already recorded with the same end offset was committed by an earlier run of the
        task: its chunks are consumed (the caller may still want them for Redis) and nothing is
        written. Chunk k is copied into the stage by a worker thread (psycopg2 releases the GIL
        while PostgreSQL works) while the caller's iterator parses chunk k+1; one statement then
        inserts the span's rows and upserts their candles, so the candle rows are locked only
        from that statement to the commit, always in (symbol, minute) order.
        """
        conn = self.connection()
        try:
            with conn, conn.cursor() as cur:
                cur.execute(_SPAN_SETUP)
                stored = self._claim(cur, span)
                if stored is not None:
                    for _part in chunks:
                        pass
                    logger.info("span %s was already committed; skipping its PostgreSQL writes", span.key())
                    return stored
                with ThreadPoolExecutor(max_workers=1, thread_name_prefix="pg-sink") as pool:
                    futures = [pool.submit(self._stage_part, cur, part) for part in chunks]
                results = [f.result() for f in futures]  # the first error, if any, is raised here
                valid, in_batch_duplicates, dead = (sum(r[i] for r in results) for i in range(3))
                inserted = candles = 0
                if valid:
                    cur.execute(_INSERT_AND_CANDLES)
                    inserted, candles = (int(n) for n in cur.fetchone())
                duplicates = valid - inserted + in_batch_duplicates
                cur.execute(_FINISH_SPAN, (span.end_offset, span.rows_in, inserted, duplicates, dead, candles, *span.key()))
        except psycopg2.Error:
            self.close()
            raise
        return SinkResult(inserted, duplicates, dead, candles, False)

    def record_batch(self, query_id: str, batch_id: int, summary: BatchSummary, duration_ms: int | None) -> bool:
        """The driver's ledger row for a whole batch, written after every task committed; False if already there."""
        topics = sorted({t.topic for t in summary.tasks}) or [""]
        start, end = summary.offsets()
        conn = self.connection()
        try:
            with conn, conn.cursor() as cur:
                cur.execute(
                    _BATCH_ROW,
                    (query_id, batch_id, ",".join(topics), json.dumps(start), json.dumps(end), summary.rows_in,
                     summary.inserted, summary.duplicates, summary.dead_letters, duration_ms),
                )  # fmt: skip
                return cur.rowcount == 1
        except psycopg2.Error:
            self.close()
            raise

    @staticmethod
    def _claim(cur: psycopg2.extensions.cursor, span: TaskSpan) -> SinkResult | None:
        """Record the span as being written; the stored result instead when an earlier run committed it.

        A span recorded with another end offset (a checkpoint edited by hand re-planned the batch)
        is written again, idempotently, and its row updated.
        """
        cur.execute(_CLAIM_SPAN, (*span.key(), span.end_offset, span.rows_in))
        if cur.fetchone() is not None:
            return None
        cur.execute(_CLAIMED_SPAN, span.key())
        end_offset, inserted, duplicates, dead, candles = cur.fetchone()
        if end_offset == span.end_offset:
            return SinkResult(inserted, duplicates, dead, candles, True)
        logger.warning("span %s was recorded up to offset %s, now %s; writing it again idempotently",
                       span.key(), end_offset, span.end_offset)  # fmt: skip
        return None

    @staticmethod
    def _stage_part(cur: psycopg2.extensions.cursor, part: ParsedBatch) -> tuple[int, int, int]:
        """One chunk's quotes into the stage (COPY) and its dead letters: (valid, duplicates, dead)."""
        if part.quotes:
            cur.copy_expert(_STAGE_COPY, io.StringIO(copy_text(part.quotes)))
        if part.dead_letters:
            execute_values(cur, _DEAD_LETTERS, _dead_letter_rows(part.dead_letters), template=_DEAD_LETTER_ROW)
        return len(part.quotes), part.duplicates_in_batch, len(part.dead_letters)
