"""Assets materialised against the real PostgreSQL (and Kafka for the topic): tables, compaction, checks."""

import json
import os
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import dagster as dg
import psycopg2
import pytest
import redis
from kafka import KafkaProducer

from stock_platform.config import Settings
from stock_platform.orchestration.assets import (
    dead_letters,
    observe_topic_job,
    stock_candles_1m,
    stock_prices,
    stock_quotes_topic,
)
from stock_platform.orchestration.checks import FRESHNESS_SECONDS, all_checks
from stock_platform.orchestration.daily import stock_daily_bars
from stock_platform.orchestration.resources import KafkaResource, PostgresResource, RedisResource
from stock_platform.storage.heartbeats import STALE_AFTER_SECONDS, queue_producer_beat
from stock_platform.storage.redis_keys import RedisKeys

pytestmark = pytest.mark.integration


def _resources(settings: Settings) -> dict[str, Any]:
    return {
        "postgres": PostgresResource(dsn=settings.postgres_dsn),
        "redis": RedisResource(url=settings.redis_url, key_prefix=settings.redis_key_prefix),
        "kafka": KafkaResource(bootstrap_servers=settings.kafka_bootstrap_servers, topic=settings.kafka_topic),
    }


def _exec(dsn: str, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    conn = psycopg2.connect(dsn)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(query, params)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


def _insert_day(dsn: str, day: date, symbol: str, prices: list[list[float]], candle_count_off: int = 0) -> None:
    """Ticks at second 0, 1, 2 ... of consecutive minutes, and the candles the stream would have built from them."""
    start = datetime(day.year, day.month, day.day, 14, 30)
    conn = psycopg2.connect(dsn)
    with conn, conn.cursor() as cur:
        for m, minute_prices in enumerate(prices):
            minute = start + timedelta(minutes=m)
            for s, price in enumerate(minute_prices):
                cur.execute(
                    "INSERT INTO stock_prices (symbol, price, volume, event_time, source, producer_id, seq)"
                    " VALUES (%s, %s, 10, %s, 'simulator', 'test', %s)",
                    (symbol, price, minute + timedelta(seconds=s), m * 100 + s),
                )
            cur.execute(
                "INSERT INTO stock_candles_1m (symbol, minute, open, high, low, close, volume, trade_count,"
                " first_event_time, last_event_time) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    symbol, minute, minute_prices[0], max(minute_prices), min(minute_prices), minute_prices[-1],
                    10 * len(minute_prices), len(minute_prices) + candle_count_off,
                    minute, minute + timedelta(seconds=len(minute_prices) - 1),
                ),
            )  # fmt: skip
    conn.close()


def _checks_for(*assets: dg.AssetsDefinition) -> list[dg.AssetChecksDefinition]:
    keys = {a.key for a in assets}
    return [c for c in all_checks() if {k.asset_key for k in c.check_keys} <= keys]


def _ticks(dsn: str, day: date, symbol: str) -> int:
    start = datetime(day.year, day.month, day.day)
    return _exec(
        dsn,
        "SELECT count(*) FROM stock_prices WHERE symbol = %s AND event_time >= %s AND event_time < %s",
        (symbol, start, start + timedelta(days=1)),
    )[0][0]


def _bars(dsn: str, day: date) -> list[tuple[Any, ...]]:
    return _exec(
        dsn,
        "SELECT symbol, open, high, low, close, volume, trade_count, candle_count, verified"
        " FROM stock_daily_bars WHERE day = %s ORDER BY symbol",
        (day,),
    )


def test_table_assets_apply_migrations_and_report_metadata(platform_settings: Settings, clean_tables: str) -> None:
    _insert_day(clean_tables, date(2025, 3, 3), "AAPL", [[100.0, 101.0], [102.0]])
    result = dg.materialize([stock_prices, dead_letters, stock_candles_1m], resources=_resources(platform_settings))
    assert result.success
    prices = result.asset_materializations_for_node("stock_prices")[0].metadata
    assert prices["dagster/row_count"].value == 3
    assert prices["newest_event_time"].value == "2025-03-03T14:31:00"
    assert prices["size_bytes"].value > 0
    candles = result.asset_materializations_for_node("stock_candles_1m")[0].metadata
    assert candles["dagster/row_count"].value == 2
    assert result.asset_materializations_for_node("dead_letters")[0].metadata["dagster/row_count"].value == 0


