"""What a Spark task reports to the driver about the share of a micro-batch it wrote, and the batch's sum.

A task returns one small row (counts, the offsets it covered, a few times and
the symbols it touched) instead of its records: that is all the driver needs
to keep the batch ledger, publish the batch notice and report progress, so the
driver's memory and `spark.driver.maxResultSize` stay independent of the
batch's size.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from pyspark.sql.types import ArrayType, BooleanType, IntegerType, LongType, StringType, StructField, StructType

__all__ = ["TASK_SUMMARY_SCHEMA", "BatchSummary", "TaskSummary"]

# One row per (task, Kafka topic-partition): mapInArrow's output schema.
TASK_SUMMARY_SCHEMA = StructType(
    [
        StructField("topic", StringType(), False),
        StructField("partition", IntegerType(), False),
        StructField("start_offset", LongType(), False),
        StructField("end_offset", LongType(), False),
        StructField("rows_in", LongType(), False),
        StructField("valid", LongType(), False),
        StructField("inserted", LongType(), False),
        StructField("duplicates", LongType(), False),
        StructField("dead_letters", LongType(), False),
        StructField("candles", LongType(), False),
        StructField("min_kafka_ms", LongType(), True),
        StructField("max_kafka_ms", LongType(), True),
        StructField("max_event_ms", LongType(), True),
        StructField("redis_ok", BooleanType(), False),
        StructField("replayed", BooleanType(), False),
        StructField("symbols", ArrayType(StringType(), False), False),
    ]
)


@dataclass(frozen=True)
class TaskSummary:
    """What one task did for one Kafka topic-partition of a batch (offsets are [start, end))."""

    topic: str
    partition: int
    start_offset: int
    end_offset: int
    rows_in: int
    valid: int
    inserted: int
    duplicates: int
    dead_letters: int
    candles: int
    min_kafka_ms: int | None
    max_kafka_ms: int | None
    max_event_ms: int | None
    redis_ok: bool
    replayed: bool
    symbols: list[str] = field(default_factory=list)

    def as_row(self) -> dict[str, Any]:
        """The summary as a dict in `TASK_SUMMARY_SCHEMA` order (one Arrow row)."""
        return asdict(self)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> TaskSummary:
        """A summary from a collected Spark `Row` (as a dict) or an `as_row()` dict."""
        values = {f.name: row[f.name] for f in fields(cls)}
        values["symbols"] = list(values["symbols"] or [])
        return cls(**values)


def _min(values: Iterable[int | None]) -> int | None:
    return min((v for v in values if v is not None), default=None)


def _max(values: Iterable[int | None]) -> int | None:
    return max((v for v in values if v is not None), default=None)


@dataclass(frozen=True)
class BatchSummary:
    """The sum of a batch's task summaries: what the driver records in `stream_batches` and reports."""

    tasks: tuple[TaskSummary, ...]

    def _total(self, name: str) -> int:
        return sum(int(getattr(t, name)) for t in self.tasks)

    @property
    def rows_in(self) -> int:
        """Kafka records read."""
        return self._total("rows_in")

    @property
    def valid(self) -> int:
        """Valid records that are in stock_prices: new rows plus duplicates (refused ones are dead letters)."""
        return self._total("valid")

    @property
    def inserted(self) -> int:
        """New rows in stock_prices."""
        return self._total("inserted")

    @property
    def duplicates(self) -> int:
        """Valid records whose (symbol, event_time) was already stored or came twice."""
        return self._total("duplicates")

    @property
    def dead_letters(self) -> int:
        """Records kept in dead_letters, of every kind (contract, conflict, closed_day, database)."""
        return self._total("dead_letters")

    @property
    def candles(self) -> int:
        """1-minute candles inserted or updated."""
        return self._total("candles")

    @property
    def min_kafka_ms(self) -> int | None:
        """The oldest Kafka timestamp in the batch."""
        return _min(t.min_kafka_ms for t in self.tasks)

    @property
    def max_kafka_ms(self) -> int | None:
        """The newest Kafka timestamp in the batch."""
        return _max(t.max_kafka_ms for t in self.tasks)

    @property
    def max_event_ms(self) -> int | None:
        """The newest event time among the batch's valid quotes."""
        return _max(t.max_event_ms for t in self.tasks)

    @property
    def redis_ok(self) -> bool:
        """True when every task reached Redis."""
        return all(t.redis_ok for t in self.tasks)

    @property
    def replayed(self) -> bool:
        """True when every task found its share already committed (Spark re-ran the whole batch)."""
        return bool(self.tasks) and all(t.replayed for t in self.tasks)

    @property
    def symbols(self) -> list[str]:
        """The symbols the batch touched, sorted."""
        return sorted({s for t in self.tasks for s in t.symbols})

    def offsets(self) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, int]]]:
        """First and next offsets as `{topic: {"partition": offset}}` (the JSONB columns' shape of stream_batches).

        A topic-partition split over several tasks (Kafka source option `minPartitions`) spans
        from its lowest start to its highest end.
        """
        start: dict[str, dict[str, int]] = {}
        end: dict[str, dict[str, int]] = {}
        for t in sorted(self.tasks, key=lambda t: (t.topic, t.partition, t.start_offset)):
            part = str(t.partition)
            start.setdefault(t.topic, {}).setdefault(part, t.start_offset)
            ends = end.setdefault(t.topic, {})
            ends[part] = max(ends.get(part, t.end_offset), t.end_offset)
        return start, end
