"""The `foreachBatch` function: one Kafka micro-batch parsed, written to PostgreSQL then Redis, and reported.

Order matters for correctness: PostgreSQL commits first (one idempotent
transaction, see `pg_sink`); Redis, a cache, follows and may fail without
failing the batch; Spark commits the batch to its checkpoint only after this
function returns, so a crash anywhere replays the batch, which changes nothing.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg2

from stock_platform.quotes import Quote
from stock_platform.streaming.parse import ParsedBatch, parse_chunks, records_from_pandas, sort_records, summarise
from stock_platform.streaming.pg_sink import PostgresSink, SinkResult
from stock_platform.streaming.progress import BatchProgress, ProgressReporter
from stock_platform.streaming.redis_sink import RedisSink, quotes_for_refill

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

__all__ = ["BatchProcessor", "read_query_id"]

logger = logging.getLogger(__name__)

# Records parsed per chunk: big enough that a COPY + INSERT is efficient, small enough that
# parsing chunk k+1 overlaps writing chunk k for most of a batch.
CHUNK_ROWS = 20_000


def read_query_id(checkpoint: Path) -> str:
    """The streaming query's id, which Spark keeps in `<checkpoint>/metadata` across restarts."""
    try:
        return str(json.loads((checkpoint / "metadata").read_text().splitlines()[0])["id"])
    except (OSError, ValueError, KeyError, IndexError):
        return f"checkpoint:{checkpoint}"


def _lag(now_ms: int, then_ms: int | None) -> int | None:
    return None if then_ms is None else now_ms - then_ms


class BatchProcessor:
    """Callable given to `foreachBatch`; holds the sinks' connections for the job's life."""

    def __init__(self, checkpoint: Path, pg: PostgresSink, redis_sink: RedisSink | None, reporter: ProgressReporter) -> None:
        self.checkpoint = checkpoint
        self.pg = pg
        self.redis = redis_sink
        self.reporter = reporter
        self.started_ms = int(time.time() * 1000)
        self.last: BatchProgress | None = None
        self._query_id: str | None = None

    @property
    def query_id(self) -> str:
        """Spark's query id for this checkpoint (read once, on the first batch)."""
        if self._query_id is None:
            self._query_id = read_query_id(self.checkpoint)
        return self._query_id

    def use_query_id(self, query_id: str) -> None:
        """Take the id from the started query (the same one the checkpoint keeps across restarts)."""
        self._query_id = query_id

    def __call__(self, batch_df: DataFrame, batch_id: int) -> None:
        """Process one micro-batch (Spark calls this on the driver)."""
        from pyspark.sql import functions as F  # noqa: N812 - Spark's own convention

        t0 = time.monotonic()
        frame = batch_df.select(
            "key", "value", "topic", "partition", "offset", F.unix_millis("timestamp").alias("timestamp_ms")
        ).toPandas()
        ordered = sort_records(records_from_pandas(frame))
        batch = summarise(ordered)
        self.process(batch, int(batch_id), t0, parse_chunks(ordered, CHUNK_ROWS))

    def process(
        self, batch: ParsedBatch, batch_id: int, t0: float | None = None, chunks: Iterable[ParsedBatch] | None = None
    ) -> BatchProgress | None:
        """Write a batch and report it; None for an empty batch.

        Either `batch` is fully parsed (`parse_batch`), or it is a summary
        (`summarise`) and `chunks` parses it lazily, so the sink overlaps
        parsing with writing.
        """
        t0 = time.monotonic() if t0 is None else t0
        if batch.rows_in == 0:
            return None
        if chunks is None:
            result = self.pg.write_batch(batch, self.query_id, batch_id)
        else:
            result = self.pg.write_chunks(batch, chunks, self.query_id, batch_id)
        committed_ms = int(time.time() * 1000)
        redis_ok = self._write_redis(batch, batch_id, result, committed_ms)
        progress = BatchProgress(
            query_id=self.query_id,
            batch_id=batch_id,
            rows_in=batch.rows_in,
            valid=len(batch.quotes),
            inserted=result.inserted,
            duplicates=result.duplicates,
            dead_letters=result.dead_letters,
            candles=result.candles_touched,
            duration_ms=int((time.monotonic() - t0) * 1000),
            lag_event_ms=_lag(committed_ms, batch.max_event_ms),
            lag_kafka_ms=_lag(committed_ms, batch.max_kafka_ms),
            lag_kafka_max_ms=_lag(committed_ms, batch.min_kafka_ms),
            redis_ok=redis_ok,
            replayed=result.replayed,
            committed_ms=committed_ms,
        )
        if not result.replayed:
            self.pg.record_duration(self.query_id, batch_id, progress.duration_ms)
        self.reporter.report(progress)
        self.last = progress
        return progress

    def _write_redis(self, batch: ParsedBatch, batch_id: int, result: SinkResult, committed_ms: int) -> bool:
        if self.redis is None:
            return False
        refill: list[Quote] = []
        if self.redis.needs_refill and self.redis.available():
            try:
                refill = quotes_for_refill(self.pg.connection(), self.redis.window_ms)
            except psycopg2.Error as e:  # the batch is committed; the refill waits for the next one
                logger.warning("could not read the refill from PostgreSQL (%s)", type(e).__name__)
                self.pg.close()
                self.redis.beat(self.heartbeat_fields())
                return False
            logger.info("refilling Redis from PostgreSQL with %d quotes", len(refill))
        notice = {"batch_id": batch_id, "inserted": result.inserted, "max_event_time_ms": batch.max_event_ms}
        heartbeat = {
            **self.heartbeat_fields(), "batch_id": batch_id, "last_batch_ms": committed_ms,
            "rows_in": batch.rows_in, "inserted": result.inserted, "duplicates": result.duplicates,
            "dead_letters": result.dead_letters, "lag_ms": _lag(committed_ms, batch.max_event_ms),
        }  # fmt: skip
        return self.redis.write_batch(batch.quotes, notice, heartbeat, refill)

    def heartbeat_fields(self) -> dict[str, object]:
        """The liveness part of the heartbeat (pid, query, start and beat times), refreshed even when idle."""
        return {
            "pid": os.getpid(), "query_id": self._query_id or "", "started_ms": self.started_ms,
            "updated_ms": int(time.time() * 1000), "checkpoint": str(self.checkpoint),
        }  # fmt: skip
