"""The supervisor sensors, evaluated with `build_sensor_context` against a real Dagster instance and real Redis.

Cases: a run is active and the heartbeat is fresh (skip), the heartbeat is stale
(replace the run), nothing is running (launch), runs keep failing (back off),
a live process silent for too long (replace it), a stopped run (tagged and
recorded), and the failure sensor records a failed run with its error. Redis
down and stalls are in test_sensor_outages.py; every branch of the rule is in
test_supervision.py.
"""

import json
import os
import threading
import time

import dagster as dg
import pytest

from stock_platform.config import Settings
from stock_platform.orchestration.resources import PostgresResource, RedisResource
from stock_platform.orchestration.sensors import build_supervisor_sensor, record_run_failures
from stock_platform.orchestration.supervised import STOPPED_TAG, SUPERVISED_TAG, WORKED_UNTIL_TAG, producer_job, streaming_job
from stock_platform_tests.orchestration.sensor_ticks import beat, dead_pid, evaluate, started_run


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
        result = evaluate(sensor, instance, redis_resource)
    assert len(result.run_requests) == 1
    request = result.run_requests[0]
    assert request.tags[SUPERVISED_TAG] == component
    assert f"no active {component} run" in request.tags["stock_platform/reason"]


@pytest.mark.integration
def test_sensor_running_skips_with_reason(redis_resource: RedisResource) -> None:
    sensor = build_supervisor_sensor("streaming_supervisor", streaming_job, "stream")
    beat(redis_resource, os.getpid())
    with dg.instance_for_test() as instance:
        started_run(instance)
        result = evaluate(sensor, instance, redis_resource)
    assert not result.run_requests
    assert "is active and heartbeat fresh" in (result.skip_message or "")


@pytest.mark.integration
def test_sensor_stale_heartbeat_replaces_the_run(redis_resource: RedisResource) -> None:
    sensor = build_supervisor_sensor(
        "streaming_supervisor", streaming_job, "stream", startup_grace_seconds=0, own_end_grace_seconds=0.5
    )
    dead = dead_pid()
    beat(redis_resource, dead)
    with dg.instance_for_test() as instance:
        stale = started_run(instance, pid=dead)
        result = evaluate(sensor, instance, redis_resource)
        assert len(result.run_requests) == 1 and "is gone" in result.run_requests[0].tags["stock_platform/reason"]
        # The stale run no longer counts as active, so the replacement is not held behind it.
        assert instance.get_run_by_id(stale.run_id).status not in {dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING}


@pytest.mark.integration
def test_sensor_lets_a_crashed_run_fail_by_itself(redis_resource: RedisResource) -> None:
    """A run whose worker reports the crash while the sensor waits stays FAILURE (not CANCELED), so it is recorded."""
    sensor = build_supervisor_sensor("streaming_supervisor", streaming_job, "stream", own_end_grace_seconds=15)
    dead = dead_pid()
    beat(redis_resource, dead)
    with dg.instance_for_test() as instance:
        crashed = started_run(instance, pid=dead)
        worker = threading.Timer(1.0, instance.report_run_failed, args=(crashed,))
        worker.start()
        try:
            result = evaluate(sensor, instance, redis_resource)
        finally:
            worker.join()
        assert len(result.run_requests) == 1
        assert instance.get_run_by_id(crashed.run_id).status == dg.DagsterRunStatus.FAILURE


@pytest.mark.integration
def test_sensor_starting_run_is_given_time(redis_resource: RedisResource) -> None:
    sensor = build_supervisor_sensor("streaming_supervisor", streaming_job, "stream")
    with dg.instance_for_test() as instance:
        started_run(instance)
        result = evaluate(sensor, instance, redis_resource)
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
    # The op's own error first (what the health page shows), Dagster's run summary after it.
    first, _, rest = error.partition("\n")
    assert first == "RuntimeError: stream process exited with code -9"
    assert "_boom" in rest


@dg.op
def _refuse() -> None:
    raise dg.Failure(description="pid 812 (-m stock_platform.cli stream) exited with code 1")


