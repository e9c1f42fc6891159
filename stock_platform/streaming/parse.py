"""Kafka records in, validated quotes and dead letters out: the stream job's one parsing function.

`parse_record` is pure (no I/O, no clock unless no Kafka timestamp is known) and
is the only place a Kafka record is judged: the job's Spark tasks call it on the
executors (`tasks.task_writer`), `parse_kafka_frame` offers it as a DataFrame
transformation, and the unit tests call it directly. Validation itself is the message contract's
(`stock_platform.quotes.parse_quote`), so the producer and the job can never
disagree about what a valid quote is.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from pyspark.sql.types import (
    BinaryType,
    DoubleType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from stock_platform.quotes import Quote, QuoteError, parse_quote

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import DataFrame

__all__ = [
    "KAFKA_RECORD_SCHEMA",
    "PARSED_SCHEMA",
    "QUOTE_SCHEMA",
    "DeadLetter",
    "DeadLetterKind",
    "KafkaRecord",
    "ParsedBatch",
    "parse_batch",
    "parse_chunks",
    "parse_kafka_frame",
    "parse_record",
    "records_from_pandas",
    "sort_records",
    "summarise",
]

# What Spark's Kafka source yields for each record (the columns the job reads).
KAFKA_RECORD_SCHEMA = StructType(
    [
        StructField("key", BinaryType(), True),
        StructField("value", BinaryType(), True),
        StructField("topic", StringType(), False),
        StructField("partition", IntegerType(), False),
        StructField("offset", LongType(), False),
        StructField("timestamp", TimestampType(), True),
        StructField("timestampType", IntegerType(), True),
    ]
)

# One valid quote, as the contract defines it (`stock_platform.quotes.Quote`).
QUOTE_SCHEMA = StructType(
    [
        StructField("symbol", StringType(), False),
        StructField("price", DoubleType(), False),
        StructField("event_time_ms", LongType(), False),
        StructField("source", StringType(), False),
        StructField("producer_id", StringType(), False),
        StructField("seq", LongType(), False),
        StructField("volume", LongType(), True),
        StructField("day_high", DoubleType(), True),
        StructField("day_low", DoubleType(), True),
        StructField("open_price", DoubleType(), True),
        StructField("prev_close", DoubleType(), True),
        StructField("v", IntegerType(), False),
    ]
)

# The result of `parse_record` for one Kafka record: the quote's columns (null when
# invalid), where the record came from, and `error` (null when valid).
PARSED_SCHEMA = StructType(
    [StructField(f.name, f.dataType, True) for f in QUOTE_SCHEMA.fields]
    + [
        StructField("topic", StringType(), False),
        StructField("partition", IntegerType(), False),
        StructField("offset", LongType(), False),
        StructField("kafka_timestamp_ms", LongType(), True),
        StructField("error", StringType(), True),
    ]
)
_QUOTE_COLUMNS = tuple(f.name for f in QUOTE_SCHEMA.fields)
_ORDER = attrgetter("topic", "partition", "offset")


class KafkaRecord(NamedTuple):
    """One record as read from Kafka: the raw value plus its coordinates (a tuple: a batch makes 100k of them)."""

    value: bytes | None
    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None = None
    key: bytes | None = None


# The values of dead_letters.kind (sql/012).
DeadLetterKind = Literal["contract", "database", "conflict", "closed_day"]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record kept in the dead_letters table instead of stock_prices, with the reason.

    `kind` is one of the table's kinds (sql/012): `contract` (the message broke it), `conflict` (same
    symbol and event time as a stored quote, different market data), `closed_day` (its day is compacted),
    `database` (PostgreSQL refused it).
    """

    record: KafkaRecord
    reason: str
    kind: DeadLetterKind = "contract"


def parse_record(record: KafkaRecord, now_ms: int | None = None) -> Quote | DeadLetter:
    """Judge one Kafka record: the validated `Quote`, or a `DeadLetter` saying why not.

    "Too far in the future" is measured from the record's Kafka timestamp (when
    the broker got it), not from the wall clock, so replaying a batch months
    later reaches exactly the same verdict. A Kafka timestamp ahead of the wall
    clock is not trusted (producers may set it): the wall clock is used instead,
    so a record cannot carry its own licence for a far-future event time. Never raises.
    """
    if now_ms is None:
        wall_ms = int(time.time() * 1000)
        stamp = record.timestamp_ms
        now_ms = min(stamp, wall_ms) if stamp is not None and stamp > 0 else wall_ms
    try:
        return parse_quote(record.value, now_ms=now_ms)
    except QuoteError as e:
        return DeadLetter(record, str(e) or "invalid record")


@dataclass
class ParsedBatch:
    """One micro-batch judged: unique valid quotes, dead letters, and the counts the job reports."""

    quotes: list[Quote] = field(default_factory=list)
    # The Kafka record of each quote, in the same order (for dead letters the database decides on).
    quote_records: list[KafkaRecord] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    rows_in: int = 0
    duplicates_in_batch: int = 0
    # {topic: {partition: [first offset, last offset + 1]}}
    offsets: dict[str, dict[int, list[int]]] = field(default_factory=dict)
    min_kafka_ms: int | None = None
    max_kafka_ms: int | None = None

    def absorb(self, part: ParsedBatch) -> None:
        """Add a parsed chunk's quotes, dead letters and duplicates to this batch."""
        self.quotes.extend(part.quotes)
        self.quote_records.extend(part.quote_records)
        self.dead_letters.extend(part.dead_letters)
        self.duplicates_in_batch += part.duplicates_in_batch

    @property
    def max_event_ms(self) -> int | None:
        """The newest event time among the valid quotes (None when there are none)."""
        return max((q.event_time_ms for q in self.quotes), default=None)