def test_compaction_builds_verified_bars_and_removes_only_verified_old_ticks(
    platform_settings: Settings, clean_tables: str
) -> None:
    today = datetime.now(UTC).date()
    old, recent = today - timedelta(days=10), today - timedelta(days=1)
    _insert_day(clean_tables, old, "AAA", [[10.0, 12.0, 9.5], [11.0, 11.5], [10.5]])
    _insert_day(clean_tables, old, "BBB", [[50.0], [51.0, 49.0]])
    # A candle that missed a tick: its day cannot be verified, so its raw ticks must stay.
    _insert_day(clean_tables, old, "CCC", [[5.0, 6.0]], candle_count_off=-1)
    _insert_day(clean_tables, recent, "AAA", [[20.0, 21.0]])
    resources = _resources(platform_settings)

    result = dg.materialize([stock_daily_bars], partition_key=old.isoformat(), resources=resources)
    assert result.success
    first = _bars(clean_tables, old)
    assert first == [
        ("AAA", Decimal("10.00"), Decimal("12.00"), Decimal("9.50"), Decimal("10.50"), 60, 6, 3, True),
        ("BBB", Decimal("50.00"), Decimal("51.00"), Decimal("49.00"), Decimal("49.00"), 30, 3, 2, True),
        ("CCC", Decimal("5.00"), Decimal("6.00"), Decimal("5.00"), Decimal("6.00"), 20, 1, 1, False),
    ]
    assert (_ticks(clean_tables, old, "AAA"), _ticks(clean_tables, old, "BBB"), _ticks(clean_tables, old, "CCC")) == (0, 0, 2)
    metadata = result.asset_materializations_for_node("stock_daily_bars")[0].metadata
    assert metadata["raw_ticks_deleted"].value == 9 and metadata["bars_verified"].value == 2

    # Re-running the day gives the same bars (verdicts kept though the ticks are gone) and deletes nothing more.
    again = dg.materialize([stock_daily_bars], partition_key=old.isoformat(), resources=resources)
    assert _bars(clean_tables, old) == first
    assert again.asset_materializations_for_node("stock_daily_bars")[0].metadata["raw_ticks_deleted"].value == 0
    assert _ticks(clean_tables, old, "CCC") == 2

    # A day inside the retention window gets its bars but keeps every raw tick.
    dg.materialize([stock_daily_bars], partition_key=recent.isoformat(), resources=resources)
    assert _bars(clean_tables, recent)[0][-1] is True
    assert _ticks(clean_tables, recent, "AAA") == 2


def test_the_nightly_run_applies_retention_to_older_expired_days(platform_settings: Settings, clean_tables: str) -> None:
    """The schedule compacts yesterday, never old enough itself: earlier expired days are swept in the same run."""
    today = datetime.now(UTC).date()
    expired, kept, yesterday = today - timedelta(days=12), today - timedelta(days=3), today - timedelta(days=1)
    _insert_day(clean_tables, expired, "AAA", [[10.0, 12.0], [11.0]])
    _insert_day(clean_tables, expired, "CCC", [[5.0, 6.0]], candle_count_off=-1)  # cannot be verified: kept
    _insert_day(clean_tables, kept, "AAA", [[30.0]])
    _insert_day(clean_tables, yesterday, "AAA", [[20.0, 21.0]])
    ledger = (
        "INSERT INTO stream_task_commits (query_id, batch_id, topic, kafka_partition, start_offset, end_offset,"
        " committed_at) VALUES (%s, 0, 't', 0, 0, 1, %s)"
    )
    with psycopg2.connect(clean_tables) as conn, conn.cursor() as cur:
        cur.execute(ledger, ("old-query", datetime(expired.year, expired.month, expired.day)))
        cur.execute(ledger, ("new-query", datetime(kept.year, kept.month, kept.day)))
    resources = _resources(platform_settings)

    result = dg.materialize([stock_daily_bars], partition_key=yesterday.isoformat(), resources=resources)
    metadata = result.asset_materializations_for_node("stock_daily_bars")[0].metadata
    assert metadata["task_ledger_rows_deleted"].value == 1
    with psycopg2.connect(clean_tables) as conn, conn.cursor() as cur:
        cur.execute("SELECT query_id FROM stream_task_commits")
        assert cur.fetchall() == [("new-query",)], "a span row inside the window is kept for re-runs"
    assert metadata["older_days_swept"].value == [expired.isoformat()]
    assert metadata["older_raw_ticks_deleted"].value == 3 and metadata["older_raw_ticks_kept_unverified"].value == 2
    assert [(b[0], b[-1]) for b in _bars(clean_tables, expired)] == [("AAA", True), ("CCC", False)]
    assert (_ticks(clean_tables, expired, "AAA"), _ticks(clean_tables, expired, "CCC")) == (0, 2)
    assert _ticks(clean_tables, kept, "AAA") == 1 and _ticks(clean_tables, yesterday, "AAA") == 2
    assert _bars(clean_tables, kept) == [], "a day inside the window is not touched by the sweep"

    # The next night changes nothing more: the unverified day is re-checked and its ticks stay.
    again = dg.materialize([stock_daily_bars], partition_key=yesterday.isoformat(), resources=resources)
    assert again.asset_materializations_for_node("stock_daily_bars")[0].metadata["older_raw_ticks_deleted"].value == 0
    assert _ticks(clean_tables, expired, "CCC") == 2


