"""The stream job against real Kafka, Spark, PostgreSQL and Redis: exact contents, idempotence, candles, Redis."""

from __future__ import annotations

import dataclasses
import json
import logging
import random

import psycopg2
import pytest
import redis

from stock_platform.config import Settings
from stock_platform.storage.redis_keys import RedisKeys
from stock_platform.streaming.job import StreamOptions, run_stream
from stock_platform.streaming.pg_sink import CANDLE_RECOMPUTE_SQL
from stock_platform_tests.streaming.conftest import (
    BASE_MS,
    expected_prices,
    fetch,
    invalid_records,
    make_quotes,
    produce,
    snapshot,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _drain(spark, settings: Settings, checkpoint, max_offsets: int = 10_000) -> None:
    options = StreamOptions(available_now=True, checkpoint=checkpoint, max_offsets_per_trigger=max_offsets)
    assert run_stream(settings, options, spark=spark, handle_signals=False) == 0


def _assert_candles_match_recomputation(dsn: str) -> int:
    stored = fetch(dsn, "SELECT * FROM stock_candles_1m ORDER BY symbol, minute")
    recomputed = fetch(dsn, CANDLE_RECOMPUTE_SQL + " ORDER BY 1, 2")
    assert stored == recomputed
    return len(stored)


def test_mixed_stream_ends_with_exactly_the_unique_valid_quotes(spark, platform_settings, clean_tables, tmp_path) -> None:
    settings = platform_settings
    quotes = make_quotes(400)
    bad = invalid_records()
    stream: list = list(quotes) + quotes[::7] + [(b"AAPL", v) for v, _ in bad]
    random.Random(4).shuffle(stream)
    produce(settings, stream)
    _drain(spark, settings, tmp_path / "cp", max_offsets=150)

    db = snapshot(settings.postgres_dsn)
    assert db["prices"] == expected_prices(quotes)
    assert len(db["dead"]) == len(bad)
    reasons = {raw: reason for _t, _p, _o, raw, reason in db["dead"]}
    for value, fragment in bad:
        assert fragment in reasons[value], (value, reasons.get(value))
    assert all(t == settings.kafka_topic for t, *_ in db["dead"])
    assert _assert_candles_match_recomputation(settings.postgres_dsn) > 0

    batches = fetch(settings.postgres_dsn, "SELECT rows_in, inserted, duplicates, dead_letters, end_offsets FROM stream_batches")
    assert sum(b[0] for b in batches) == len(stream)
    assert sum(b[1] for b in batches) == len(quotes)
    assert sum(b[2] for b in batches) == len(quotes[::7])
    assert sum(b[3] for b in batches) == len(bad)
    assert sum(sum(b[4][settings.kafka_topic].values()) for b in batches if b[4]) > 0

    # Re-reading the whole topic with a fresh checkpoint changes nothing.
    _drain(spark, settings, tmp_path / "cp-again", max_offsets=1000)
    assert snapshot(settings.postgres_dsn) == db


def test_redis_gets_latest_ticks_symbols_and_heartbeat_with_ttl(spark, platform_settings, clean_tables, tmp_path) -> None:
    settings = platform_settings
    quotes = make_quotes(200, step_ms=5_000)  # 50 ticks per symbol over ~4 minutes
    produce(settings, quotes)
    r = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    keys = RedisKeys(settings.redis_key_prefix)
    pubsub = r.pubsub()
    pubsub.subscribe(keys.updates_channel)
    _drain(spark, settings, tmp_path / "cp", max_offsets=60)

    symbols = {q.symbol for q in quotes}
    assert r.smembers(keys.symbols) == symbols
    for sym in symbols:
        newest = max((q for q in quotes if q.symbol == sym), key=lambda q: q.event_time_ms)
        latest = r.hgetall(keys.latest(sym))
        assert int(latest["event_time_ms"]) == newest.event_time_ms and float(latest["price"]) == newest.price
        assert "updated_ms" in latest
        assert 0 < r.ttl(keys.latest(sym)) <= settings.redis_ttl_seconds
        ticks = r.zrange(keys.ticks(sym), 0, -1, withscores=True)
        in_window = [q for q in quotes if q.symbol == sym and q.event_time_ms >= newest.event_time_ms - 300_000]
        assert len(ticks) == len(in_window)
        assert json.loads(ticks[-1][0])["p"] == newest.price and ticks[-1][1] == newest.event_time_ms
        assert 0 < r.ttl(keys.ticks(sym)) <= settings.redis_ttl_seconds
    beat = r.hgetall(keys.heartbeat("stream"))
    assert int(beat["rows_in"]) > 0 and beat["query_id"] and 0 < r.ttl(keys.heartbeat("stream")) <= 120
    assert int(beat["pid"]) > 0 and int(beat["updated_ms"]) >= int(beat["started_ms"]) > 0
    notices = []
    while (m := pubsub.get_message(timeout=1.0)) is not None:
        if m["type"] == "message":
            notices.append(json.loads(m["data"]))
    assert notices and set().union(*(n["symbols"] for n in notices)) == symbols

    # A late batch with older ticks must not move `latest` backwards.
    old = [dataclasses.replace(q, event_time_ms=q.event_time_ms - 3_600_000, price=1.0) for q in quotes[:8]]
    produce(settings, old)
    _drain(spark, settings, tmp_path / "cp")
    for sym in symbols:
        assert float(r.hget(keys.latest(sym), "price")) != 1.0


def test_candles_equal_recomputation_with_ticks_out_of_order_across_batches(
    spark, platform_settings, clean_tables, tmp_path
) -> None:
    settings = platform_settings
    quotes = make_quotes(1200, step_ms=1_500)  # ~7.5 minutes per symbol: several candles each
    rng = random.Random(7)
    shuffled = quotes[:]
    rng.shuffle(shuffled)
    half = len(shuffled) // 2
    # Two deliveries, each in many small batches and random order: every minute gets ticks late and early.
    produce(settings, shuffled[:half])
    _drain(spark, settings, tmp_path / "cp", max_offsets=45)
    produce(settings, shuffled[half:])
    _drain(spark, settings, tmp_path / "cp", max_offsets=45)

    assert fetch(settings.postgres_dsn, "SELECT count(*) FROM stock_prices")[0][0] == len(quotes)
    n = _assert_candles_match_recomputation(settings.postgres_dsn)
    assert n >= 4 * 7
    # Spot-check one candle by hand: open/close are the first/last by event time, not arrival.
    sym = quotes[0].symbol
    minute_ms = (BASE_MS // 60_000 + 2) * 60_000
    ticks = sorted(
        (q for q in quotes if q.symbol == sym and minute_ms <= q.event_time_ms < minute_ms + 60_000),
        key=lambda q: q.event_time_ms,
    )
    row = fetch(
        settings.postgres_dsn,
        "SELECT open::float8, close::float8, trade_count, volume FROM stock_candles_1m"
        " WHERE symbol = %s AND minute = TIMESTAMP '1970-01-01' + %s * INTERVAL '1 millisecond'",
        (sym, minute_ms),
    )[0]
    trades_volume = sum(q.volume or 0 for q in ticks if q.day_high is None)
    assert row == (ticks[0].price, ticks[-1].price, len(ticks), trades_volume)


def test_spark_side_parsing_agrees_with_the_python_function(spark, platform_settings) -> None:
    from pyspark.sql import functions as F  # noqa: N812

    from stock_platform.streaming.parse import PARSED_SCHEMA, DeadLetter, KafkaRecord, parse_kafka_frame, parse_record

    settings = platform_settings
    quotes = make_quotes(40)
    bad = invalid_records()
    produce(settings, list(quotes) + [(b"K", v) for v, _ in bad])
    raw = (
        spark.read.format("kafka")
        .option("kafka.bootstrap.servers", settings.kafka_bootstrap_servers)
        .option("subscribe", settings.kafka_topic)
        .option("startingOffsets", "earliest")
        .load()
    )
    parsed = parse_kafka_frame(raw)
    assert parsed.schema == PARSED_SCHEMA
    by_coord = {(r.partition, r.offset): r for r in parsed.collect()}
    rows = raw.select("key", "value", "topic", "partition", "offset", F.unix_millis("timestamp").alias("ts")).collect()
    assert len(rows) == len(by_coord) == len(quotes) + len(bad)
    errors = 0
    for r in rows:
        value = None if r.value is None else bytes(r.value)
        expected = parse_record(KafkaRecord(value, r.topic, r.partition, r.offset, r.ts, bytes(r.key)))
        got = by_coord[(r.partition, r.offset)]
        if isinstance(expected, DeadLetter):
            errors += 1
            assert got.error == expected.reason and got.symbol is None
        else:
            assert got.error is None
            assert (got.symbol, got.price, got.event_time_ms, got.volume, got.day_high) == (
                expected.symbol,
                expected.price,
                expected.event_time_ms,
                expected.volume,
                expected.day_high,
            )
    assert errors == len(bad)


def test_batch_rerun_from_the_checkpoint_changes_nothing(spark, platform_settings, clean_tables, tmp_path, caplog) -> None:
    # A crash after the PostgreSQL commit but before Spark's: the checkpoint has offsets for the
    # last batch and no commit, so the restart runs that batch again (and Spark 4.1 then hits
    # SPARK-55271, which the job survives by restarting its query).
    settings = platform_settings
    produce(settings, make_quotes(300) + [(b"K", v) for v, _ in invalid_records()])
    checkpoint = tmp_path / "cp"
    _drain(spark, settings, checkpoint, max_offsets=100)
    before = snapshot(settings.postgres_dsn)
    batches_before = fetch(settings.postgres_dsn, "SELECT batch_id, inserted FROM stream_batches ORDER BY 1")
    last = max(int(p.name) for p in (checkpoint / "commits").iterdir() if p.name.isdigit())
    (checkpoint / "commits" / str(last)).unlink()
    (checkpoint / "commits" / f".{last}.crc").unlink(missing_ok=True)
    # And the driver died before recording the batch: its tasks had committed, its stream_batches row is missing.
    conn = psycopg2.connect(settings.postgres_dsn)
    with conn, conn.cursor() as cur:
        cur.execute("DELETE FROM stream_batches WHERE batch_id = %s", (last,))
    conn.close()

    tasks_before = fetch(settings.postgres_dsn, "SELECT * FROM stream_task_commits ORDER BY 1, 2, 3, 4, 5")
    with caplog.at_level(logging.INFO, logger="stock_platform.streaming.processor"):
        _drain(spark, settings, checkpoint, max_offsets=100)
    assert f"batch {last} of query" in caplog.text and "already committed" in caplog.text
    assert snapshot(settings.postgres_dsn) == before
    assert fetch(settings.postgres_dsn, "SELECT batch_id, inserted FROM stream_batches ORDER BY 1") == batches_before
    assert fetch(settings.postgres_dsn, "SELECT * FROM stream_task_commits ORDER BY 1, 2, 3, 4, 5") == tasks_before
    assert (checkpoint / "commits" / str(last)).exists()
