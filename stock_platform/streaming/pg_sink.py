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
every table as it was too; ticks of a day that compaction closed are refused
(`storage.closed_days`), so not even a replay of an old tape adds to candles
twice. A span that PostgreSQL refuses for its data is written again in
isolation (`span_writer`): the refused records become dead letters, the rest
commits. The driver records the batch in `stream_batches` once all its tasks
committed. The SQL and the candle rules are in `sink_sql`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import psycopg2

from stock_platform.storage.postgres import PgConnection, connect
from stock_platform.streaming import sink_sql
from stock_platform.streaming.parse import ParsedBatch
from stock_platform.streaming.sink_sql import CANDLE_RECOMPUTE_SQL
from stock_platform.streaming.span_writer import DATA_ERRORS, SpanWriter, copy_text, first_line
from stock_platform.streaming.summary import BatchSummary

__all__ = ["CANDLE_RECOMPUTE_SQL", "PostgresSink", "SinkResult", "TaskSpan", "copy_text"]

logger = logging.getLogger(__name__)

# A replayed span's records that are dead letters, so Redis gets what PostgreSQL got. All kinds: a re-run
# parses with a later wall clock, which can pass a record the first run judged too far in the future.
_REFUSED_IN_SPAN = """
SELECT kafka_offset FROM dead_letters
WHERE topic = %s AND kafka_partition = %s AND kafka_offset >= %s AND kafka_offset < %s
"""


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
    # Kafka offsets of valid quotes that PostgreSQL did not take (conflicts, closed days, refused records).
    refused_offsets: frozenset[int] = field(default_factory=frozenset)


class PostgresSink:
    """Writes spans of micro-batches to PostgreSQL idempotently; keeps one connection for its process's life.

    On an executor one sink lives in each Python worker and serves every task that worker runs.
    """

    def __init__(self, dsn: str, application_name: str = "stock-platform-stream") -> None:
        self.dsn = dsn
        self.application_name = application_name
        self._conn: PgConnection | None = None

    def connection(self) -> PgConnection:
        """The open connection (reconnecting after a failure), with the sink's timeouts set."""
        if self._conn is None or self._conn.closed:
            conn = connect(self.dsn, self.application_name)
            with conn, conn.cursor() as cur:
                cur.execute(sink_sql.SESSION_SETUP)
            self._conn = conn
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
        from that statement to the commit, always in (symbol, minute) order. When PostgreSQL
        refuses the span for its data, the span is written again in isolation (`SpanWriter.isolate`).
        """
        parts: list[ParsedBatch] = []

        def kept() -> Iterator[ParsedBatch]:
            for part in chunks:
                parts.append(part)
                yield part

        remaining = kept()
        try:
            return self._write(span, remaining, isolate=False)
        except DATA_ERRORS as e:
            # The transaction was rolled back and the connection is fine. Any chunk not handed over yet is
            # parsed now, so the second pass covers the whole span.
            for _part in remaining:
                pass
            logger.warning("span %s: PostgreSQL refused its data (%s); writing it again record by record where needed",
                           span.key(), first_line(e))  # fmt: skip
            try:
                return self._write(span, parts, isolate=True)
            except psycopg2.Error:
                self.close()
                raise
        except psycopg2.Error:
            self.close()
            raise

    def _write(self, span: TaskSpan, parts: Iterable[ParsedBatch], *, isolate: bool) -> SinkResult:
        conn = self.connection()
        with conn, conn.cursor() as cur:
            cur.execute(sink_sql.SPAN_SETUP)
            stored = self._claim(cur, span)
            if stored is not None:
                for _part in parts:
                    pass
                logger.info("span %s was already committed; skipping its PostgreSQL writes", span.key())
                cur.execute(_REFUSED_IN_SPAN, (span.topic, span.partition, span.start_offset, span.end_offset))
                return dataclasses.replace(stored, refused_offsets=frozenset(o for (o,) in cur.fetchall()))
            writer = SpanWriter(cur)
            if isolate:
                chunks = list(parts)
                writer.look_up_days(chunks)
                for part in chunks:
                    writer.isolate(part)
                if writer.refused_by_database and writer.refused_by_database == writer.valid:
                    # Every record refused looks like a table-wide problem (a constraint, a full column) rather
                    # than bad records; they are kept as dead letters (their payloads can be replayed) and the
                    # job goes on, but say it loudly: the health page shows 'database' dead letters in red too.
                    logger.error("PostgreSQL refused all %d valid records of span %s; check the table, not the data",
                                 writer.valid, span.key())  # fmt: skip
            else:
                with ThreadPoolExecutor(max_workers=1, thread_name_prefix="pg-sink") as pool:
                    futures = [pool.submit(writer.stage, part) for part in parts]
                for future in futures:
                    future.result()  # the first error, if any, is raised here
                writer.flush()
            cur.execute(sink_sql.FINISH_SPAN, (span.end_offset, span.rows_in, writer.inserted, writer.duplicates,
                                               writer.dead, writer.candles, *span.key()))  # fmt: skip
        return SinkResult(writer.inserted, writer.duplicates, writer.dead, writer.candles, False,
                          frozenset(writer.refused_offsets))  # fmt: skip

    def record_batch(self, query_id: str, batch_id: int, summary: BatchSummary, duration_ms: int | None) -> bool:
        """The driver's ledger row for a whole batch, written after every task committed; False if already there."""
        topics = sorted({t.topic for t in summary.tasks}) or [""]
        start, end = summary.offsets()
        conn = self.connection()
        try:
            with conn, conn.cursor() as cur:
                cur.execute(
                    sink_sql.BATCH_ROW,
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
        cur.execute(sink_sql.CLAIM_SPAN, (*span.key(), span.end_offset, span.rows_in))
        if cur.fetchone() is not None:
            return None
        cur.execute(sink_sql.CLAIMED_SPAN, span.key())
        end_offset, inserted, duplicates, dead, candles = cur.fetchone()
        if end_offset == span.end_offset:
            return SinkResult(inserted, duplicates, dead, candles, True)
        logger.warning("span %s was recorded up to offset %s, now %s; writing it again idempotently",
                       span.key(), end_offset, span.end_offset)  # fmt: skip
        return None
