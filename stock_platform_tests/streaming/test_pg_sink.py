"""The PostgreSQL sink on its own: a batch replayed, or re-read under another query, changes nothing."""

from __future__ import annotations

import pytest

from stock_platform.streaming.parse import KafkaRecord, parse_batch
from stock_platform.streaming.pg_sink import CANDLE_RECOMPUTE_SQL, PostgresSink
from stock_platform_tests.streaming.conftest import BASE_MS, expected_prices, fetch, invalid_records, make_quotes, snapshot

pytestmark = pytest.mark.integration


def _batch(values: list, first_offset: int = 0):  # noqa: ANN202
    return parse_batch(KafkaRecord(v, "quotes", 1, first_offset + i, BASE_MS) for i, v in enumerate(values))


def test_replayed_and_reread_batches_leave_every_table_unchanged(clean_tables: str) -> None:
    quotes = make_quotes(300, step_ms=900)
    values = [q.to_json() for q in quotes] + [v for v, _ in invalid_records()]
    sink = PostgresSink(clean_tables)
    try:
        first = sink.write_batch(_batch(values), "query-a", 0)
        assert (first.inserted, first.duplicates, first.dead_letters, first.replayed) == (300, 0, len(invalid_records()), False)
        after_first = snapshot(clean_tables)
        assert after_first["prices"] == expected_prices(quotes)

        again = sink.write_batch(_batch(values), "query-a", 0)  # Spark replays batch 0 after a crash
        assert again.replayed and again.inserted == 0
        other = sink.write_batch(_batch(values), "query-b", 0)  # the topic re-read from the start
        assert not other.replayed and other.inserted == 0 and other.duplicates == 300
        assert snapshot(clean_tables) == after_first

        # A later batch that overlaps the first adds only the new rows, and candles grow by exactly those.
        more = make_quotes(400, step_ms=900)
        third = sink.write_batch(_batch([q.to_json() for q in more], 1000), "query-a", 1)
        assert third.inserted == 100 and third.duplicates == 300
    finally:
        sink.close()
    assert snapshot(clean_tables)["prices"] == expected_prices(more)
    counts = fetch(clean_tables, "SELECT sum(trade_count) FROM stock_candles_1m")[0][0]
    assert counts == 400
    assert fetch(clean_tables, "SELECT query_id, batch_id, inserted FROM stream_batches ORDER BY 1, 2") == [
        ("query-a", 0, 300),
        ("query-a", 1, 100),
        ("query-b", 0, 0),
    ]


def test_chunked_write_equals_the_whole_batch_write(clean_tables: str) -> None:
    from stock_platform.streaming.parse import parse_chunks, sort_records, summarise

    quotes = make_quotes(500, step_ms=800)
    # Duplicates far apart, so they fall in other chunks than their first copy; and some bad records.
    values = [q.to_json() for q in quotes] + [q.to_json() for q in quotes[:60]] + [v for v, _ in invalid_records()]
    ordered = sort_records(KafkaRecord(v, "quotes", 0, i, BASE_MS) for i, v in enumerate(values))
    batch = summarise(ordered)
    sink = PostgresSink(clean_tables)
    try:
        result = sink.write_chunks(batch, parse_chunks(ordered, 37), "query-c", 0)
    finally:
        sink.close()
    assert (result.inserted, result.duplicates, result.dead_letters) == (500, 60, len(invalid_records()))
    assert len(batch.quotes) == 500 and batch.duplicates_in_batch == 60  # the summary absorbed every chunk
    db = snapshot(clean_tables)
    assert db["prices"] == expected_prices(quotes)
    assert db["candles"] == fetch(clean_tables, CANDLE_RECOMPUTE_SQL + " ORDER BY 1, 2")
    assert fetch(clean_tables, "SELECT rows_in, inserted, duplicates, dead_letters FROM stream_batches") == [
        (len(values), 500, 60, len(invalid_records()))
    ]
