"""Property test through the real stream job: whatever is published, every record ends in exactly one place.

Hypothesis builds batches of records around valid quotes with adversarial
fields (control characters, NUL, lone surrogates, over-long text, tiny,
huge and non-finite numbers, keys shared with other records), publishes
them to a real topic, and runs the real job (Spark, Kafka, PostgreSQL). The
job must finish, and each record must be either represented in stock_prices
(its row, or an exact copy of a stored row) or in dead_letters with a kind
that fits it. The oracle uses the contract only to learn a record's key.
"""

from __future__ import annotations

import json
import uuid

import psycopg2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kafka import KafkaProducer

from stock_platform.config import Settings
from stock_platform.quotes import SOURCES, Quote, QuoteError, parse_quote
from stock_platform.runtime.kafka_broker import delete_topic, ensure_topic
from stock_platform.streaming.job import StreamOptions, run_stream
from stock_platform.streaming.pg_sink import CANDLE_RECOMPUTE_SQL
from stock_platform_tests.streaming.conftest import BASE_MS, fetch, make_quotes, produce

pytestmark = [pytest.mark.integration, pytest.mark.slow]

_ANY_CHAR = st.characters(categories=["Cs", "Cc", "Cf", "Lu", "Ll", "Nd", "Zs", "Zl", "So", "Po"])
_ANY_TEXT = st.text(_ANY_CHAR, max_size=70)
_NUMBERS = (
    st.floats(allow_nan=True, allow_infinity=True)
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.sampled_from([0.001, 0.005, 0.0049, 0.01, 99_999_999.99, 99_999_999.995, 1e-300, 10**11, 10**11 + 1, 2**63])
)
_HOSTILE_FIELD = {
    "producer_id": _ANY_TEXT,
    "symbol": _ANY_TEXT | st.sampled_from(["AAPL", "BRK.B", "^GSPC", "aapl", "TOOLONGSYMBOL"]),
    "source": _ANY_TEXT | st.sampled_from(sorted(SOURCES)),
    "price": _NUMBERS,
    "volume": _NUMBERS,
    "day_high": _NUMBERS,
    "day_low": _NUMBERS,
    "open_price": _NUMBERS,
    "prev_close": _NUMBERS,
    "seq": _NUMBERS,
    "event_time_ms": _NUMBERS | st.integers(min_value=BASE_MS - 10**6, max_value=BASE_MS + 10**6),
}


@st.composite
def _record(draw: st.DrawFn, index: int) -> bytes:
    """A valid quote with some fields made hostile, an extra field now and then, or plain random bytes."""
    if draw(st.integers(0, 19)) == 0:
        return draw(st.binary(max_size=80))
    data: dict[str, object] = {
        "v": 1, "symbol": draw(st.sampled_from(["AAPL", "MSFT"])), "price": draw(st.floats(0.01, 5_000)),
        # Few distinct event times, so keys collide: exact copies and conflicts.
        "event_time_ms": BASE_MS + draw(st.integers(0, 40)) * 1000, "source": "simulator",
        "producer_id": f"p{index % 3}", "seq": index, "volume": draw(st.none() | st.integers(0, 10**6)),
    }  # fmt: skip
    hostile = draw(st.sampled_from([0, 0, 0, 1, 1, 2, 3]))  # most records stay valid, so keys meet in the table
    for name in draw(st.lists(st.sampled_from(sorted(_HOSTILE_FIELD)), min_size=hostile, max_size=hostile, unique=True)):
        data[name] = draw(_HOSTILE_FIELD[name])
    if draw(st.integers(0, 14)) == 0:
        data[draw(_ANY_TEXT)] = 1
    return json.dumps(data).encode()


@st.composite
def _batch(draw: st.DrawFn) -> list[bytes]:
    records = [draw(_record(i)) for i in range(draw(st.integers(20, 70)))]
    # Exact copies of some records, as a replay or a second producer would send them.
    return records + draw(st.lists(st.sampled_from(records), max_size=8))


def _publish(settings: Settings, values: list[bytes]) -> dict[tuple[int, int], tuple[bytes, int]]:
    """Send each value keyed by a symbol-ish key; (partition, offset) -> (value, broker timestamp)."""
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all", linger_ms=5)
    try:
        futures = [(v, producer.send(settings.kafka_topic, key=v[:4], value=v)) for v in values]
        producer.flush(60)
        placed = {}
        for value, future in futures:
            meta = future.get(30)
            placed[(meta.partition, meta.offset)] = (value, meta.timestamp)
        return placed
    finally:
        producer.close()


