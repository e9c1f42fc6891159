"""A task's write on its own (no Spark): a task run again, two attempts at once, or a re-read topic change nothing."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable, Iterator

import pytest

from stock_platform.runtime.processes import wait_until
from stock_platform.streaming.parse import KafkaRecord, ParsedBatch, parse_chunks, sort_records
from stock_platform.streaming.pg_sink import CANDLE_RECOMPUTE_SQL, PostgresSink, SinkResult, TaskSpan
from stock_platform.streaming.summary import BatchSummary
from stock_platform.streaming.tasks import TaskConfig, write_records
from stock_platform_tests.streaming.conftest import BASE_MS, expected_prices, fetch, invalid_records, make_quotes, snapshot

pytestmark = pytest.mark.integration

_COUNTS = "SELECT query_id, batch_id, kafka_partition, start_offset, end_offset, inserted, duplicates FROM stream_task_commits"


def _records(values: list, partition: int = 1, first_offset: int = 0) -> list[KafkaRecord]:
    return [KafkaRecord(v, "quotes", partition, first_offset + i, BASE_MS) for i, v in enumerate(values)]


def _config(dsn: str, query_id: str, batch_id: int, chunk_rows: int = 20_000) -> TaskConfig:
    return TaskConfig(dsn, None, "unused:", 300, query_id, batch_id, chunk_rows)


def test_a_task_run_again_or_the_topic_reread_leaves_every_table_unchanged(clean_tables: str) -> None:
    quotes = make_quotes(300, step_ms=900)
    values = [q.to_json() for q in quotes] + [v for v, _ in invalid_records()]
    [first] = write_records(_config(clean_tables, "query-a", 0), _records(values))
    assert (first.inserted, first.duplicates, first.dead_letters, first.replayed) == (300, 0, len(invalid_records()), False)
    assert (first.start_offset, first.end_offset, first.rows_in) == (0, len(values), len(values))
    after_first = snapshot(clean_tables)
    assert after_first["prices"] == expected_prices(quotes)

    [again] = write_records(_config(clean_tables, "query-a", 0), _records(values))  # Spark re-runs the task
    assert again.replayed and dataclasses.replace(again, replayed=False) == first  # it reports what the first run did
    [other] = write_records(_config(clean_tables, "query-b", 0), _records(values))  # the topic re-read from the start
    assert not other.replayed and other.inserted == 0 and other.duplicates == 300
    assert snapshot(clean_tables) == after_first

    # A later batch that overlaps the first adds only the new rows, and candles grow by exactly those.
    more = make_quotes(400, step_ms=900)
    [third] = write_records(_config(clean_tables, "query-a", 1), _records([q.to_json() for q in more], first_offset=1000))
    assert third.inserted == 100 and third.duplicates == 300
    assert snapshot(clean_tables)["prices"] == expected_prices(more)
    assert fetch(clean_tables, "SELECT sum(trade_count) FROM stock_candles_1m")[0][0] == 400
    assert fetch(clean_tables, _COUNTS + " ORDER BY 1, 2") == [
        ("query-a", 0, 1, 0, len(values), 300, 0),
        ("query-a", 1, 1, 1000, 1400, 100, 300),
        ("query-b", 0, 1, 0, len(values), 0, 300),
    ]


def test_small_chunks_and_several_partitions_write_the_same_as_one_chunk(clean_tables: str) -> None:
    quotes = make_quotes(500, step_ms=800)
    # Duplicates far apart, so they fall in other chunks than their first copy; and some bad records.
    values = [q.to_json() for q in quotes] + [q.to_json() for q in quotes[:60]] + [v for v, _ in invalid_records()]
    records = _records(values[::2], partition=0) + _records(values[1::2], partition=2)
    summaries = write_records(_config(clean_tables, "query-c", 0, chunk_rows=37), reversed(records))
    assert [(s.partition, s.start_offset, s.rows_in) for s in summaries] == [(0, 0, len(values[::2])), (2, 0, len(values[1::2]))]
    batch = BatchSummary(tuple(summaries))
    assert (batch.rows_in, batch.inserted, batch.duplicates, batch.dead_letters) == (len(values), 500, 60, len(invalid_records()))
    db = snapshot(clean_tables)
    assert db["prices"] == expected_prices(quotes)
    assert db["candles"] == fetch(clean_tables, CANDLE_RECOMPUTE_SQL + " ORDER BY 1, 2")
    assert batch.symbols == sorted({q.symbol for q in quotes})


def test_two_attempts_of_one_task_at_once_write_once(clean_tables: str) -> None:
    """A speculative copy of a task waits on the first attempt's claim, then finds the span committed."""
    quotes = make_quotes(2000, step_ms=900)
    ordered = sort_records(_records([q.to_json() for q in quotes]))
    span = TaskSpan("query-d", 0, "quotes", 1, 0, len(ordered), len(ordered))
    first_claimed, release_first = threading.Event(), threading.Event()
    results: dict[str, SinkResult] = {}

    def held_chunks() -> Iterator[ParsedBatch]:
        first_claimed.set()  # the claim is made before the first chunk is asked for
        assert release_first.wait(60)
        yield from parse_chunks(ordered, 500)

    def attempt(name: str, chunks: Iterable[ParsedBatch]) -> None:
        sink = PostgresSink(clean_tables, application_name=f"attempt-{name}")
        try:
            results[name] = sink.write_span(span, chunks)
        finally:
            sink.close()

    first = threading.Thread(target=attempt, args=("first", held_chunks()))
    first.start()
    assert first_claimed.wait(30)
    second = threading.Thread(target=attempt, args=("second", parse_chunks(ordered, 500)))
    second.start()
    waiting = "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'attempt-second' AND wait_event_type = 'Lock'"
    assert wait_until(lambda: fetch(clean_tables, waiting)[0][0] == 1, 30, interval=0.1), "the second attempt did not wait"
    release_first.set()
    first.join(60)
    second.join(60)
    assert (results["first"].replayed, results["second"].replayed) == (False, True)
    assert results["first"].inserted == 2000 and results["second"].inserted == 2000  # the re-run reports the first run
    assert snapshot(clean_tables)["prices"] == expected_prices(quotes)


def test_the_driver_records_a_batch_once_with_its_offsets(clean_tables: str) -> None:
    quotes = make_quotes(90)
    records = [KafkaRecord(q.to_json(), "quotes", i % 3, 10 + i // 3, BASE_MS + i) for i, q in enumerate(quotes)]
    summary = BatchSummary(tuple(write_records(_config(clean_tables, "query-e", 7), records)))
    sink = PostgresSink(clean_tables)
    try:
        assert sink.record_batch("query-e", 7, summary, 120)
        assert not sink.record_batch("query-e", 7, summary, 150)  # a replayed batch keeps its first row
    finally:
        sink.close()
    assert fetch(
        clean_tables, "SELECT topic, start_offsets, end_offsets, rows_in, inserted, duration_ms FROM stream_batches"
    ) == [("quotes", {"quotes": {"0": 10, "1": 10, "2": 10}}, {"quotes": {"0": 40, "1": 40, "2": 40}}, 90, 90, 120)]
