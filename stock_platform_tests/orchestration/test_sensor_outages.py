"""Supervisors when parts misbehave: Redis unreachable (judge by the process), a stream that stalls or is only idle.

Evaluated with `build_sensor_context` against a real Dagster instance, Kafka
topic and PostgreSQL ledger; Redis is either the real one or a closed port.
"""

import json
import os
import time
from datetime import UTC, datetime, timedelta

import dagster as dg
import psycopg2
import pytest
from kafka import KafkaProducer

from stock_platform.config import Settings
from stock_platform.orchestration.resources import KafkaResource, PostgresResource, RedisResource
from stock_platform.orchestration.sensors import build_supervisor_sensor
from stock_platform.orchestration.stream_progress import read_stream_progress
from stock_platform.orchestration.supervised import PID_TAG, SUPERVISED_TAG, producer_job, streaming_job
from stock_platform.orchestration.supervision import ActiveRun
from stock_platform.orchestration.supervisor_db import TICK_TIMEOUT_SECONDS
from stock_platform_tests.orchestration.sensor_ticks import beat, dead_pid, evaluate, started_run

# --- Redis unreachable: the supervisor keeps working ---


@pytest.mark.integration
def test_sensor_with_redis_down_launches_and_keeps_a_live_run(redis_down: RedisResource) -> None:
    sensor = build_supervisor_sensor("streaming_supervisor", streaming_job, "stream")
    with dg.instance_for_test() as instance:
        launched = evaluate(sensor, instance, redis_down)
        assert len(launched.run_requests) == 1
        assert "heartbeat unknown: Redis unreachable (ConnectionError)" in launched.run_requests[0].tags["stock_platform/reason"]
        started_run(instance, pid=os.getpid(), ago_s=600)
        kept = evaluate(sensor, instance, redis_down)
    assert not kept.run_requests
    assert "is alive; heartbeat unknown: Redis unreachable" in (kept.skip_message or "")


@pytest.mark.integration
def test_sensor_with_redis_down_replaces_a_dead_run(redis_down: RedisResource) -> None:
    sensor = build_supervisor_sensor("producer_supervisor", producer_job, "producer", own_end_grace_seconds=0.5)
    with dg.instance_for_test() as instance:
        run = instance.create_run_for_job(producer_job, tags={SUPERVISED_TAG: "producer", PID_TAG: str(dead_pid())})
        instance.handle_run_event(
            run.run_id, dg.DagsterEvent(event_type_value=dg.DagsterEventType.RUN_START.value, job_name=producer_job.name)
        )
        result = evaluate(sensor, instance, redis_down)
    assert len(result.run_requests) == 1
    assert "is gone (heartbeat unknown: Redis unreachable" in result.run_requests[0].tags["stock_platform/reason"]


# --- stalls: the stream beats but commits nothing while records wait ---


def _produce(settings: Settings, partition: int, count: int) -> None:
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    for _ in range(count):
        producer.send(settings.kafka_topic, value=b"{}", key=b"AAPL", partition=partition).get(timeout=10)
    producer.close()


def _ledger_batch(settings: Settings, committed: dict[str, int], ago_s: float) -> None:
    """A `stream_batches` row for this test's topic, committed `ago_s` seconds ago."""
    committed_at = datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=ago_s)
    conn = psycopg2.connect(settings.postgres_dsn)
    with conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO stream_batches (query_id, batch_id, topic, start_offsets, end_offsets, rows_in, inserted,"
            " duplicates, dead_letters, committed_at) VALUES (%s, 1, %s, '{}', %s, 1, 1, 0, 0, %s)",
            # The session's database is shared by the tests; each test has a topic of its own.
            (f"q-{settings.kafka_topic}", settings.kafka_topic, json.dumps({settings.kafka_topic: committed}), committed_at),
        )
    conn.close()


@pytest.mark.integration
@pytest.mark.parametrize("redis_up", [True, False], ids=["last-commit-from-heartbeat", "redis-down-ledger-only"])
def test_sensor_replaces_a_stalled_stream(
    platform_settings: Settings, redis_resource: RedisResource, redis_down: RedisResource,
    postgres: PostgresResource, kafka: KafkaResource, redis_up: bool,
) -> None:  # fmt: skip
    _produce(platform_settings, partition=0, count=5)
    _ledger_batch(platform_settings, {"0": 2}, ago_s=900)
    if redis_up:
        beat(redis_resource, os.getpid(), updated_ms=int(time.time() * 1000), last_batch_ms=int((time.time() - 900) * 1000))
    sensor = build_supervisor_sensor("streaming_supervisor", streaming_job, "stream")
    with dg.instance_for_test() as instance:
        stalled = started_run(instance, pid=os.getpid(), ago_s=3600)
        result = evaluate(sensor, instance, redis_resource if redis_up else redis_down, postgres, kafka)
        assert len(result.run_requests) == 1
        reason = result.run_requests[0].tags["stock_platform/reason"]
        assert "stalled: no batch committed for 9" in reason and "while 3 records wait in Kafka" in reason, reason
        assert instance.get_run_by_id(stalled.run_id).status not in {dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING}


@pytest.mark.integration
def test_sensor_keeps_an_idle_stream_on_a_quiet_topic(
    platform_settings: Settings, redis_resource: RedisResource, postgres: PostgresResource, kafka: KafkaResource
) -> None:
    _produce(platform_settings, partition=0, count=5)
    _produce(platform_settings, partition=2, count=1)
    _ledger_batch(platform_settings, {"0": 5, "2": 1}, ago_s=900)
    beat(redis_resource, os.getpid(), updated_ms=int(time.time() * 1000), last_batch_ms=int((time.time() - 900) * 1000))
    sensor = build_supervisor_sensor("streaming_supervisor", streaming_job, "stream")
    with dg.instance_for_test() as instance:
        idle = started_run(instance, pid=os.getpid(), ago_s=3600)
        result = evaluate(sensor, instance, redis_resource, postgres, kafka)
        assert instance.get_run_by_id(idle.run_id).status == dg.DagsterRunStatus.STARTED
    assert not result.run_requests
    assert "idle: no batch committed for 9" in (result.skip_message or "") and "none waiting in Kafka" in result.skip_message


@pytest.mark.integration
def test_stall_check_gives_up_on_a_locked_ledger(
    platform_settings: Settings, postgres: PostgresResource, kafka: KafkaResource
) -> None:
    """A lock held on stream_batches makes the check unavailable for a tick; it does not hang the sensor."""
    holder = psycopg2.connect(platform_settings.postgres_dsn)
    try:
        with holder.cursor() as cur:
            cur.execute("LOCK TABLE stream_batches IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        progress = read_stream_progress(postgres, kafka, ActiveRun("abcdef123456", time.time() - 3600), None, time.time(), 180)
        took = time.monotonic() - started
    finally:
        holder.rollback()
        holder.close()
    assert progress.error == "stream_batches unreadable (QueryCanceled)", progress
    assert TICK_TIMEOUT_SECONDS - 0.5 < took < TICK_TIMEOUT_SECONDS + 5
