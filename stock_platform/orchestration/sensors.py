"""Supervisor sensors that keep the producer and the stream job running, and a sensor that records failed runs.

Each tick a supervisor gathers what it can observe, asks the pure rule in
`orchestration.supervision` what to do, logs the decision's reason, and carries
it out. It observes the component's active Dagster runs (tagged
`stock_platform/supervised=<component>`), its failure streak (from the
instance, for the backoff), its Redis heartbeat (the stream's, or the beat of
the producer that the active run launched; or, when Redis cannot be read,
nothing: the rule then judges the run by its process), and, for the stream,
its progress against Kafka (`orchestration.stream_progress`). It never starts a
second copy: the tag also has a concurrency limit of 1 in dagster.yaml, so a
replacement waits in the queue until the old run has ended.

A run it stops is tagged with the reason first, so the failure streak counts it
though it ends as cancelled, and gets a `run_failures` row; each decision is
stored for the health page (`orchestration.supervisor_db`). The sensor's cursor
carries one observation between ticks: since when no fresh heartbeat was seen.
"""

import json
import logging
import time

import dagster as dg
from redis import Redis, RedisError

from stock_platform.orchestration.backoff import first_line
from stock_platform.orchestration.resources import KafkaResource, PostgresResource, RedisResource
from stock_platform.orchestration.run_history import ACTIVE_STATUSES, active_runs, failure_reason, failure_streak
from stock_platform.orchestration.stall import STALL_SECONDS
from stock_platform.orchestration.stream_progress import read_stream_progress
from stock_platform.orchestration.supervised import STOPPED_TAG, SUPERVISED_TAG, WORKED_UNTIL_TAG
from stock_platform.orchestration.supervision import STARTUP_GRACE_SECONDS, Decision, decide
from stock_platform.orchestration.supervisor_db import record_decision, record_stopped_run
from stock_platform.storage.heartbeats import (
    STREAM,
    is_stale,
    newest_beat,
    read_heartbeats,
    read_producer_beat,
    read_stream_beat,
    supervised_producer_id,
)

__all__ = ["OWN_END_GRACE_SECONDS", "build_supervisor_sensor", "read_heartbeat", "record_run_failures"]

logger = logging.getLogger(__name__)

# A run whose process died normally fails by itself within a second or two (its worker sees the exit);
# the supervisor waits this long for that before terminating it, so a crash is recorded as a failure.
OWN_END_GRACE_SECONDS = 20.0


def _producer_beat(client: Redis, redis: RedisResource, run_id: str | None, now: float) -> dict[str, str] | None:
    """The beat of run `run_id`'s producer; with no run, of any producer (one outside Dagster), a fresh one first."""
    keys = redis.key_layout()
    if run_id is not None:
        return read_producer_beat(client, keys, supervised_producer_id(run_id))
    beats = read_heartbeats(client, keys, int(now * 1000)).producers.values()
    return newest_beat(b for b in beats if not is_stale(b, now)) or newest_beat(beats)


def read_heartbeat(
    redis: RedisResource, component: str, run_id: str | None = None, now: float | None = None
) -> tuple[dict[str, str] | None, str]:
    """(heartbeat, error): the hash (None when expired), or why Redis could not be read; never raises.

    The stream's beat, or the beat of the producer that run `run_id` launched (`supervised_producer_id`):
    another producer beating says nothing about that run. With no run, any producer's.
    """
    client = redis.client()
    try:
        if component == STREAM:
            return read_stream_beat(client, redis.key_layout()), ""
        return _producer_beat(client, redis, run_id, time.time() if now is None else now), ""
    except (RedisError, OSError) as e:
        logger.warning("%s heartbeat unreadable: Redis unreachable at the configured URL (%s)", component, type(e).__name__)
        return None, f"Redis unreachable ({type(e).__name__})"
    finally:
        client.close()


def _ended_by_itself(instance: dg.DagsterInstance, run_id: str, deadline: float) -> bool:
    """Whether the run leaves the active statuses before `deadline` (monotonic) without being terminated."""
    while True:
        run = instance.get_run_by_id(run_id)
        if run is None or run.status not in ACTIVE_STATUSES:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.5)


def _silent_since(cursor: str | None) -> float | None:
    """The previous tick's `silent_since` from the sensor cursor; None when absent or unreadable."""
    try:
        value = json.loads(cursor or "{}").get("silent_since")
    except (ValueError, AttributeError):
        return None
    return float(value) if isinstance(value, int | float) else None


