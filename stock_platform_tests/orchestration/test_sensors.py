"""The supervisor sensors, evaluated with `build_sensor_context` against a real Dagster instance and real Redis.

Cases: a run is active and the heartbeat is fresh (skip), the heartbeat is stale
(replace the run), nothing is running (launch), and a process outside Dagster
still beats (skip: never two at once).
"""

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import dagster as dg
import pytest
import redis

from stock_platform.config import Settings
from stock_platform.orchestration.resources import PostgresResource, RedisResource
from stock_platform.orchestration.sensors import (
    STARTUP_GRACE_SECONDS,
    ActiveRun,
    build_supervisor_sensor,
    decide,
    record_run_failures,
)
from stock_platform.orchestration.supervised import PID_TAG, SUPERVISED_TAG, producer_job, streaming_job
from stock_platform.storage.redis_keys import RedisKeys


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# --- the rule itself (no services) ---


def test_decide_launches_when_nothing_runs() -> None:
    decision = decide("stream", [], None, now=1000.0)
    assert decision.launch and "no active stream run" in decision.reason and "heartbeat absent" in decision.reason


def test_decide_skips_when_run_active_and_heartbeat_fresh() -> None:
    decision = decide("stream", [ActiveRun("abcdef123456", 900.0)], {"pid": str(os.getpid())}, now=1000.0)
    assert not decision.launch and "heartbeat fresh" in decision.reason


def test_decide_waits_for_a_starting_run() -> None:
    decision = decide("stream", [ActiveRun("abcdef123456", 990.0)], None, now=1000.0)
    assert not decision.launch and "waiting" in decision.reason
    assert not decide("stream", [ActiveRun("abcdef123456", None)], None, now=1000.0).launch


def test_decide_replaces_a_stale_run() -> None:
    started = 1000.0 - STARTUP_GRACE_SECONDS - 1
    dead = _dead_pid()
    decision = decide("stream", [ActiveRun("abcdef123456", started, pid=dead)], {"pid": str(dead)}, now=1000.0)
    assert decision.launch and decision.terminate_run_ids == ("abcdef123456",) and "is gone" in decision.reason
    assert decision.may_end_by_itself, "a run whose process died is given the chance to fail by itself"
    # A run whose process never appeared is replaced only after the grace period.
    never = decide("stream", [ActiveRun("abcdef123456", started)], None, now=1000.0)
    assert never.launch and "never started its process" in never.reason and not never.may_end_by_itself


def test_decide_lets_a_replacement_start_despite_the_old_heartbeat() -> None:
    beat = {"pid": str(_dead_pid())}
    decision = decide("stream", [ActiveRun("abcdef123456", 995.0, pid=os.getpid())], beat, now=1000.0)
    assert not decision.launch and "starting up or idle" in decision.reason


def test_decide_keeps_an_idle_run_whose_process_lives() -> None:
    started = 1000.0 - STARTUP_GRACE_SECONDS - 1
    decision = decide("stream", [ActiveRun("abcdef123456", started, pid=os.getpid())], None, now=1000.0)
    assert not decision.launch and "idle" in decision.reason
    gone = decide("stream", [ActiveRun("abcdef123456", started, pid=_dead_pid())], None, now=1000.0)
    assert gone.launch and gone.terminate_run_ids == ("abcdef123456",)


def test_decide_replaces_a_run_whose_heartbeat_stopped_updating() -> None:
    started = 1000.0 - STARTUP_GRACE_SECONDS - 1
    beat = {"pid": str(os.getpid()), "updated_ms": str(int((1000.0 - 300) * 1000))}
    decision = decide("producer", [ActiveRun("abcdef123456", started, pid=os.getpid())], beat, now=1000.0)
    assert decision.launch and "last beat 300 s ago" in decision.reason


def test_decide_never_starts_a_second_copy() -> None:
    decision = decide("producer", [], {"pid": str(os.getpid())}, now=1000.0)
    assert not decision.launch and "outside Dagster" in decision.reason


def test_decide_launches_when_the_heartbeat_outlives_a_killed_process() -> None:
    decision = decide("stream", [], {"pid": str(_dead_pid())}, now=1000.0)
    assert decision.launch and "is gone" in decision.reason


# --- the sensor, evaluated against a real instance and the real Redis ---


@pytest.fixture
def redis_resource(platform_settings: Settings) -> Iterator[RedisResource]:
    resource = RedisResource(url=platform_settings.redis_url, key_prefix=platform_settings.redis_key_prefix)
    yield resource
    client = redis.Redis.from_url(platform_settings.redis_url)
    client.delete(RedisKeys(platform_settings.redis_key_prefix).heartbeat("stream"))
    client.close()


def _beat(resource: RedisResource, pid: int) -> None:
    client = redis.Redis.from_url(resource.url)
    key = resource.key_layout().heartbeat("stream")
    client.hset(key, mapping={"pid": pid, "started_ms": int(time.time() * 1000), "batch_id": 3})
    client.expire(key, 120)
    client.close()


