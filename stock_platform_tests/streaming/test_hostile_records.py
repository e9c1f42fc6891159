"""Records that could stop the job or corrupt its numbers, written through the real sink and PostgreSQL (no Spark).

Each ends in exactly one of stock_prices or dead_letters with a reason, the
rest of its span commits, and the counts add up: refused by the contract,
refused by PostgreSQL itself (isolated by splitting the span), a different
record with a stored key (conflict), a tick of a day compaction closed.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import psycopg2
import pytest

from stock_platform.orchestration.compaction import CompactionReport, build_daily_bars, compact_day, delete_verified_ticks
from stock_platform.quotes import Quote
from stock_platform.runtime.processes import wait_until
from stock_platform.storage.closed_days import CLOSED_DAY_LOCK, closed_symbol_days, day_number
from stock_platform.storage.migrations import apply_migrations
from stock_platform.streaming.parse import KafkaRecord
from stock_platform.streaming.pg_sink import CANDLE_RECOMPUTE_SQL
from stock_platform.streaming.summary import BatchSummary
from stock_platform.streaming.tasks import TaskConfig, write_records
from stock_platform_tests.databases import scratch_database
from stock_platform_tests.streaming.conftest import BASE_MS, expected_prices, fetch, make_quotes

pytestmark = pytest.mark.integration

_DEAD = "SELECT kafka_offset, kind, reason, kafka_timestamp FROM dead_letters ORDER BY kafka_offset"
_TOTALS = "SELECT sum(rows_in), sum(inserted), sum(duplicates), sum(dead_letters) FROM stream_task_commits"


def _records(values: list[bytes | None], first_offset: int = 0, stamp: int | None = BASE_MS) -> list[KafkaRecord]:
    return [KafkaRecord(v, "quotes", 0, first_offset + i, stamp) for i, v in enumerate(values)]


def _config(dsn: str, query_id: str, batch_id: int = 0, chunk_rows: int = 20_000) -> TaskConfig:
    return TaskConfig(dsn, None, "unused:", 300, query_id, batch_id, chunk_rows)


def _raw(**changes: object) -> bytes:
    base = Quote("AAPL", 150.0, BASE_MS, "finnhub-ws", "hostile", 1, 5).to_dict()
    base.update(changes)
    return json.dumps(base).encode()


def _assert_candles_exact(dsn: str) -> None:
    assert fetch(dsn, "SELECT * FROM stock_candles_1m ORDER BY symbol, minute") == fetch(
        dsn, CANDLE_RECOMPUTE_SQL + " ORDER BY 1, 2"
    )


def test_records_the_old_contract_let_through_to_postgresql_are_dead_letters_now(clean_tables: str) -> None:
    """Each of these passed the contract and then failed the whole span in PostgreSQL (or was stored wrong)."""
    good = make_quotes(40)
    hostile = [
        (_raw(producer_id="nul\x00byte"), "'producer_id' must be printable"),
        (_raw(producer_id="lone \ud800 surrogate"), "'producer_id' must be printable"),
        (_raw(producer_id="bell\x07"), "'producer_id' must be printable"),
        (_raw(price=0.001), "between 0.01 and"),  # stored as 0.00 before
        (_raw(volume=2**62), "'volume' must be between 0 and 100000000000"),  # two of them overflowed a candle
        (_raw(volume=2**62, event_time_ms=BASE_MS + 1), "'volume' must be between 0 and 100000000000"),
    ]
    values = [q.to_json() for q in good] + [v for v, _ in hostile]
    [summary] = write_records(_config(clean_tables, "q"), _records(values))
    assert (summary.inserted, summary.duplicates, summary.dead_letters) == (40, 0, len(hostile))
    dead = fetch(clean_tables, _DEAD)
    for (offset, kind, reason, _stamp), (_value, fragment) in zip(dead, hostile, strict=True):
        assert offset >= 40 and kind == "contract" and fragment in reason, reason
    assert fetch(clean_tables, "SELECT count(*) FROM stock_prices")[0][0] == 40
    _assert_candles_exact(clean_tables)


def test_a_kafka_timestamp_from_the_far_future_neither_licenses_the_event_time_nor_breaks_the_dead_letter(
    clean_tables: str,
) -> None:
    """Producers set Kafka timestamps: one from year 300000 made a far-future event time valid, and failed the insert."""
    far_ms = 9_000_000_000_000_000
    [summary] = write_records(_config(clean_tables, "q"), _records([_raw(event_time_ms=far_ms - 1000)], stamp=far_ms))
    assert (summary.inserted, summary.dead_letters) == (0, 1)
    [(_offset, kind, reason, stamp)] = fetch(clean_tables, _DEAD)
    assert kind == "contract" and "in the future" in reason and stamp is None


@pytest.fixture
def strict_database(services) -> str:
    """A migrated scratch database with one more rule than the contract knows (as an operator might add)."""
    with scratch_database(services.postgres_port, "strict") as dsn:
        apply_migrations(dsn)
        conn = psycopg2.connect(dsn)
        with conn, conn.cursor() as cur:
            cur.execute("ALTER TABLE stock_prices ADD CONSTRAINT no_rogue CHECK (producer_id <> 'rogue')")
        conn.close()
        yield dsn


@pytest.mark.parametrize("chunk_rows", [20_000, 7])
def test_a_record_postgresql_refuses_is_isolated_and_the_rest_of_the_span_commits(strict_database: str, chunk_rows: int) -> None:
    quotes = make_quotes(60)
    rogue = [3, 12]  # offsets of the refused records, in different chunks when chunks are small
    values: list[bytes | None] = [q.to_json() for q in quotes]
    for offset in rogue:
        values.insert(offset, _raw(producer_id="rogue", event_time_ms=BASE_MS + 10 * offset))
    values += [b"not json", quotes[5].to_json()]  # a contract dead letter and an exact copy ride along
    [summary] = write_records(_config(strict_database, "q", chunk_rows=chunk_rows), _records(values))
    assert (summary.rows_in, summary.inserted, summary.duplicates, summary.dead_letters) == (len(values), 60, 1, 3)
    dead = fetch(strict_database, _DEAD)
    assert [(o, k) for o, k, _r, _s in dead] == [(rogue[0], "database"), (rogue[1], "database"), (len(values) - 2, "contract")]
    assert all('violates check constraint "no_rogue"' in r for _o, k, r, _s in dead if k == "database")
    assert fetch(
        strict_database, "SELECT symbol, (EXTRACT(EPOCH FROM event_time) * 1000)::bigint FROM stock_prices ORDER BY 1, 2"
    ) == [r[:2] for r in expected_prices(quotes)]
    _assert_candles_exact(strict_database)
    assert fetch(strict_database, _TOTALS) == [(len(values), 60, 1, 3)]
    # Spark running the task again reports the same and writes nothing.
    [again] = write_records(_config(strict_database, "q", chunk_rows=chunk_rows), _records(values))
    assert again.replayed and (again.inserted, again.duplicates, again.dead_letters) == (60, 1, 3)


def test_a_different_record_with_a_stored_key_is_a_conflict_not_a_silent_duplicate(clean_tables: str) -> None:
    quotes = make_quotes(20)
    write_records(_config(clean_tables, "q", 0), _records([q.to_json() for q in quotes]))
    first = quotes[0]
    rival = Quote(first.symbol, first.price + 2.5, first.event_time_ms, "replay", "rival", 9, first.volume)
    resent = Quote(first.symbol, first.price, first.event_time_ms, "replay", "resender", 10, first.volume)
    # The stored row stays, whatever the order in a later batch: the rival is a conflict, the copy a duplicate.
    [later] = write_records(_config(clean_tables, "q", 1), _records([rival.to_json(), resent.to_json()], first_offset=100))
    assert (later.inserted, later.duplicates, later.dead_letters, later.valid) == (0, 1, 1, 1)
    [alone] = write_records(_config(clean_tables, "q", 2), _records([rival.to_json()], first_offset=200))
    assert (alone.inserted, alone.duplicates, alone.dead_letters, alone.valid) == (0, 0, 1, 0)
    assert alone.max_event_ms is None and alone.symbols == []  # nothing of the rival reaches Redis
    dead = fetch(clean_tables, _DEAD)
    assert [(o, k) for o, k, _r, _s in dead] == [(100, "conflict"), (200, "conflict")]
    assert all(f"kept price {first.price!r}, this one {rival.price!r}" in r for _o, _k, r, _s in dead)
    assert fetch(clean_tables, "SELECT count(*) FROM stock_prices WHERE producer_id <> 'test-producer'") == [(0,)]

    # Two new records of one key in one batch: the first by offset is stored, the other is its conflict.
    twin_a = Quote("NVDA", 10.0, BASE_MS + 999, "replay", "a", 1, 1)
    twin_b = Quote("NVDA", 11.0, BASE_MS + 999, "replay", "b", 2, 1)
    [twins] = write_records(_config(clean_tables, "q", 3), _records([twin_a.to_json(), twin_b.to_json()], first_offset=300))
    assert (twins.inserted, twins.duplicates, twins.dead_letters) == (1, 0, 1)
    assert fetch(clean_tables, "SELECT producer_id FROM stock_prices WHERE source = 'replay'") == [("a",)]
    assert fetch(clean_tables, "SELECT kafka_offset, kind FROM dead_letters WHERE kafka_offset >= 300") == [(301, "conflict")]


def test_ticks_of_a_compacted_day_are_refused_so_candles_and_bars_never_count_twice(clean_tables: str) -> None:
    day = datetime.fromtimestamp(BASE_MS / 1000, UTC).date()
    quotes = make_quotes(80, step_ms=1_000)
    values = [q.to_json() for q in quotes]
    write_records(_config(clean_tables, "live"), _records(values))
    report = compact_day(clean_tables, day, retention_days=1, today=day + timedelta(days=5))
    assert report.ticks_deleted == 80 and report.verified == len({q.symbol for q in quotes})
    candles = fetch(clean_tables, "SELECT * FROM stock_candles_1m ORDER BY 1, 2")
    bars = fetch(clean_tables, "SELECT symbol, day, open, high, low, close, volume, trade_count FROM stock_daily_bars ORDER BY 1")

    # The topic re-read from the start (a new query), and an old tape replayed with one late tick of that day.
    late = Quote("AAPL", 123.45, quotes[-1].event_time_ms + 5, "replay", "tape", 1, 7)
    [reread] = write_records(_config(clean_tables, "reread"), _records([*values, late.to_json()]))
    assert (reread.inserted, reread.duplicates, reread.dead_letters, reread.valid) == (0, 0, 81, 0)
    assert fetch(clean_tables, "SELECT * FROM stock_candles_1m ORDER BY 1, 2") == candles
    compact_day(clean_tables, day, retention_days=1, today=day + timedelta(days=5))
    assert (
        fetch(clean_tables, "SELECT symbol, day, open, high, low, close, volume, trade_count FROM stock_daily_bars ORDER BY 1")
        == bars
    )
    kinds = fetch(clean_tables, "SELECT kind, count(*), min(reason) FROM dead_letters GROUP BY kind")
    assert [(k, n) for k, n, _r in kinds] == [("closed_day", 81)] and "is compacted" in kinds[0][2]
    assert fetch(clean_tables, "SELECT count(*) FROM stock_prices")[0][0] == 0

    # The next day is open: its ticks are stored as usual.
    next_day = make_quotes(8, start_ms=BASE_MS + 86_400_000)
    [fresh] = write_records(
        _config(clean_tables, "live", 1), _records([q.to_json() for q in next_day], 500, BASE_MS + 86_400_000)
    )
    assert (fresh.inserted, fresh.dead_letters) == (8, 0)
    assert BatchSummary((reread, fresh)).rows_in == 89


def test_market_data_is_compared_as_the_table_rounds_it(clean_tables: str) -> None:
    """PostgreSQL rounds half away from zero to cents; the contract's comparison and the sink's SQL must agree."""
    at = BASE_MS + 123

    def one(price: float, producer: str, offset: int):
        quote = Quote("AAPL", price, at, "replay", producer, offset, 1)
        [summary] = write_records(_config(clean_tables, "q", offset), _records([quote.to_json()], first_offset=offset))
        return summary

    assert one(100.005, "a", 0).inserted == 1  # stored as 100.01
    assert one(100.01, "b", 1).duplicates == 1  # the same cents: the same fact
    assert one(100.0049, "c", 2).dead_letters == 1  # 100.00: another price
    assert fetch(clean_tables, "SELECT price::text FROM stock_prices") == [("100.01",)]
    assert fetch(clean_tables, "SELECT kafka_offset, kind FROM dead_letters") == [(2, "conflict")]


def test_a_tick_stored_after_the_bars_were_built_keeps_its_day_open_until_they_are_rebuilt(clean_tables: str) -> None:
    """Compaction builds bars, then (later, under the day's lock) removes ticks: a tick in between must not be lost."""
    day = datetime.fromtimestamp(BASE_MS / 1000, UTC).date()
    quotes = make_quotes(40, step_ms=1_000)
    write_records(_config(clean_tables, "live"), _records([q.to_json() for q in quotes]))
    conn = psycopg2.connect(clean_tables)
    try:
        report = CompactionReport(day=day)
        build_daily_bars(conn, day, report)
        late = Quote("MSFT", 555.55, BASE_MS + 60_000, "replay", "late", 1, 3)
        [stored] = write_records(_config(clean_tables, "live", 1), _records([late.to_json()], first_offset=100))
        assert stored.inserted == 1
        delete_verified_ticks(conn, day, 1, day + timedelta(days=5), report)
    finally:
        conn.close()
    left = fetch(clean_tables, "SELECT symbol, count(*) FROM stock_prices GROUP BY symbol")
    assert left == [("MSFT", 11)]  # its bar no longer matches its ticks: kept for the next run
    closed = fetch(clean_tables, "SELECT symbol FROM stock_daily_bars WHERE ticks_removed_at IS NOT NULL ORDER BY 1")
    assert closed == [("AAPL",), ("BRK.B",), ("NVDA",)]

    compact_day(clean_tables, day, retention_days=1, today=day + timedelta(days=5))  # the next run rebuilds
    assert fetch(clean_tables, "SELECT count(*) FROM stock_prices") == [(0,)]
    bars = fetch(clean_tables, "SELECT symbol, trade_count, verified FROM stock_daily_bars WHERE symbol = 'MSFT'")
    assert bars == [("MSFT", 11, True)]


def test_compaction_waits_for_a_writer_that_looked_at_the_day(clean_tables: str) -> None:
    """The writer's shared day lock holds compaction off until the writer commits (then it sees its ticks)."""
    day = datetime.fromtimestamp(BASE_MS / 1000, UTC).date()
    write_records(_config(clean_tables, "live"), _records([q.to_json() for q in make_quotes(8)]))
    compact_day(clean_tables, day, retention_days=30, today=day + timedelta(days=1))  # bars only
    writer = psycopg2.connect(clean_tables)
    done = threading.Event()

    def compact() -> None:
        conn = psycopg2.connect(clean_tables)
        try:
            delete_verified_ticks(conn, day, 1, day + timedelta(days=5), CompactionReport(day=day))
        finally:
            conn.close()
            done.set()

    try:
        with writer.cursor() as cur:
            assert closed_symbol_days(cur, [day_number(BASE_MS)]) == set()
            thread = threading.Thread(target=compact)
            thread.start()
            # Compaction, queued behind this writer on the day's own lock.
            waiting = (
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                " AND classid = %s AND objid = %s AND objsubid = 2"
            )
            key = (CLOSED_DAY_LOCK, day_number(BASE_MS))
            assert wait_until(lambda: fetch(clean_tables, waiting, key) == [(1,)], 10, interval=0.1)
            assert not done.is_set()
        writer.commit()
        thread.join(10)
        assert done.is_set()
    finally:
        writer.close()
    assert fetch(clean_tables, "SELECT count(*) FROM stock_prices") == [(0,)]