def test_checks_pass_on_good_data_and_fail_on_broken_invariants(platform_settings: Settings, clean_tables: str) -> None:
    day = date(2025, 4, 1)
    _insert_day(clean_tables, day, "AAA", [[10.0, 11.0], [12.0]])
    resources = _resources(platform_settings)

    def run_checks(*assets: dg.AssetsDefinition) -> dict[str, dg.AssetCheckEvaluation]:
        tables = dg.materialize([*assets, *_checks_for(*assets)], resources=resources)
        daily = dg.materialize(
            [stock_daily_bars, *_checks_for(stock_daily_bars)], partition_key=day.isoformat(), resources=resources
        )
        return {e.check_name: e for r in (tables, daily) for e in r.get_asset_check_evaluations()}

    outcomes = run_checks(stock_prices, dead_letters, stock_candles_1m)
    assert {name: e.passed for name, e in outcomes.items()} == {
        "stock_prices_unique": True,
        "stock_prices_fresh": True,
        "stock_candles_ohlc_valid": True,
        "daily_bars_ohlc_valid": True,
        "daily_bars_reconcile_with_candles": True,
        "dead_letters_per_hour": True,
    }

    # Break a candle (close above high), so the bar rebuilt from it breaks OHLC too, and add dead letters.
    _exec(
        clean_tables,
        "UPDATE stock_candles_1m SET close = high + 1 WHERE symbol = 'AAA' AND minute = %s",
        (datetime(2025, 4, 1, 14, 31),),
    )
    for n in range(3):
        _exec(
            clean_tables,
            "INSERT INTO dead_letters (topic, kafka_partition, kafka_offset, reason) VALUES ('t', 0, %s, 'bad')",
            (n,),
        )
    outcomes = run_checks(stock_prices, dead_letters, stock_candles_1m)
    assert outcomes["stock_candles_ohlc_valid"].passed is False
    assert outcomes["stock_candles_ohlc_valid"].metadata["bad_candles"].value == 1
    assert outcomes["daily_bars_ohlc_valid"].passed is False
    assert outcomes["dead_letters_per_hour"].metadata["dead_letters_last_hour"].value == 3

    # A bar edited by hand no longer reconciles with its candles.
    _exec(clean_tables, "UPDATE stock_daily_bars SET trade_count = trade_count + 5")
    reconcile = dg.materialize(
        [stock_daily_bars, *_checks_for(stock_daily_bars)],
        resources=resources,
        selection=dg.AssetSelection.checks_for_assets(stock_daily_bars),
    )
    evaluation = {e.check_name: e for e in reconcile.get_asset_check_evaluations()}["daily_bars_reconcile_with_candles"]
    assert evaluation.passed is False and evaluation.metadata["mismatched_bars"].value == 1


def test_topic_observation_reports_end_offsets_and_lag(platform_settings: Settings, clean_tables: str) -> None:
    topic = platform_settings.kafka_topic
    producer = KafkaProducer(bootstrap_servers=platform_settings.kafka_bootstrap_servers)
    for n in range(6):
        producer.send(topic, value=b'{"n": %d}' % n, partition=0)
    for n in range(4):
        producer.send(topic, value=b'{"n": %d}' % n, partition=1)
    producer.flush()
    producer.close()
    # Spark's offsets JSON is {topic: {partition: next offset}}, and a batch lists only the partitions it read:
    # an older batch finished partition 0; the newest (reading two topics) moved partition 1 to 3 of 4.
    batches = [
        (0, topic, {topic: {"0": 6, "1": 1}}, 30),
        (1, f"other-topic,{topic}", {topic: {"1": 3}, "other-topic": {"0": 9}}, 1),
    ]
    for batch_id, topics, end_offsets, age_s in batches:
        _exec(
            clean_tables,
            "INSERT INTO stream_batches (query_id, batch_id, topic, start_offsets, end_offsets, rows_in, inserted,"
            " duplicates, dead_letters, committed_at) VALUES ('q', %s, %s, '{}', %s, 1, 1, 0, 0,"
            " (now() AT TIME ZONE 'UTC') - make_interval(secs => %s))",
            (batch_id, topics, json.dumps(end_offsets), age_s),
        )
    defs = dg.Definitions(assets=[stock_quotes_topic], jobs=[observe_topic_job], resources=_resources(platform_settings))
    result = defs.resolve_job_def(observe_topic_job.name).execute_in_process()
    observations = [
        e.event_specific_data.asset_observation for e in result.all_events if e.event_type_value == "ASSET_OBSERVATION"
    ]
    assert len(observations) == 1
    metadata = observations[0].metadata
    assert metadata["messages_published"].value == 10
    assert metadata["end_offsets"].value == {"0": 6, "1": 4, "2": 0}
    assert metadata["consumer_lag_by_partition"].value == {"0": 0, "1": 1, "2": 0}
    assert metadata["consumer_lag"].value == 1