@dg.job(tags={SUPERVISED_TAG: "stream"})
def _refusing_stream_job() -> None:
    _refuse()


# --- backoff: runs that keep failing ---


@pytest.mark.integration
def test_sensor_backs_off_after_repeated_failures(redis_resource: RedisResource) -> None:
    stream = build_supervisor_sensor("streaming_supervisor", streaming_job, "stream")
    producer = build_supervisor_sensor("producer_supervisor", producer_job, "producer")
    with dg.instance_for_test() as instance:
        _failing_stream_job.execute_in_process(instance=instance, raise_on_error=False)
        once = evaluate(stream, instance, redis_resource)
        assert len(once.run_requests) == 1, "one failure is relaunched at once"
        _failing_stream_job.execute_in_process(instance=instance, raise_on_error=False)
        _refusing_stream_job.execute_in_process(instance=instance, raise_on_error=False)
        result = evaluate(stream, instance, redis_resource)
        other = evaluate(producer, instance, redis_resource)
    assert not result.run_requests
    reason = result.skip_message or ""
    assert reason.startswith(
        "backing off: 3 failures in a row, last: pid 812 (-m stock_platform.cli stream) exited with code 1, next launch in"
    ), reason
    assert len(other.run_requests) == 1, "another component's failures do not hold it back"


# --- runs the supervisor stops, silent runs, and the decision it stores ---


def _row(postgres: PostgresResource, sql: str, params: tuple) -> tuple | None:
    with postgres.connect() as conn, conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchone()


@pytest.mark.integration
def test_sensor_tags_and_records_a_run_it_stops_and_stores_its_decision(
    redis_resource: RedisResource, postgres: PostgresResource
) -> None:
    sensor = build_supervisor_sensor("streaming_supervisor", streaming_job, "stream")
    last_beat = time.time() - 300
    beat(redis_resource, os.getpid(), updated_ms=int(last_beat * 1000))
    with dg.instance_for_test() as instance:
        hung = started_run(instance, pid=os.getpid(), ago_s=400)
        result = evaluate(sensor, instance, redis_resource, postgres)
        assert len(result.run_requests) == 1
        tags = instance.get_run_by_id(hung.run_id).tags
    assert tags[STOPPED_TAG].startswith(f"run {hung.run_id[:8]}'s process (pid {os.getpid()}) is alive but heartbeat stale")
    assert abs(float(tags[WORKED_UNTIL_TAG]) - last_beat) < 1
    (error,) = _row(postgres, "SELECT error FROM run_failures WHERE run_id = %s", (hung.run_id,))
    assert error == f"stopped by its supervisor: {tags[STOPPED_TAG]}"
    decision = _row(
        postgres,
        "SELECT action, failures, next_launch_at, reason, (now() AT TIME ZONE 'UTC') - decided_at < interval '1 minute'"
        " FROM supervisor_decisions WHERE component = %s",
        ("stream",),
    )
    assert decision[:3] == ("launch", 1, None) and decision[4]
    assert decision[3] == result.run_requests[0].tags["stock_platform/reason"]


@pytest.mark.integration
def test_sensor_replaces_a_live_run_silent_for_a_minute(redis_resource: RedisResource) -> None:
    """No heartbeat hash at all (expired, or Redis flushed) while the run's process lives on."""
    sensor = build_supervisor_sensor("streaming_supervisor", streaming_job, "stream")
    with dg.instance_for_test() as instance:
        silent = started_run(instance, pid=os.getpid(), ago_s=400)
        first = evaluate(sensor, instance, redis_resource)
        assert not first.run_requests and "starting up or idle" in (first.skip_message or "")
        seen_at = json.loads(first.cursor)["silent_since"]
        assert abs(seen_at - time.time()) < 30, "the first tick that sees no beat starts the silence"
        later = evaluate(sensor, instance, redis_resource, cursor=json.dumps({"silent_since": seen_at - 70}))
        assert len(later.run_requests) == 1
        assert "has shown no heartbeat of its own for 7" in later.run_requests[0].tags["stock_platform/reason"]
        assert STOPPED_TAG in instance.get_run_by_id(silent.run_id).tags
