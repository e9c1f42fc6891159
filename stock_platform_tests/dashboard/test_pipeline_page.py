"""The pipeline-health page: heartbeats, failed runs, freshness, throughput, Kafka lag, dead letters, services down."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from kafka import KafkaProducer

from stock_platform.storage.heartbeats import STALE_AFTER_SECONDS
from stock_platform_tests.dashboard.conftest import free_port, texts
from stock_platform_tests.dashboard.seed import (
    insert_ticks,
    now_utc,
    seed_dead_letter,
    seed_heartbeat,
    seed_run_failure,
    seed_stream_batch,
    seed_supervisor_decision,
)

pytestmark = pytest.mark.integration


def _produce(settings, partition: int, count: int) -> None:
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    for i in range(count):
        producer.send(settings.kafka_topic, value=b"{}", key=b"AAPL", partition=partition).get(timeout=10)
        del i
    producer.close()


def test_empty_pipeline_says_what_is_missing(run_page, dash_settings) -> None:
    at = run_page("pipeline", dash_settings)
    assert not at.exception
    markdown = texts(at.markdown)
    assert "🔴 producer: red" in markdown and "🔴 stream: red" in markdown
    assert "no heartbeat in Redis" in texts(at.caption)
    infos = texts(at.info)
    assert "No ticks in PostgreSQL yet" in infos
    assert "No stream batches committed" in infos
    assert "🟢 0 in total, 0 in the last hour" in markdown
    assert markdown.count("🟢 **runs:** no failed run in the last hour") == 2
    assert "has not committed a batch" in texts(at.caption)
    assert "Dagster not reachable" in texts(at.caption)


def test_lights_lag_and_dead_letters_from_seeded_pipeline(run_page, dash_settings) -> None:
    seed_heartbeat(dash_settings, "producer", age_s=3, published=120, failed=0)
    seed_heartbeat(dash_settings, "stream", age_s=90, batch_id=7, lag_ms=400)  # beating, but idle
    insert_ticks(dash_settings.postgres_dsn, "AAPL", count=5, end=now_utc())
    insert_ticks(dash_settings.postgres_dsn, "MSFT", count=5, end=now_utc() - timedelta(hours=2))
    seed_dead_letter(dash_settings.postgres_dsn, dash_settings.kafka_topic, 1, "field 'price' must be > 0, got -1.0")
    seed_dead_letter(dash_settings.postgres_dsn, dash_settings.kafka_topic, 2, "not valid JSON: Expecting value")
    _produce(dash_settings, partition=0, count=5)
    _produce(dash_settings, partition=1, count=4)
    topic = dash_settings.kafka_topic
    # The newest batch read only partition 0; partition 1's position comes from the batch before.
    seed_stream_batch(dash_settings.postgres_dsn, f"{topic},other-topic", 1, {topic: {"0": 1, "1": 4}, "other-topic": {"0": 9}})
    seed_stream_batch(dash_settings.postgres_dsn, topic, 2, {topic: {"0": 2}})

    at = run_page("pipeline", dash_settings)
    assert not at.exception
    markdown = texts(at.markdown)
    assert "🟢 producer `seed-producer`: green" in markdown
    assert "🟠 stream: amber" in markdown
    assert re.search(r"alive, idle: last batch 9\d s ago; last beat \d s ago", texts(at.caption)), texts(at.caption)
    assert "🔴 data freshness: red" in markdown  # MSFT is two hours old
    freshness = at.dataframe[2].value
    assert list(freshness["symbol"]) == ["AAPL", "MSFT"]
    assert list(freshness["status"]) == ["🟢 green", "🔴 red"]
    assert f"topic `{dash_settings.kafka_topic}`: 3 messages" in markdown
    lag = at.dataframe[3].value
    assert list(lag["lag"]) == [3, 0, 0]
    assert "🟠 2 in total, 2 in the last hour" in markdown
    reasons = list(at.dataframe[5].value["reason"])
    assert reasons[0] == "not valid JSON: Expecting value"
    assert len(at.get("plotly_chart")) == 1  # rows per minute


def test_a_producer_that_published_nothing_says_never(run_page, dash_settings) -> None:
    """Its `last_publish_ms` is 0: the card says never, not an age counted from 1970."""
    seed_heartbeat(dash_settings, "producer", age_s=None, producer_id="just-started", published=0)
    at = run_page("pipeline", dash_settings)
    assert not at.exception
    assert "🟠 producer `just-started`: amber" in texts(at.markdown)
    caption = next(c for c in texts(at.caption).splitlines() if "last publish" in c)
    assert re.fullmatch(r"alive, nothing yet: last publish never; last beat \d s ago", caption), caption


def test_every_beating_producer_has_its_own_card_judged_by_the_supervisors_stale_rule(run_page, dash_settings) -> None:
    seed_heartbeat(dash_settings, "producer", age_s=2, producer_id="desk-a", published=10)
    seed_heartbeat(dash_settings, "producer", age_s=None, producer_id="desk-b", published=0)
    # Beat longer ago than the supervisors' stale threshold, yet its hash has not expired: stale on the page too.
    seed_heartbeat(dash_settings, "producer", age_s=80, producer_id="desk-c", beat_age_s=STALE_AFTER_SECONDS + 10)
    at = run_page("pipeline", dash_settings)
    assert not at.exception
    markdown = texts(at.markdown)
    assert "🟢 producer `desk-a`: green" in markdown and "🟠 producer `desk-b`: amber" in markdown
    assert "🔴 producer `desk-c`: red" in markdown and "🔴 producer: red" not in markdown
    assert re.search(r"stale: last beat 7\d s ago \(stale after 60 s\); last publish 8\d s ago", texts(at.caption))
    counters = [frame.value for frame in at.dataframe[:3]]
    assert [list(c["producer_id"]) for c in counters] == [["desk-a"], ["desk-b"], ["desk-c"]]
    assert [list(c["published"]) for c in counters[:2]] == [["10"], ["0"]]
    assert markdown.count("🟢 **runs:** no failed run in the last hour") == 2, "one runs line per component, not per card"


def test_failing_runs_and_dead_letters_by_kind(run_page, dash_settings) -> None:
    # The stream crash-loops (three failures a minute apart) and its supervisor holds the next launch back 20 s;
    # the producer failed once, long enough ago, and its supervisor keeps the run that replaced it.
    for age in (5, 65, 125):
        seed_run_failure(
            dash_settings.postgres_dsn, "stream", age, "pid 812 (-m stock_platform.cli stream) exited with code 1\nsummary"
        )
    seed_supervisor_decision(
        dash_settings.postgres_dsn, "stream", "backoff", 3, "backing off: 3 failures in a row", wait_s=20.0, age_s=1.0
    )
    seed_supervisor_decision(dash_settings.postgres_dsn, "producer", "keep", 0, "run 1a2b3c4d is active and heartbeat fresh")
    seed_run_failure(dash_settings.postgres_dsn, "producer", 1200, "RuntimeError: Kafka unreachable")
    seed_run_failure(dash_settings.postgres_dsn, "producer", 7200, "an old failure, not in the last hour")
    topic = dash_settings.kafka_topic
    seed_dead_letter(dash_settings.postgres_dsn, topic, 1, "field 'price' must be > 0, got -1.0")
    seed_dead_letter(dash_settings.postgres_dsn, topic, 2, "contract, two hours ago", age_s=7200)
    seed_dead_letter(dash_settings.postgres_dsn, topic, 3, "value too long for type character varying(10)", kind="database")
    seed_dead_letter(dash_settings.postgres_dsn, topic, 4, "differs from the stored quote: price", kind="conflict")
    seed_dead_letter(dash_settings.postgres_dsn, topic, 5, "differs from the stored quote: volume", kind="conflict")

    at = run_page("pipeline", dash_settings)
    assert not at.exception
    markdown = texts(at.markdown)
    stream_line = next(line for line in markdown.splitlines() if "3 failed runs in a row" in line)
    # The supervisor's 20 s, less the seconds since it decided.
    assert re.fullmatch(
        r"🔴 \*\*runs: backing off\*\* \(3 failed runs in a row, next launch in about \d+ s\); last \d+ s ago: "
        r"pid 812 \(-m stock_platform.cli stream\) exited with code 1",
        stream_line,
    ), stream_line
    assert (
        "🟠 **runs: failed recently** (1 failed in the last hour); last 20 min ago: RuntimeError: Kafka unreachable" in markdown
    )
    captions = texts(at.caption)
    assert re.search(r"supervisor, \d+ s ago: backing off: 3 failures in a row", captions), captions
    assert "run 1a2b3c4d is active and heartbeat fresh" in captions
    # PostgreSQL refusing records is red whatever the rate; conflicts and refusals have rows of their own.
    assert "🔴 5 in total, 4 in the last hour" in markdown
    kinds = at.dataframe[0].value  # no heartbeat counters, no ticks (no freshness table), no batch (no lag table)
    assert list(kinds["kind"]) == ["contract", "database", "conflict", "closed_day"]
    assert list(kinds["last hour"]) == [1, 1, 2, 0] and list(kinds["total"]) == [2, 1, 2, 0]
    latest = at.dataframe[1].value
    assert list(latest["kind"])[:3] == ["conflict", "conflict", "database"]


def test_odd_offsets_shape_and_kafka_down_show_unknown_lag(run_page, dash_settings) -> None:
    seed_stream_batch(dash_settings.postgres_dsn, dash_settings.kafka_topic, 1, {"0": 5, "1": 7})
    down = dash_settings.replace(kafka_bootstrap_servers=f"127.0.0.1:{free_port()}")
    at = run_page("pipeline", down)
    assert not at.exception
    assert ": unknown**" in texts(at.markdown)
    assert "Kafka unreachable" in texts(at.caption)


def test_redis_down_shows_a_banner_and_the_rest(run_page, dash_settings) -> None:
    insert_ticks(dash_settings.postgres_dsn, "AAPL", count=5, end=now_utc())
    down = dash_settings.replace(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    at = run_page("pipeline", down)
    assert not at.exception
    assert "Redis is unavailable" in texts(at.error)
    assert list(at.dataframe[0].value["symbol"]) == ["AAPL"]
    # Failed runs come from PostgreSQL, so they still show while the heartbeats cannot.
    markdown = texts(at.markdown)
    assert "⚪ stream: heartbeat unknown" in markdown and "⚪ producer: heartbeat unknown" in markdown
    assert "🔴 **runs: failing**" not in markdown
    assert markdown.count("🟢 **runs:** no failed run in the last hour") == 2


def test_postgres_down_shows_a_banner(run_page, dash_settings) -> None:
    down = dash_settings.replace(postgres_dsn=f"postgresql://stock@127.0.0.1:{free_port()}/nothing")
    at = run_page("pipeline", down)
    assert not at.exception
    assert "PostgreSQL is unavailable" in texts(at.error)


def test_failures_that_look_like_a_loop_show_what_the_supervisor_decided(run_page, dash_settings) -> None:
    """Three failures a minute apart, but a long run ended the supervisor's streak: it relaunches at once, so no wait."""
    for age in (5, 65, 125):
        seed_run_failure(
            dash_settings.postgres_dsn, "stream", age, "stopped by its supervisor: run 9f8e7d6c is alive but stalled"
        )
    seed_supervisor_decision(dash_settings.postgres_dsn, "stream", "launch", 1, "no active stream run: starting one")
    at = run_page("pipeline", dash_settings)
    assert not at.exception
    markdown = texts(at.markdown)
    assert "backing off" not in markdown and "next launch" not in markdown
    assert re.search(
        r"🟠 \*\*runs: failed recently\*\* \(3 failed in the last hour\); last \d+ s ago: stopped by its supervisor", markdown
    ), markdown
    assert "no active stream run: starting one" in texts(at.caption)