def _started_run(instance: dg.DagsterInstance, pid: int | None = None) -> dg.DagsterRun:
    tags = {SUPERVISED_TAG: "stream"} | ({PID_TAG: str(pid)} if pid else {})
    run = instance.create_run_for_job(streaming_job, tags=tags)
    instance.handle_run_event(
        run.run_id,
        dg.DagsterEvent(event_type_value=dg.DagsterEventType.RUN_START.value, job_name=streaming_job.name),
    )
    return instance.get_run_by_id(run.run_id)


def _evaluate(sensor: dg.SensorDefinition, instance: dg.DagsterInstance, resource: RedisResource) -> dg.SensorResult:
    context = dg.build_sensor_context(instance=instance, resources={"redis": resource})
    return sensor.evaluate_tick(context)


@pytest.mark.integration
@pytest.mark.parametrize(
    ("name", "job", "component"),
    [("streaming_supervisor", streaming_job, "stream"), ("producer_supervisor", producer_job, "producer")],
)
def test_sensor_absent_launches_one_tagged_run(
    redis_resource: RedisResource, name: str, job: dg.JobDefinition, component: str
) -> None:
    sensor = build_supervisor_sensor(name, job, component)
    with dg.instance_for_test() as instance:
        result = _evaluate(sensor, instance, redis_resource)
    assert len(result.run_requests) == 1
    request = result.run_requests[0]
    assert request.tags[SUPERVISED_TAG] == component
    assert f"no active {component} run" in request.tags["stock_platform/reason"]


@pytest.mark.integration
def test_sensor_running_skips_with_reason(redis_resource: RedisResource) -> None:
    sensor = build_supervisor_sensor("streaming_supervisor", streaming_job, "stream")
    _beat(redis_resource, os.getpid())
    with dg.instance_for_test() as instance:
        _started_run(instance)
        result = _evaluate(sensor, instance, redis_resource)
    assert not result.run_requests
    assert "is active and heartbeat fresh" in (result.skip_message or "")


@pytest.mark.integration
def test_sensor_stale_heartbeat_replaces_the_run(redis_resource: RedisResource) -> None:
    sensor = build_supervisor_sensor(
        "streaming_supervisor", streaming_job, "stream", startup_grace_seconds=0, own_end_grace_seconds=0.5
    )
    dead = _dead_pid()
    _beat(redis_resource, dead)
    with dg.instance_for_test() as instance:
        stale = _started_run(instance, pid=dead)
        result = _evaluate(sensor, instance, redis_resource)
        assert len(result.run_requests) == 1 and "is gone" in result.run_requests[0].tags["stock_platform/reason"]
        # The stale run no longer counts as active, so the replacement is not held behind it.
        assert instance.get_run_by_id(stale.run_id).status not in {dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING}


@pytest.mark.integration
def test_sensor_lets_a_crashed_run_fail_by_itself(redis_resource: RedisResource) -> None:
    """A run whose worker reports the crash while the sensor waits stays FAILURE (not CANCELED), so it is recorded."""
    sensor = build_supervisor_sensor("streaming_supervisor", streaming_job, "stream", own_end_grace_seconds=15)
    dead = _dead_pid()
    _beat(redis_resource, dead)
    with dg.instance_for_test() as instance:
        crashed = _started_run(instance, pid=dead)
        worker = threading.Timer(1.0, instance.report_run_failed, args=(crashed,))
        worker.start()
        try:
            result = _evaluate(sensor, instance, redis_resource)
        finally:
            worker.join()
        assert len(result.run_requests) == 1
        assert instance.get_run_by_id(crashed.run_id).status == dg.DagsterRunStatus.FAILURE


@pytest.mark.integration
def test_sensor_starting_run_is_given_time(redis_resource: RedisResource) -> None:
    sensor = build_supervisor_sensor("streaming_supervisor", streaming_job, "stream")
    with dg.instance_for_test() as instance:
        _started_run(instance)
        result = _evaluate(sensor, instance, redis_resource)
    assert not result.run_requests and "waiting up to" in (result.skip_message or "")


@dg.op
def _boom() -> None:
    raise RuntimeError("stream process exited with code -9")


@dg.job(tags={SUPERVISED_TAG: "stream"})
def _failing_stream_job() -> None:
    _boom()


@pytest.mark.integration
def test_failure_sensor_records_a_failed_run_once(platform_settings: Settings) -> None:
    postgres = PostgresResource(dsn=platform_settings.postgres_dsn)
    with dg.instance_for_test() as instance:
        result = _failing_stream_job.execute_in_process(instance=instance, raise_on_error=False)
        assert not result.success
        run = instance.get_run_by_id(result.run_id)
        context = dg.build_run_status_sensor_context(
            sensor_name="record_run_failures",
            dagster_event=result.get_run_failure_event(),
            dagster_instance=instance,
            dagster_run=run,
            resources={"postgres": postgres},
        ).for_run_failure()
        record_run_failures(context)
        record_run_failures(context)  # a re-delivered event adds nothing
    with postgres.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT job_name, component, error FROM run_failures WHERE run_id = %s", (result.run_id,))
        rows = cur.fetchall()
    assert len(rows) == 1
    job_name, component, error = rows[0]
    assert (job_name, component) == ("_failing_stream_job", "stream")
    assert "_boom" in error or "failed" in error.lower()