def summarise(ordered: Sequence[KafkaRecord]) -> ParsedBatch:
    """A batch with its counts, offsets and Kafka times filled in but nothing parsed yet.

    `ordered` is sorted by (topic, partition, offset) (see `sort_records`).
    """
    out = ParsedBatch(rows_in=len(ordered))
    for record in ordered:  # sorted: the first of a partition is its lowest offset, the last its highest
        span = out.offsets.setdefault(record.topic, {}).get(record.partition)
        if span is None:
            out.offsets[record.topic][record.partition] = [record.offset, record.offset + 1]
        else:
            span[1] = record.offset + 1
    stamps = [r.timestamp_ms for r in ordered if r.timestamp_ms is not None]
    out.min_kafka_ms = min(stamps, default=None)
    out.max_kafka_ms = max(stamps, default=None)
    return out


def sort_records(records: Iterable[KafkaRecord]) -> list[KafkaRecord]:
    """Records in (topic, partition, offset) order: the order in which "first one wins" is decided."""
    return sorted(records, key=_ORDER)


def parse_chunks(ordered: Sequence[KafkaRecord], chunk_size: int) -> Iterator[ParsedBatch]:
    """Parse `ordered` `chunk_size` records at a time, dropping exact copies across the whole sequence.

    Each chunk holds only its own new quotes, dead letters and duplicate count,
    so a writer can store chunk k while chunk k+1 is being parsed. A record with
    the key (symbol, event time) and the market data of an earlier one is a
    duplicate here; one with other market data stays a quote, because which
    record of a key wins is the table's decision (a stored row, or the first in
    offset order that PostgreSQL accepts): the sink dead-letters the losers as
    conflicts.
    """
    first: dict[tuple[str, int], Quote] = {}
    for begin in range(0, len(ordered), max(chunk_size, 1)):
        part = ParsedBatch()
        for record in ordered[begin : begin + chunk_size]:
            result = parse_record(record)
            if isinstance(result, DeadLetter):
                part.dead_letters.append(result)
                continue
            key = (result.symbol, result.event_time_ms)
            earlier = first.setdefault(key, result)
            if earlier is not result and earlier.market_data() == result.market_data():
                part.duplicates_in_batch += 1
            else:
                part.quotes.append(result)
                part.quote_records.append(record)
        yield part


def parse_batch(records: Iterable[KafkaRecord]) -> ParsedBatch:
    """Parse every record, keep the first of each (symbol, event_time) and note the offsets covered.

    The first one wins (lowest partition and offset): a symbol lives in one
    partition, so that is the earliest sent, the same row `ON CONFLICT DO
    NOTHING` keeps when the copy arrives in a later batch.
    """
    ordered = sort_records(records)
    out = summarise(ordered)
    for part in parse_chunks(ordered, len(ordered)):
        out.absorb(part)
    return out


def records_from_pandas(frame: pd.DataFrame) -> Iterator[KafkaRecord]:
    """`KafkaRecord`s from a pandas frame with value, topic, partition, offset, timestamp_ms (and key)."""
    keys = frame["key"] if "key" in frame.columns else [None] * len(frame)
    for value, topic, partition, offset, ts, key in zip(
        frame["value"], frame["topic"], frame["partition"], frame["offset"], frame["timestamp_ms"], keys, strict=True
    ):
        yield KafkaRecord(
            None if value is None else bytes(value),
            str(topic),
            int(partition),
            int(offset),
            None if ts is None or ts != ts else int(ts),  # NaN when pandas made the column float
            None if key is None else bytes(key),
        )


def _parsed_row(record: KafkaRecord) -> dict[str, Any]:
    result = parse_record(record)
    row: dict[str, Any] = dict.fromkeys(_QUOTE_COLUMNS)
    if isinstance(result, DeadLetter):
        row["error"] = result.reason
    else:
        row.update({name: getattr(result, name) for name in _QUOTE_COLUMNS})
        row["error"] = None
    row.update(topic=record.topic, partition=record.partition, offset=record.offset, kafka_timestamp_ms=record.timestamp_ms)
    return row


def _parse_frames(frames: Iterable[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    import pandas as pd

    columns = [f.name for f in PARSED_SCHEMA.fields]
    for frame in frames:
        rows = [_parsed_row(r) for r in records_from_pandas(frame)]
        out = pd.DataFrame(rows, columns=columns)
        for name in ("volume", "seq", "event_time_ms", "kafka_timestamp_ms", "v"):
            out[name] = out[name].astype("Int64")
        yield out


def parse_kafka_frame(kafka_df: DataFrame) -> DataFrame:
    """Apply `parse_record` inside Spark: a Kafka DataFrame in, a `PARSED_SCHEMA` DataFrame out.

    For Spark-side consumers (the JDBC benchmark, ad-hoc analysis); the
    streaming job parses inside its writing tasks instead (`tasks.task_writer`).
    """
    from pyspark.sql import functions as F  # noqa: N812 - Spark's own convention

    selected = kafka_df.select("key", "value", "topic", "partition", "offset", F.unix_millis("timestamp").alias("timestamp_ms"))
    return selected.mapInPandas(_parse_frames, PARSED_SCHEMA)
