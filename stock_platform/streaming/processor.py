"""The `foreachBatch` function on the driver: send the batch's work to the executors, then keep the books.

The driver never holds the batch's records. It runs `tasks.task_writer` over
the micro-batch with `mapInArrow`, so each Spark task parses, validates and
writes its own share (PostgreSQL, then Redis) and returns one small summary;
the driver collects only those summaries. It then records the batch in
`stream_batches`, publishes the batch notice and heartbeat to Redis, refills
Redis from PostgreSQL when a task missed it, and reports progress.

Order matters for correctness: each task commits its PostgreSQL transaction
before its Redis write; the driver's `stream_batches` row follows every
task's commit; Spark commits the batch to its checkpoint only after this
function returns, so a crash anywhere replays the batch, and the tasks' span
ledger makes the replay a no-op.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import psycopg2

from stock_platform.streaming.pg_sink import PostgresSink
from stock_platform.streaming.progress import BatchProgress, ProgressReporter
from stock_platform.streaming.redis_sink import RedisSink, quotes_for_refill
from stock_platform.streaming.summary import TASK_SUMMARY_SCHEMA, BatchSummary, TaskSummary
from stock_platform.streaming.tasks import TaskConfig, kafka_columns, task_writer

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame

__all__ = ["BatchProcessor", "TaskWriterFactory"]

logger = logging.getLogger(__name__)

# How long the first batch waits for `start()` to hand over the query id.
QUERY_ID_WAIT_S = 120.0
# Builds the function each task runs; tests wrap `task_writer` to inject faults into real tasks.
TaskWriterFactory = Callable[[TaskConfig], Callable[[Iterable["pa.RecordBatch"]], Iterable["pa.RecordBatch"]]]


def _lag(now_ms: int, then_ms: int | None) -> int | None:
    return None if then_ms is None else now_ms - then_ms


class BatchProcessor:
    """Callable given to `foreachBatch`; holds the driver's connections for the job's life."""

    def __init__(
        self, checkpoint: str, task_config: TaskConfig, pg: PostgresSink, redis_sink: RedisSink | None,
        reporter: ProgressReporter, writer_factory: TaskWriterFactory = task_writer,
    ) -> None:  # fmt: skip
        self.checkpoint = checkpoint
        self.task_config = task_config  # query_id and batch_id are filled in per batch
        self.pg = pg
        self.redis = redis_sink
        self.reporter = reporter
        self.writer_factory = writer_factory
        self.started_ms = int(time.time() * 1000)
        self.last: BatchProgress | None = None
        self._query_id: str | None = None
        self._query_known = threading.Event()

    @property
    def query_id(self) -> str:
        """Spark's query id, which the checkpoint keeps across restarts: the key of both ledgers.

        The first batch (after a restart, the replayed one) can start before `start()` hands the id
        over, so it waits for it: a stand-in id would miss the ledgers and write the batch again.
        """
        if not self._query_known.wait(QUERY_ID_WAIT_S):
            raise RuntimeError(f"the streaming query's id was not known within {QUERY_ID_WAIT_S:.0f} s")
        assert self._query_id is not None  # noqa: S101 - set together with the event
        return self._query_id

    def use_query_id(self, query_id: str) -> None:
        """Take the id from the started query (the same one the checkpoint keeps across restarts)."""
        self._query_id = query_id
        self._query_known.set()

    def __call__(self, batch_df: DataFrame, batch_id: int) -> None:
        """Process one micro-batch: the tasks write, the driver collects their summaries (Spark calls this)."""
        t0 = time.monotonic()
        config = dataclasses.replace(self.task_config, query_id=self.query_id, batch_id=int(batch_id))
        self.finish(BatchSummary(tuple(self.run_tasks(batch_df, config))), int(batch_id), t0)

    def run_tasks(self, batch_df: DataFrame, config: TaskConfig) -> list[TaskSummary]:
        """Run the writing tasks on the executors; only their summaries come back."""
        rows = kafka_columns(batch_df).mapInArrow(self.writer_factory(config), TASK_SUMMARY_SCHEMA).collect()
        return [TaskSummary.from_row(row.asDict()) for row in rows]

    def finish(self, summary: BatchSummary, batch_id: int, t0: float | None = None) -> BatchProgress | None:
        """Record, publish and report a batch whose tasks all committed; None for an empty batch."""
        t0 = time.monotonic() if t0 is None else t0
        if summary.rows_in == 0:
            return None
        if summary.replayed:
            logger.info("batch %s of query %s was already committed by all its tasks; nothing written twice",
                        batch_id, self.query_id)  # fmt: skip
        committed_ms = int(time.time() * 1000)
        redis_ok = self._publish(summary, batch_id, committed_ms)
        duration_ms = int((time.monotonic() - t0) * 1000)
        self.pg.record_batch(self.query_id, batch_id, summary, duration_ms)
        progress = BatchProgress(
            query_id=self.query_id,
            batch_id=batch_id,
            rows_in=summary.rows_in,
            valid=summary.valid,
            inserted=summary.inserted,
            duplicates=summary.duplicates,
            dead_letters=summary.dead_letters,
            candles=summary.candles,
            duration_ms=duration_ms,
            lag_event_ms=_lag(committed_ms, summary.max_event_ms),
            lag_kafka_ms=_lag(committed_ms, summary.max_kafka_ms),
            lag_kafka_max_ms=_lag(committed_ms, summary.min_kafka_ms),
            redis_ok=redis_ok,
            replayed=summary.replayed,
            committed_ms=committed_ms,
        )
        self.reporter.report(progress)
        self.last = progress
        return progress

    def _publish(self, summary: BatchSummary, batch_id: int, committed_ms: int) -> bool:
        """The batch notice and heartbeat, and a refill when Redis missed data; True when Redis has the whole batch."""
        if self.redis is None:
            return False
        if not summary.redis_ok:
            self.redis.needs_refill = True
        if self.redis.needs_refill and self.redis.available():
            self._refill()
        notice = {"batch_id": batch_id, "inserted": summary.inserted, "max_event_time_ms": summary.max_event_ms,
                  "symbols": summary.symbols}  # fmt: skip
        heartbeat = {
            **self.heartbeat_fields(), "batch_id": batch_id, "last_batch_ms": committed_ms,
            "rows_in": summary.rows_in, "inserted": summary.inserted, "duplicates": summary.duplicates,
            "dead_letters": summary.dead_letters, "lag_ms": _lag(committed_ms, summary.max_event_ms),
        }  # fmt: skip
        published = self.redis.publish_batch(notice, heartbeat)
        return published and not self.redis.needs_refill

    def _refill(self) -> None:
        """Rebuild Redis's hot data from PostgreSQL (after an outage, or at start); a failure waits for the next batch."""
        assert self.redis is not None  # noqa: S101 - only called with Redis configured
        try:
            refill = quotes_for_refill(self.pg.connection(), self.redis.window_ms)
        except psycopg2.Error as e:
            logger.warning("could not read the refill from PostgreSQL (%s)", type(e).__name__)
            self.pg.close()
            return
        logger.info("refilling Redis from PostgreSQL with %d quotes", len(refill))
        if self.redis.write_quotes(refill):
            self.redis.needs_refill = False

    def heartbeat_fields(self) -> dict[str, object]:
        """The liveness part of the heartbeat (pid, query, start and beat times), refreshed even when idle."""
        return {
            "pid": os.getpid(), "query_id": self._query_id or "", "started_ms": self.started_ms,
            "updated_ms": int(time.time() * 1000), "checkpoint": self.checkpoint,
        }  # fmt: skip
