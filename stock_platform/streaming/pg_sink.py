"""The PostgreSQL side of a micro-batch: prices, candles, dead letters and the batch record in one transaction.

`foreachBatch` is at-least-once, so every statement here is idempotent: rows go
through COPY into a session temp table and then `INSERT ... ON CONFLICT
(symbol, event_time) DO NOTHING RETURNING`, the 1-minute candles are upserted
from exactly the rows that statement inserted, dead letters conflict on their
Kafka coordinates, and the batch row on (query_id, batch_id). Replaying a
batch, restarting from the checkpoint or re-reading the topic therefore
leaves every table as it was.

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

import dataclasses
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

__all__ = ["CANDLE_RECOMPUTE_SQL", "PostgresSink", "SinkResult", "copy_text"]

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
    SELECT * FROM agg
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
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


@dataclass(frozen=True)
class SinkResult:
    """What one batch did to PostgreSQL."""

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


def _offset_maps(batch: ParsedBatch) -> tuple[dict, dict]:
    """The batch's first and next offsets as `{topic: {"partition": offset}}` (the JSONB columns' shape)."""
    start = {t: {str(p): span[0] for p, span in sorted(parts.items())} for t, parts in batch.offsets.items()}
    end = {t: {str(p): span[1] for p, span in sorted(parts.items())} for t, parts in batch.offsets.items()}
    return start, end


class PostgresSink:
    """Writes micro-batches to PostgreSQL idempotently; keeps one connection for the job's life."""

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

    def write_batch(self, batch: ParsedBatch, query_id: str, batch_id: int, duration_ms: int | None = None) -> SinkResult:
        """Write one parsed batch in one transaction; a batch already recorded is skipped whole."""
        summary = dataclasses.replace(batch, quotes=[], dead_letters=[], duplicates_in_batch=0)
        return self.write_chunks(summary, [batch], query_id, batch_id, duration_ms)

    def write_chunks(
        self, batch: ParsedBatch, chunks: Iterable[ParsedBatch], query_id: str, batch_id: int, duration_ms: int | None = None
    ) -> SinkResult:
        """Write a batch arriving as parsed chunks, in one transaction, overlapping parsing with writing.

        `batch` carries the offsets and counts (`parse.summarise`); each chunk is
        absorbed into it as it arrives, so on return it holds the whole batch.
        Chunk k is written by a worker thread (psycopg2 releases the GIL while
        PostgreSQL works) while the caller's iterator parses chunk k+1.
        """
        conn = self.connection()
        try:
            with conn, conn.cursor() as cur:
                if self._already_committed(cur, batch, query_id, batch_id):
                    for part in chunks:
                        batch.absorb(part)
                    logger.info("batch %s of query %s was already committed; skipping its PostgreSQL writes", batch_id, query_id)
                    return SinkResult(0, len(batch.quotes) + batch.duplicates_in_batch, len(batch.dead_letters), 0, True)
                with ThreadPoolExecutor(max_workers=1, thread_name_prefix="pg-sink") as pool:
                    futures = []
                    for part in chunks:
                        batch.absorb(part)
                        futures.append(pool.submit(self._write_quotes, cur, part.quotes))
                results = [f.result() for f in futures]  # the first error, if any, is raised here
                inserted, candles = sum(r[0] for r in results), sum(r[1] for r in results)
                if batch.dead_letters:
                    execute_values(cur, _DEAD_LETTERS, _dead_letter_rows(batch.dead_letters), template=_DEAD_LETTER_ROW)
                duplicates = len(batch.quotes) - inserted + batch.duplicates_in_batch
                self._record_batch(cur, batch, query_id, batch_id, inserted, duplicates, duration_ms)
        except psycopg2.Error:
            self.close()
            raise
        return SinkResult(inserted, duplicates, len(batch.dead_letters), candles, False)

    def record_duration(self, query_id: str, batch_id: int, duration_ms: int) -> None:
        """Store the batch's whole duration (PostgreSQL and Redis), known only after its transaction."""
        conn = self.connection()
        try:
            with conn, conn.cursor() as cur:
                cur.execute(
                    "UPDATE stream_batches SET duration_ms = %s WHERE query_id = %s AND batch_id = %s",
                    (duration_ms, query_id, batch_id),
                )
        except psycopg2.Error as e:  # bookkeeping only: the batch itself is committed
            logger.warning("could not record the duration of batch %s: %s", batch_id, type(e).__name__)
            self.close()

    @staticmethod
    def _already_committed(cur: psycopg2.extensions.cursor, batch: ParsedBatch, query_id: str, batch_id: int) -> bool:
        """True when this very batch (same query, id and offsets) is recorded: Spark re-ran it after a crash.

        Offsets are compared too, so a tampered checkpoint that re-plans a batch
        id over other offsets still goes through the (idempotent) writes.
        """
        cur.execute(
            "SELECT start_offsets, end_offsets FROM stream_batches WHERE query_id = %s AND batch_id = %s", (query_id, batch_id)
        )
        row = cur.fetchone()
        if row is None:
            return False
        start, end = _offset_maps(batch)
        if (row[0], row[1]) == (start, end):
            return True
        logger.warning("batch %s of query %s was recorded with other offsets; writing it again idempotently", batch_id, query_id)
        return False

    @staticmethod
    def _write_quotes(cur: psycopg2.extensions.cursor, quotes: Sequence[Quote]) -> tuple[int, int]:
        if not quotes:
            return 0, 0
        # Sorting ~100k staged rows (by key, then by minute for the candles) stays in memory.
        cur.execute("SET LOCAL work_mem = '64MB'")
        cur.execute(_STAGE_DDL)
        cur.copy_expert(_STAGE_COPY, io.StringIO(copy_text(quotes)))
        cur.execute(_INSERT_AND_CANDLES)
        inserted, candles = cur.fetchone()
        cur.execute("TRUNCATE stream_stage")  # the next chunk of the same transaction starts empty
        return int(inserted), int(candles)

    @staticmethod
    def _record_batch(
        cur: psycopg2.extensions.cursor, batch: ParsedBatch, query_id: str, batch_id: int,
        inserted: int, duplicates: int, duration_ms: int | None,
    ) -> None:  # fmt: skip
        topics = sorted(batch.offsets) or [""]
        start, end = _offset_maps(batch)
        cur.execute(
            _BATCH_ROW,
            (query_id, batch_id, ",".join(topics), json.dumps(start), json.dumps(end), batch.rows_in, inserted,
             duplicates, len(batch.dead_letters), duration_ms),
        )  # fmt: skip