def _stop_stale_run(
    context: dg.SensorEvaluationContext, postgres: PostgresResource, component: str, run_id: str,
    deadline: float | None, decision: Decision,
) -> None:  # fmt: skip
    """Let a run whose process is gone fail by itself; otherwise tag it as stopped, record it, and terminate it.

    Terminating a run whose worker is already failing it would record the crash as a cancellation
    instead of its own error. A terminated run ends as cancelled, so the tag (set first, while the
    run is still active) is what tells the failure streak, and the row what tells the health page.
    """
    if deadline is not None and _ended_by_itself(context.instance, run_id, deadline):
        context.log.info(f"stale run {run_id} ended by itself")
        return
    context.log.warning(f"terminating stale run {run_id}: {decision.stop_reason}")
    tags = {STOPPED_TAG: decision.stop_reason[:1000]}
    if decision.worked_until is not None:
        tags[WORKED_UNTIL_TAG] = f"{decision.worked_until:.3f}"
    context.instance.add_run_tags(run_id, tags)
    run = context.instance.get_run_by_id(run_id)
    record_stopped_run(postgres.dsn, run_id, run.job_name if run else "", component, decision.stop_reason)
    if not context.instance.run_launcher.terminate(run_id) and run is not None:
        # The worker is gone or unreachable: mark the run failed so the replacement can leave the queue.
        context.instance.report_run_failed(run)


def build_supervisor_sensor(
    name: str,
    job: dg.JobDefinition,
    component: str,
    interval_seconds: int = 10,
    startup_grace_seconds: float = STARTUP_GRACE_SECONDS,
    own_end_grace_seconds: float = OWN_END_GRACE_SECONDS,
    stall_seconds: float = STALL_SECONDS,
) -> dg.SensorDefinition:
    """A sensor that keeps exactly one run of `job` alive, judged by the `component` heartbeat (and the stream's progress).

    The stall check reads the stream's batch ledger, so it applies to `component == "stream"` only.
    """

    @dg.sensor(
        name=name,
        job=job,
        minimum_interval_seconds=interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            f"Keeps one {job.name} run alive: starts one when none is active, replaces one whose process is gone, "
            f"hung{' or stalled' if component == 'stream' else ''}, and backs off while runs keep failing."
        ),
    )
    def _supervisor(
        context: dg.SensorEvaluationContext, redis: RedisResource, postgres: PostgresResource, kafka: KafkaResource
    ) -> dg.SensorResult | dg.SkipReason:
        now = time.time()
        runs = active_runs(context.instance, component)
        heartbeat, heartbeat_error = read_heartbeat(redis, component, runs[0].run_id if runs else None, now)
        progress = None
        if component == "stream" and runs:
            progress = read_stream_progress(postgres, kafka, runs[0], heartbeat, now, stall_seconds)
        decision = decide(
            component, runs, heartbeat, now, startup_grace_seconds, heartbeat_error=heartbeat_error,
            failures=failure_streak(context.instance, component), progress=progress, stall_seconds=stall_seconds,
            silent_since=_silent_since(context.cursor),
        )  # fmt: skip
        context.log.info(decision.reason)
        context.update_cursor(json.dumps({"silent_since": decision.silent_since}))
        # One deadline for all stale runs, so the tick stays well inside the sensor's evaluation timeout.
        deadline = time.monotonic() + own_end_grace_seconds if decision.may_end_by_itself else None
        for run_id in decision.terminate_run_ids:
            _stop_stale_run(context, postgres, component, run_id, deadline, decision)
        record_decision(postgres.dsn, component, decision)
        if not decision.launch:
            return dg.SkipReason(decision.reason)
        return dg.SensorResult(
            run_requests=[dg.RunRequest(tags={SUPERVISED_TAG: component, "stock_platform/reason": decision.reason[:200]})]
        )

    return _supervisor


@dg.run_failure_sensor(
    name="record_run_failures",
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Records every failed run (job, run id, error) in the run_failures table and the log.",
)
def record_run_failures(context: dg.RunFailureSensorContext, postgres: PostgresResource) -> None:
    """Insert one row per failed run into `run_failures` (idempotent on run id), its most specific error first.

    The first line is what the health page shows, so it is the op's error ("pid 812 ... exited with
    code 1"), not Dagster's run-level summary, which follows on the next line.
    """
    run = context.dagster_run
    summary = context.failure_event.message or ""
    reason = failure_reason(context.instance, run.run_id)
    message = (reason if summary in ("", reason) else f"{reason}\n{summary}")[:4000]
    context.log.warning(f"run {run.run_id} of {run.job_name} failed: {first_line(message, 300)}")
    postgres.migrate()
    with postgres.connect() as conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO run_failures (run_id, job_name, component, error) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (run_id) DO NOTHING",
            (run.run_id, run.job_name, run.tags.get(SUPERVISED_TAG), message),
        )
