"""The stream job's parsing: every bad record becomes a dead letter with its reason, duplicates are counted."""

from __future__ import annotations

from stock_platform.quotes import Quote
from stock_platform.streaming.parse import (
    KAFKA_RECORD_SCHEMA,
    PARSED_SCHEMA,
    QUOTE_SCHEMA,
    DeadLetter,
    KafkaRecord,
    parse_batch,
    parse_record,
)
from stock_platform.streaming.pg_sink import copy_text
from stock_platform_tests.streaming.conftest import BASE_MS, invalid_records, make_quotes


def _rec(value: bytes | None, offset: int = 0, partition: int = 0, ts: int | None = BASE_MS) -> KafkaRecord:
    return KafkaRecord(value, "t", partition, offset, ts)


def test_valid_record_parses_to_the_same_quote() -> None:
    q = make_quotes(5)[4]
    assert parse_record(_rec(q.to_json())) == q


def test_every_kind_of_invalid_record_is_a_dead_letter_with_its_reason() -> None:
    for value, fragment in invalid_records():
        result = parse_record(_rec(value, ts=None))
        assert isinstance(result, DeadLetter), value
        assert fragment in result.reason, (fragment, result.reason)
        assert result.record.value == value


def test_future_is_judged_against_the_kafka_timestamp_not_the_clock() -> None:
    q = make_quotes(1)[0]
    # Sent long ago, 2 h ahead of its own send time: rejected today and on every replay.
    ahead = Quote(q.symbol, q.price, BASE_MS + 2 * 3600 * 1000, q.source, q.producer_id, q.seq, q.volume)
    assert isinstance(parse_record(_rec(ahead.to_json(), ts=BASE_MS)), DeadLetter)
    assert parse_record(_rec(ahead.to_json(), ts=BASE_MS + 3600 * 1000)) == ahead


def test_batch_drops_exact_copies_and_leaves_other_records_of_a_key_to_the_table() -> None:
    quotes = make_quotes(10)
    first = quotes[0]
    changed = Quote(first.symbol, first.price + 1, first.event_time_ms, first.source, "other", 99, 1)
    # The same market fact from another producer, and a sub-cent difference the table cannot tell apart.
    resent = Quote(first.symbol, first.price + 0.001, first.event_time_ms, "replay", "other", 100, first.volume)
    values = [q.to_json() for q in quotes] + [quotes[3].to_json(), changed.to_json(), b"junk", resent.to_json()]
    records = [_rec(v, offset=i) for i, v in enumerate(values)]
    batch = parse_batch(reversed(records))  # arrival order does not matter: offsets decide
    assert batch.rows_in == 14
    assert batch.duplicates_in_batch == 2
    assert [(d.record.offset, d.kind) for d in batch.dead_letters] == [(12, "contract")]
    # The changed record is the sink's to judge: a conflict with whichever row the table keeps.
    assert batch.quotes[-1] == changed and [r.offset for r in batch.quote_records] == [*range(10), 11]
    batch.quotes.pop()
    assert sorted(batch.quotes, key=lambda q: q.seq) == quotes
    assert batch.offsets == {"t": {0: [0, 14]}}
    assert batch.max_event_ms == max(q.event_time_ms for q in quotes)


def test_schemas_cover_the_contract_and_the_kafka_record() -> None:
    assert set(QUOTE_SCHEMA.fieldNames()) == set(Quote.__dataclass_fields__)
    assert {"value", "topic", "partition", "offset", "timestamp"} <= set(KAFKA_RECORD_SCHEMA.fieldNames())
    assert set(PARSED_SCHEMA.fieldNames()) == set(QUOTE_SCHEMA.fieldNames()) | {
        "topic",
        "partition",
        "offset",
        "kafka_timestamp_ms",
        "error",
    }


def test_copy_text_escapes_producer_ids_and_writes_nulls() -> None:
    q = Quote("AAPL", 1.5, BASE_MS, "simulator", "a\tb\\c\nd", 7)
    line = copy_text([q])
    assert line.count("\n") == 1 and line.endswith("\n")
    fields = line[:-1].split("\t")
    assert len(fields) == 12 and fields[11] == "\\N"  # no Kafka record given: no offset
    assert fields[2] == "\\N" and fields[9] == "a\\tb\\\\c\\nd"