def _stream_batch(dsn: str, batch_id: int, inserted: int, age_s: float) -> None:
    _exec(
        dsn,
        "INSERT INTO stream_batches (query_id, batch_id, topic, start_offsets, end_offsets, rows_in, inserted,"
        " duplicates, dead_letters, committed_at) VALUES ('q', %s, 't', '{}', '{}', %s, %s, 0, 0,"
        " (now() AT TIME ZONE 'UTC') - make_interval(secs => %s))",
        (batch_id, inserted, inserted, age_s),
    )


def test_freshness_is_judged_only_while_the_feed_runs(platform_settings: Settings, clean_tables: str) -> None:
    """With a producer heartbeat, the check fails until a batch inserts rows, and again once that batch is old."""
    resources = _resources(platform_settings)
    check = next(c for c in _checks_for(stock_prices) if "stock_prices_fresh" in {k.name for k in c.check_keys})

    def evaluate() -> dg.AssetCheckEvaluation:
        result = dg.materialize([stock_prices, check], resources=resources)
        return next(e for e in result.get_asset_check_evaluations() if e.check_name == "stock_prices_fresh")

    stopped = evaluate()
    assert stopped.passed and stopped.metadata["feed_running"].value is False

    keys = resources["redis"].key_layout()
    client = redis.Redis.from_url(platform_settings.redis_url)
    # A producer that stopped beating a while ago is no running feed: the shared stale rule says so.
    _producer_beat(client, keys, "gone", time.time() - STALE_AFTER_SECONDS - 5)
    assert evaluate().metadata["feed_running"].value is False
    _producer_beat(client, keys, "live", time.time())
    try:
        never = evaluate()
        assert not never.passed and never.metadata["newest_ingestion_age_s"].value == -1.0

        _stream_batch(clean_tables, 1, inserted=50, age_s=FRESHNESS_SECONDS + 60)
        _stream_batch(clean_tables, 2, inserted=0, age_s=1)  # a batch of duplicates only is no new data
        stale = evaluate()
        assert not stale.passed and stale.metadata["newest_ingestion_age_s"].value > FRESHNESS_SECONDS

        _stream_batch(clean_tables, 3, inserted=10, age_s=5)
        fresh = evaluate()
        assert fresh.passed and fresh.metadata["newest_ingestion_age_s"].value < 60
    finally:
        client.delete(keys.producer_heartbeat("gone"), keys.producer_heartbeat("live"), keys.producers)
        client.close()


def _producer_beat(client: redis.Redis, keys: RedisKeys, producer_id: str, at: float) -> None:
    """A producer heartbeat last written at `at` (epoch s), as `ingestion.heartbeat` writes it."""
    with client.pipeline() as pipe:
        queue_producer_beat(pipe, keys, producer_id, {"pid": os.getpid(), "updated_ms": int(at * 1000)}, int(at * 1000))
        pipe.execute()


def test_the_table_checks_run_on_their_own_schedule_without_materialising(platform_settings: Settings, clean_tables: str) -> None:
    from stock_platform.orchestration.checks import table_checks_job, table_checks_schedule

    _insert_day(clean_tables, date(2025, 4, 1), "AAA", [[10.0, 11.0]])
    defs = dg.Definitions(
        assets=[stock_prices, dead_letters], asset_checks=all_checks()[:1] + all_checks()[1:2] + all_checks()[-1:],
        jobs=[table_checks_job], schedules=[table_checks_schedule], resources=_resources(platform_settings),
    )  # fmt: skip
    result = defs.resolve_job_def("check_stream_tables").execute_in_process()
    assert result.success
    assert {e.check_name for e in result.get_asset_check_evaluations()} == {
        "stock_prices_fresh", "dead_letters_per_hour",
    }  # fmt: skip
    assert not result.get_asset_materialization_events(), "checks only: the tables are not materialised again"
    assert table_checks_schedule.default_status == dg.DefaultScheduleStatus.RUNNING
