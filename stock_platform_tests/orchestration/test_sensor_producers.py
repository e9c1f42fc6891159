"""The producer supervisor reads the heartbeat of the producer its run launched, not whichever producer beat last.

Producers beat under their own id (`storage.heartbeats`); the one a Dagster
run launches carries the run's id (`supervised_producer_id`).
"""

import os
import time
from datetime import UTC, datetime

import dagster as dg
import pytest

from stock_platform.orchestration.resources import RedisResource
from stock_platform.orchestration.sensors import build_supervisor_sensor, read_heartbeat
from stock_platform.orchestration.supervised import PID_TAG, SUPERVISED_TAG, producer_job
from stock_platform.storage.heartbeats import queue_producer_beat, supervised_producer_id
from stock_platform.storage.redis_client import redis_client
from stock_platform_tests.orchestration.sensor_ticks import evaluate

pytestmark = pytest.mark.integration


def _producer_beat(resource: RedisResource, producer_id: str, pid: int) -> None:
    """A fresh beat of producer `producer_id`, as `ingestion.heartbeat` writes it."""
    now_ms = int(time.time() * 1000)
    client = redis_client(resource.url)
    with client.pipeline() as pipe:
        fields = {"producer_id": producer_id, "pid": pid, "started_ms": now_ms, "updated_ms": now_ms}
        queue_producer_beat(pipe, resource.key_layout(), producer_id, fields, now_ms)
        pipe.execute()
    client.close()


def _started_producer_run(instance: dg.DagsterInstance, pid: int) -> dg.DagsterRun:
    run = instance.create_run_for_job(producer_job, tags={SUPERVISED_TAG: "producer", PID_TAG: str(pid)})
    instance.handle_run_event(
        run.run_id,
        dg.DagsterEvent(event_type_value=dg.DagsterEventType.RUN_START.value, job_name=producer_job.name),
        update_timestamp=datetime.now(UTC),
    )
    return instance.get_run_by_id(run.run_id)


def test_the_supervisor_judges_a_run_by_its_own_producers_beat(redis_resource: RedisResource) -> None:
    sensor = build_supervisor_sensor("producer_supervisor", producer_job, "producer")
    # Another producer (started by hand) beats; it says nothing about the run's own process.
    _producer_beat(redis_resource, "by-hand", os.getpid())
    with dg.instance_for_test() as instance:
        run = _started_producer_run(instance, os.getpid())
        first = evaluate(sensor, instance, redis_resource)
        assert not first.run_requests and "heartbeat absent: starting up or idle" in (first.skip_message or "")
        _producer_beat(redis_resource, supervised_producer_id(run.run_id), os.getpid())
        second = evaluate(sensor, instance, redis_resource)
    assert not second.run_requests and "is active and heartbeat fresh" in (second.skip_message or "")
    beat, error = read_heartbeat(redis_resource, "producer", run.run_id)
    assert error == "" and beat is not None and beat["producer_id"] == supervised_producer_id(run.run_id)


def test_with_no_run_a_live_producer_outside_dagster_is_not_doubled(redis_resource: RedisResource) -> None:
    sensor = build_supervisor_sensor("producer_supervisor", producer_job, "producer")
    _producer_beat(redis_resource, "by-hand", os.getpid())
    with dg.instance_for_test() as instance:
        result = evaluate(sensor, instance, redis_resource)
    assert not result.run_requests and "a producer outside Dagster is running" in (result.skip_message or "")
