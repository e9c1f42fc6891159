"""The work of one Spark task: its Kafka records parsed, written to PostgreSQL then Redis, and summarised.

The stream job hands `task_writer(config)` to `DataFrame.mapInArrow`, so this
runs inside the executors' Python workers, on Arrow batches of the task's
records, never on the driver. A task of Spark's Kafka source reads one
topic-partition's offset range, which becomes one span (`pg_sink.TaskSpan`):
one PostgreSQL transaction that also records the offsets it covered, so a
task re-run by Spark writes nothing twice. Redis follows the commit. The task
returns one small summary row per span (`summary.TaskSummary`).

Connections are kept per Python worker (Spark reuses workers across tasks),
so a task does not pay for a new PostgreSQL or Redis connection.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import groupby
from operator import attrgetter
from typing import TYPE_CHECKING

from stock_platform.storage.redis_keys import RedisKeys
from stock_platform.streaming.parse import KafkaRecord, ParsedBatch, parse_chunks, sort_records
from stock_platform.streaming.pg_sink import PostgresSink, TaskSpan
from stock_platform.streaming.redis_sink import RedisSink
from stock_platform.streaming.summary import TASK_SUMMARY_SCHEMA, TaskSummary

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame

__all__ = ["CHUNK_ROWS", "KAFKA_COLUMNS", "TaskConfig", "kafka_columns", "task_writer", "write_records"]

logger = logging.getLogger(__name__)

# Records parsed per chunk: big enough that a COPY + INSERT is efficient, small enough that
# parsing chunk k+1 overlaps writing chunk k for most of a span.
CHUNK_ROWS = 20_000
# The Kafka columns a task reads, in `KafkaRecord` field order.
KAFKA_COLUMNS = ("value", "topic", "partition", "offset", "timestamp_ms", "key")
_PARTITION = attrgetter("topic", "partition")

# One sink of each kind per Python worker process, keyed by where it writes.
_PG_SINKS: dict[str, PostgresSink] = {}
_REDIS_SINKS: dict[tuple[str, str, int], RedisSink] = {}


@dataclass(frozen=True)
class TaskConfig:
    """What a task needs to know, shipped to executors inside the task's closure (keep it small)."""

    postgres_dsn: str = field(repr=False)
    redis_url: str | None = field(repr=False)
    redis_key_prefix: str
    redis_ttl_seconds: int
    query_id: str
    batch_id: int
    chunk_rows: int = CHUNK_ROWS


def kafka_columns(kafka_df: DataFrame) -> DataFrame:
    """The Kafka source's columns a task reads (`KAFKA_COLUMNS`), the timestamp as epoch milliseconds."""
    from pyspark.sql import functions as F  # noqa: N812 - Spark's own convention

    return kafka_df.select("value", "topic", "partition", "offset", F.unix_millis("timestamp").alias("timestamp_ms"), "key")


def _pg_sink(dsn: str) -> PostgresSink:
    sink = _PG_SINKS.get(dsn)
    if sink is None:
        sink = _PG_SINKS[dsn] = PostgresSink(dsn, application_name="stock-platform-stream-task")
    return sink


def _redis_sink(config: TaskConfig) -> RedisSink | None:
    if not config.redis_url:
        return None
    key = (config.redis_url, config.redis_key_prefix, config.redis_ttl_seconds)
    sink = _REDIS_SINKS.get(key)
    if sink is None:
        sink = _REDIS_SINKS[key] = RedisSink(
            config.redis_url, RedisKeys(config.redis_key_prefix), config.redis_ttl_seconds, refill_first=False
        )
    return sink


def _records(batches: Iterable[pa.RecordBatch]) -> list[KafkaRecord]:
    records: list[KafkaRecord] = []
    for batch in batches:
        columns = [batch.column(name).to_pylist() for name in KAFKA_COLUMNS]
        records.extend(map(KafkaRecord._make, zip(*columns, strict=True)))
    return records


def _write_span(config: TaskConfig, ordered: Sequence[KafkaRecord]) -> TaskSummary:
    """Parse, write and summarise one topic-partition's records (sorted by offset)."""
    first, last = ordered[0], ordered[-1]
    span = TaskSpan(config.query_id, config.batch_id, first.topic, first.partition, first.offset, last.offset + 1, len(ordered))
    parsed = ParsedBatch()

    def chunks() -> Iterator[ParsedBatch]:
        for part in parse_chunks(ordered, config.chunk_rows):
            parsed.absorb(part)
            yield part

    result = _pg_sink(config.postgres_dsn).write_span(span, chunks())
    stored = parsed.quotes
    if result.refused_offsets:  # Redis shows what PostgreSQL holds, not a quote it refused
        refused = result.refused_offsets
        stored = [q for q, r in zip(parsed.quotes, parsed.quote_records, strict=True) if r.offset not in refused]
    redis = _redis_sink(config)
    redis_ok = redis.write_quotes(stored) if redis is not None else False
    stamps = [r.timestamp_ms for r in ordered if r.timestamp_ms is not None]
    return TaskSummary(
        topic=span.topic, partition=span.partition, start_offset=span.start_offset, end_offset=span.end_offset,
        rows_in=span.rows_in, valid=result.inserted + result.duplicates, inserted=result.inserted,
        duplicates=result.duplicates, dead_letters=result.dead_letters, candles=result.candles_touched,
        min_kafka_ms=min(stamps, default=None), max_kafka_ms=max(stamps, default=None),
        max_event_ms=max((q.event_time_ms for q in stored), default=None), redis_ok=redis_ok,
        replayed=result.replayed, symbols=sorted({q.symbol for q in stored}),
    )  # fmt: skip


def write_records(config: TaskConfig, records: Iterable[KafkaRecord]) -> list[TaskSummary]:
    """Write records of any topic-partitions, one span each; the summaries. The task's work without Spark."""
    ordered = sort_records(records)
    return [_write_span(config, list(group)) for _key, group in groupby(ordered, key=_PARTITION)]


def task_writer(config: TaskConfig) -> Callable[[Iterable[pa.RecordBatch]], Iterable[pa.RecordBatch]]:
    """The function `mapInArrow` runs in each task: Kafka records in, one `TASK_SUMMARY_SCHEMA` row per span out."""

    def write(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa

        from stock_platform.streaming import worker_patch

        worker_patch.install()  # this worker's next tasks skip re-reading pyspark.zip

        summaries = write_records(config, _records(batches))
        if summaries:
            yield pa.RecordBatch.from_pylist([s.as_row() for s in summaries], schema=_arrow_summary_schema())

    return write


@functools.cache
def _arrow_summary_schema() -> pa.Schema:
    from pyspark.sql.pandas.types import to_arrow_schema

    return to_arrow_schema(TASK_SUMMARY_SCHEMA)