def _stored(dsn: str) -> dict[tuple[str, int], tuple]:
    rows = fetch(
        dsn,
        "SELECT symbol, (EXTRACT(EPOCH FROM event_time) * 1000)::bigint, price, volume, day_high, day_low, open_price,"
        " prev_close FROM stock_prices",
    )
    return {(r[0], r[1]): tuple(r[2:]) for r in rows}


def _truncate(dsn: str) -> None:
    """Empty the tables between examples (a compacted day left by another test would close the examples' day)."""
    conn = psycopg2.connect(dsn)
    with conn, conn.cursor() as cur:
        cur.execute(
            "TRUNCATE stock_prices, stock_candles_1m, stock_daily_bars, dead_letters, stream_batches, stream_task_commits"
        )
    conn.close()


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(values=_batch())
def test_every_published_record_ends_in_exactly_one_place_and_the_job_keeps_going(
    spark, platform_settings, tmp_path, values
) -> None:
    topic = f"hostile-{uuid.uuid4().hex[:8]}"
    ensure_topic(platform_settings.kafka_bootstrap_servers, topic, 2)
    settings_ = platform_settings.replace(kafka_topic=topic)
    dsn = settings_.postgres_dsn
    _truncate(dsn)
    try:
        placed = _publish(settings_, values)
        options = StreamOptions(available_now=True, checkpoint=tmp_path / f"cp-{topic}", max_offsets_per_trigger=25)
        assert run_stream(settings_, options, spark=spark, handle_signals=False) == 0
    finally:
        delete_topic(platform_settings.kafka_bootstrap_servers, topic)

    dead = {
        (p, o): (kind, reason)
        for p, o, kind, reason in fetch(dsn, "SELECT kafka_partition, kafka_offset, kind, reason FROM dead_letters")
    }
    stored = _stored(dsn)
    kept_keys = set()
    for where, (value, stamp) in placed.items():
        try:
            quote = parse_quote(value, now_ms=stamp)
        except QuoteError:
            assert dead.get(where, ("missing",))[0] == "contract", (value, dead.get(where))
            continue
        key = (quote.symbol, quote.event_time_ms)
        assert key in stored, (value, dead.get(where))
        if where in dead:
            kind, reason = dead[where]
            assert kind == "conflict" and stored[key] != quote.market_data(), (value, kind, reason)
        else:
            assert stored[key] == quote.market_data(), value  # its own row, or an exact copy of the stored one
            kept_keys.add(key)
    assert set(stored) == kept_keys and set(dead) <= set(placed)
    rows_in, inserted, duplicates, dead_letters = fetch(
        dsn, "SELECT sum(rows_in), sum(inserted), sum(duplicates), sum(dead_letters) FROM stream_batches"
    )[0]
    assert (rows_in, inserted, dead_letters) == (len(placed), len(stored), len(dead))
    assert inserted + duplicates + dead_letters == rows_in
    assert fetch(dsn, "SELECT * FROM stock_candles_1m ORDER BY 1, 2") == fetch(dsn, CANDLE_RECOMPUTE_SQL + " ORDER BY 1, 2")


def test_a_record_postgresql_refuses_costs_a_dead_letter_not_the_job(spark, platform_settings, clean_tables, tmp_path) -> None:
    """Before, such a record failed its batch on every restart, forever: nothing more reached PostgreSQL or Redis."""
    dsn = platform_settings.postgres_dsn
    quotes = make_quotes(200)
    rogue = [Quote("MSFT", 321.0, BASE_MS + 7 + i, "simulator", "rogue", 9000 + i, 1) for i in range(2)]
    produce(platform_settings, [*quotes[:100], rogue[0], *quotes[100:], rogue[1]])
    conn = psycopg2.connect(dsn)
    with conn, conn.cursor() as cur:
        cur.execute("ALTER TABLE stock_prices ADD CONSTRAINT no_rogue CHECK (producer_id <> 'rogue')")
    try:
        options = StreamOptions(available_now=True, checkpoint=tmp_path / "cp", max_offsets_per_trigger=60)
        assert run_stream(platform_settings, options, spark=spark, handle_signals=False) == 0
    finally:
        with conn, conn.cursor() as cur:
            cur.execute("ALTER TABLE stock_prices DROP CONSTRAINT no_rogue")
        conn.close()
    assert fetch(dsn, "SELECT count(*) FROM stock_prices") == [(200,)]
    dead = fetch(dsn, "SELECT kind, reason FROM dead_letters")
    assert len(dead) == 2 and all(k == "database" and "no_rogue" in r for k, r in dead), dead
    assert fetch(dsn, "SELECT sum(rows_in), sum(inserted), sum(dead_letters) FROM stream_batches") == [(202, 200, 2)]
