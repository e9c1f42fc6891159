"""Writes one span's parsed chunks inside its transaction: stage, insert, candles, and every refusal as a dead letter.

Each valid quote ends as a new row of stock_prices, a duplicate of a stored row
(same symbol, event time and market data), or a dead letter whose kind says
why (sql/012): `closed_day` when compaction already closed its (symbol, day),
`conflict` when a stored quote has its key but other market data, `database`
when PostgreSQL refuses it. The last is found by `isolate`: after a span fails
with a data error, the sink writes it again chunk by chunk under savepoints,
halving a refused chunk until the records PostgreSQL refuses stand alone, so
one hostile record costs a dead letter, not the pipeline.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Sequence
from typing import TypeVar

import psycopg2
import psycopg2.errors
from psycopg2.extensions import cursor as PgCursor  # noqa: N812 - psycopg2's own class name
from psycopg2.extras import execute_values

from stock_platform.quotes import Quote
from stock_platform.storage.closed_days import DAY_MS, closed_symbol_days, day_number, day_of_ms
from stock_platform.streaming import sink_sql
from stock_platform.streaming.parse import DeadLetter, KafkaRecord, ParsedBatch

__all__ = ["DATA_ERRORS", "SpanWriter", "copy_text", "first_line"]

logger = logging.getLogger(__name__)

# Errors caused by the data itself, so retrying the same rows can only fail again: SQLSTATE classes 22 (data
# exception) and 23 (integrity), 54 (program limit, such as an index row too large), P0001 (a validation
# trigger's RAISE), and text that cannot be encoded for PostgreSQL at all. Anything else (a lost connection,
# a lock timeout, a bug) is not the records' fault: the task fails and Spark retries it, and nothing is
# dead-lettered for it.
DATA_ERRORS: tuple[type[BaseException], ...] = (
    psycopg2.DataError,
    psycopg2.IntegrityError,
    psycopg2.errors.ProgramLimitExceeded,
    psycopg2.errors.RaiseException,
    UnicodeEncodeError,
)
# PostgreSQL's TIMESTAMP reaches further, but a Kafka timestamp beyond year 9999 is noise, not a time.
_MAX_KAFKA_MS = 253_402_300_799_999
_MIN_KAFKA_MS = -2_208_988_800_000  # 1900
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_T = TypeVar("_T")


def first_line(error: BaseException) -> str:
    """An error's message on one line, without PostgreSQL's DETAIL/HINT lines and NUL characters."""
    text = (str(error).strip().splitlines() or [type(error).__name__])[0]
    return text.replace("\x00", "")[:500]


def _num(value: float | int | None) -> str:
    return "\\N" if value is None else repr(value)


def copy_text(quotes: Sequence[Quote], records: Sequence[KafkaRecord] | None = None) -> str:
    """The quotes as PostgreSQL COPY text rows for `stream_stage` (tab separated, \\N for null), with Kafka offsets."""
    lines = []
    for i, q in enumerate(quotes):
        producer = q.producer_id.translate(_ESCAPES)
        offset = "\\N" if records is None else str(records[i].offset)
        lines.append(
            f"{q.symbol}\t{q.price!r}\t{_num(q.volume)}\t{_num(q.day_high)}\t{_num(q.day_low)}\t{_num(q.open_price)}\t"
            f"{_num(q.prev_close)}\t{q.event_time_ms}\t{q.source}\t{producer}\t{q.seq}\t{offset}\n"
        )
    return "".join(lines)


def _dead_letter_row(d: DeadLetter) -> tuple:
    r = d.record
    key = None if r.key is None else r.key.decode("utf-8", "replace").replace("\x00", "")
    payload = None if r.value is None else psycopg2.Binary(r.value)
    stamp = r.timestamp_ms if r.timestamp_ms is not None and _MIN_KAFKA_MS <= r.timestamp_ms <= _MAX_KAFKA_MS else None
    return (r.topic, r.partition, r.offset, stamp, key, payload, d.reason.replace("\x00", ""), d.kind)


def _bare_dead_letter_row(d: DeadLetter, error: BaseException) -> tuple:
    """The row of a dead letter whose own row PostgreSQL refused: coordinates, payload and the reason, nothing else."""
    r = d.record
    payload = None if r.value is None else psycopg2.Binary(r.value)
    reason = f"{d.reason.replace(chr(0), '')} (stored without key and timestamp: {first_line(error)})"
    return (r.topic, r.partition, r.offset, None, None, payload, reason, d.kind)


class SpanWriter:
    """One span's writes in one open transaction, and the counts they add up to.

    `stage` then `flush` is the fast path (the sink overlaps staging chunk k with
    parsing chunk k+1); `isolate` writes a part at once under savepoints, for a
    span that PostgreSQL refused.
    """

    def __init__(self, cur: PgCursor) -> None:
        self.cur = cur
        self.valid = self.in_batch_duplicates = self.dead = 0
        self.inserted = self.candles = self.refused = 0
        self.refused_by_database = 0
        # Offsets of valid quotes that did not become rows (so they are not published to Redis either).
        self.refused_offsets: set[int] = set()
        self._closed: set[tuple[str, int]] = set()
        self._checked_days: set[int] = set()
        self._staged: list[tuple[Sequence[Quote], Sequence[KafkaRecord]]] = []  # chunks: quotes and their records

    @property
    def duplicates(self) -> int:
        """Valid quotes not stored because the same fact is already stored (in this span or earlier)."""
        return self.valid - self.inserted - self.refused + self.in_batch_duplicates

    def stage(self, part: ParsedBatch) -> None:
        """Copy a chunk's storable quotes into the stage and write its dead letters."""
        quotes, records, dead = self._open_days_only(part)
        if quotes:
            self._copy(quotes, records)
            self._staged.append((quotes, records))
        self._insert_dead(dead)

    def flush(self) -> None:
        """Insert the staged quotes and upsert their candles; record the ones a stored quote contradicts."""
        if self._staged:
            self._insert_staged(self._staged)
            self._staged = []

    def look_up_days(self, parts: Sequence[ParsedBatch]) -> None:
        """Lock and look up the closed days of all these chunks at once.

        `isolate` calls this first: it upserts candles chunk by chunk, and a writer holding candle locks must
        not then queue for a day lock behind compaction, which may be waiting for another writer's candles.
        """
        self._look_up_days({q.event_time_ms // DAY_MS for part in parts for q in part.quotes})

    def isolate(self, part: ParsedBatch) -> None:
        """Write a chunk under savepoints; the records PostgreSQL refuses become dead letters of kind `database`."""
        quotes, records, dead = self._open_days_only(part)
        self._insert_dead_isolated(dead)
        if quotes:
            self._isolated(list(zip(quotes, records, strict=True)), self._stage_and_insert, self._refused_by_database)

    def _open_days_only(self, part: ParsedBatch) -> tuple[Sequence[Quote], Sequence[KafkaRecord], list[DeadLetter]]:
        """The chunk's quotes (and records) whose (symbol, day) is still open; its dead letters plus the closed ones."""
        self.valid += len(part.quotes)
        self.in_batch_duplicates += part.duplicates_in_batch
        quotes, records = part.quotes, part.quote_records
        self._look_up_days({q.event_time_ms // DAY_MS for q in quotes})
        dead = list(part.dead_letters)
        if not self._closed:
            return quotes, records, dead
        kept_quotes, kept_records = [], []
        for quote, record in zip(quotes, records, strict=True):
            if (quote.symbol, day_number(quote.event_time_ms)) in self._closed:
                day = day_of_ms(quote.event_time_ms)
                reason = (f"{quote.symbol} {day} is compacted (its raw ticks were removed after verification):"
                          " its candles and daily bar are final, so the tick is not added again")  # fmt: skip
                dead.append(DeadLetter(record, reason, "closed_day"))
                self._refuse(record)
            else:
                kept_quotes.append(quote)
                kept_records.append(record)
        return kept_quotes, kept_records, dead

    def _look_up_days(self, days: set[int]) -> None:
        new = days - self._checked_days
        if new:
            self._closed |= closed_symbol_days(self.cur, new)
            self._checked_days |= new

    def _refuse(self, record: KafkaRecord) -> None:
        self.refused += 1
        self.refused_offsets.add(record.offset)

    def _copy(self, quotes: Sequence[Quote], records: Sequence[KafkaRecord]) -> None:
        # Encoded here, strictly, so text PostgreSQL could never read fails before the COPY starts.
        data = copy_text(quotes, records).encode("utf-8")
        self.cur.copy_expert(sink_sql.STAGE_COPY, io.BytesIO(data))

    def _insert_staged(self, staged: Sequence[tuple[Sequence[Quote], Sequence[KafkaRecord]]]) -> None:
        self.cur.execute(sink_sql.INSERT_AND_CANDLES)
        inserted, candles = (int(n) for n in self.cur.fetchone())
        self.inserted += inserted
        self.candles += candles
        if inserted < sum(len(quotes) for quotes, _records in staged):
            self._record_conflicts(staged)

    def _record_conflicts(self, staged: Sequence[tuple[Sequence[Quote], Sequence[KafkaRecord]]]) -> None:
        self.cur.execute(sink_sql.CONFLICTS)
        rows = self.cur.fetchall()
        if not rows:
            return
        by_offset = {r.offset: (q, r) for quotes, records in staged for q, r in zip(quotes, records, strict=True)}
        dead = []
        for offset, stored_price in rows:
            quote, record = by_offset[offset]
            reason = (
                f"conflicts with the quote stored for {quote.symbol} at event_time_ms {quote.event_time_ms}: same symbol"
                f" and event time, different market data; the first one stays (kept price {stored_price!r},"
                f" this one {quote.price!r})"
            )
            dead.append(DeadLetter(record, reason, "conflict"))
            self._refuse(record)
        self._insert_dead(dead)

    def _stage_and_insert(self, pairs: Sequence[tuple[Quote, KafkaRecord]]) -> None:
        quotes = [q for q, _r in pairs]
        records = [r for _q, r in pairs]
        self._copy(quotes, records)
        self._insert_staged([(quotes, records)])
        self.cur.execute(sink_sql.STAGE_CLEAR)

    def _refused_by_database(self, pair: tuple[Quote, KafkaRecord], error: BaseException) -> None:
        quote, record = pair
        logger.warning("PostgreSQL refused the record at %s/%s offset %s: %s", record.topic, record.partition,
                       record.offset, first_line(error))  # fmt: skip
        self._refuse(record)
        self.refused_by_database += 1
        self._insert_dead_isolated([DeadLetter(record, f"refused by PostgreSQL: {first_line(error)}", "database")])

    def _insert_dead(self, dead: Sequence[DeadLetter]) -> None:
        if dead:
            self.dead += len(dead)
            self._insert_dead_rows(dead)

    def _insert_dead_isolated(self, dead: Sequence[DeadLetter]) -> None:
        if dead:
            self.dead += len(dead)
            self._isolated(list(dead), self._insert_dead_rows, self._insert_bare_dead_letter)

    def _insert_dead_rows(self, dead: Sequence[DeadLetter]) -> None:
        execute_values(self.cur, sink_sql.DEAD_LETTERS, [_dead_letter_row(d) for d in dead], template=sink_sql.DEAD_LETTER_ROW)

    def _insert_bare_dead_letter(self, d: DeadLetter, error: BaseException) -> None:
        execute_values(self.cur, sink_sql.DEAD_LETTERS, [_bare_dead_letter_row(d, error)], template=sink_sql.DEAD_LETTER_ROW)

    def _counts(self) -> tuple[int, int, int, int, frozenset[int]]:
        return (self.inserted, self.candles, self.refused, self.dead, frozenset(self.refused_offsets))

    def _restore(self, counts: tuple[int, int, int, int, frozenset[int]]) -> None:
        """Counts as they were at a savepoint the transaction rolled back to."""
        self.inserted, self.candles, self.refused, self.dead, offsets = counts
        self.refused_offsets = set(offsets)

    def _isolated(self, items: list[_T], write: Callable[[list[_T]], None], alone: Callable[[_T, BaseException], None]) -> None:
        """`write(items)` under a savepoint; on a data error, each half again, until a refused item stands alone."""
        pending = [items]
        while pending:
            group = pending.pop()
            counts = self._counts()
            self.cur.execute("SAVEPOINT isolate")
            try:
                write(group)
            except DATA_ERRORS as e:
                self._restore(counts)
                self.cur.execute("ROLLBACK TO SAVEPOINT isolate")
                self.cur.execute("RELEASE SAVEPOINT isolate")
                if len(group) == 1:
                    alone(group[0], e)
                else:
                    middle = len(group) // 2
                    pending.extend((group[middle:], group[:middle]))  # first half next: offsets stay in order
                continue
            self.cur.execute("RELEASE SAVEPOINT isolate")
