"""Supervisor sensors that keep the producer and the stream job running, and a sensor that records failed runs.

A supervisor looks at two things each tick: the component's active Dagster runs
(tagged `stock_platform/supervised=<component>`) and its Redis heartbeat. It
launches a run when none is active, or replaces an active run whose process
has stopped beating; it never starts a second copy (the tag also has a
concurrency limit of 1 in dagster.yaml, so a replacement waits in the queue
until the old run has ended). Every tick's decision is logged with its reason.
"""

import logging
import time
from dataclasses import dataclass

import dagster as dg

from stock_platform.orchestration.resources import PostgresResource, RedisResource
from stock_platform.orchestration.supervised import PID_TAG, SUPERVISED_TAG
from stock_platform.runtime.processes import pid_alive

__all__ = [
    "ACTIVE_STATUSES",
    "HEARTBEAT_STALE_SECONDS",
    "OWN_END_GRACE_SECONDS",
    "ActiveRun",
    "STARTUP_GRACE_SECONDS",
    "Decision",
    "build_supervisor_sensor",
    "decide",
    "record_run_failures",
]

logger = logging.getLogger(__name__)

ACTIVE_STATUSES = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]
# A new run gets this long to load code, start Spark and write its first heartbeat before it is judged stale.
STARTUP_GRACE_SECONDS = 180.0
# A heartbeat that carries `updated_ms` (the producer refreshes it every 5 s) is stale after this long.
HEARTBEAT_STALE_SECONDS = 60.0
# A run whose process died normally fails by itself within a second or two (its worker sees the exit);
# the supervisor waits this long for that before terminating it, so a crash is recorded as a failure.
OWN_END_GRACE_SECONDS = 20.0


@dataclass(frozen=True)
class Decision:
    """What a supervisor tick does: launch a run or not, stop which stale runs, and why."""

    launch: bool
    reason: str
    terminate_run_ids: tuple[str, ...] = ()
    # True when the stale run's process is gone: its worker should fail the run itself, so wait for that first.
    may_end_by_itself: bool = False


@dataclass(frozen=True)
class ActiveRun:
    """An active run of a supervised job: when it started (None while queued/starting) and its process id, once known."""

    run_id: str
    started: float | None = None
    pid: int | None = None


def _heartbeat_state(heartbeat: dict[str, str] | None, now: float) -> tuple[bool, int | None, str]:
    """(alive, pid, description). Alive: the hash exists (TTL ~120 s), its pid runs, any `updated_ms` is recent."""
    if not heartbeat:
        return False, None, "heartbeat absent"
    try:
        pid = int(heartbeat.get("pid", "0")) or None
        updated_ms = int(heartbeat.get("updated_ms", "0"))
    except ValueError:
        pid, updated_ms = None, 0
    if pid and not pid_alive(pid):
        return False, pid, f"heartbeat stale: pid {pid} is gone"
    if updated_ms and now - updated_ms / 1000 > HEARTBEAT_STALE_SECONDS:
        return False, pid, f"heartbeat stale: last beat {now - updated_ms / 1000:.0f} s ago (pid {pid})"
    return True, pid, f"heartbeat fresh (pid {pid or '?'})"


def decide(
    component: str,
    active_runs: list[ActiveRun],
    heartbeat: dict[str, str] | None,
    now: float,
    startup_grace_seconds: float = STARTUP_GRACE_SECONDS,
) -> Decision:
    """The supervisor's rule: launch when nothing runs, replace a run whose process is gone or stopped beating."""
    alive, beat_pid, beat = _heartbeat_state(heartbeat, now)
    if not active_runs:
        if alive:
            return Decision(
                False, f"no active {component} run, but a {component} outside Dagster is running ({beat}): not starting a second"
            )
        return Decision(True, f"no active {component} run ({beat}): starting one")
    run = active_runs[0]
    stale = tuple(r.run_id for r in active_runs)
    name = f"run {run.run_id[:8]}"
    if alive:
        return Decision(False, f"{name} is active and {beat}")
    if run.pid is not None and not pid_alive(run.pid):
        return Decision(True, f"{name}'s process (pid {run.pid}) is gone ({beat}): replacing the run", stale, True)
    if run.pid is not None and beat_pid == run.pid:
        # Its own process is alive but no longer refreshes its heartbeat: hung.
        return Decision(True, f"{name}'s process (pid {run.pid}) is alive but {beat}: replacing the run", stale)
    if run.pid is not None:
        # Alive, not beating yet (Spark starting), or idle: the stream beats once per batch, a quiet topic has none.
        return Decision(False, f"{name}'s process (pid {run.pid}) is alive, {beat}: starting up or idle")
    age = None if run.started is None else now - run.started
    if age is None or age < startup_grace_seconds:
        waited = "queued/starting" if age is None else f"started {age:.0f} s ago"
        return Decision(False, f"{name} {waited}, no process yet: waiting up to {startup_grace_seconds:.0f} s for it")
    return Decision(True, f"{name} started {age:.0f} s ago and never started its process: replacing it", stale)


def _active_runs(instance: dg.DagsterInstance, component: str) -> list[ActiveRun]:
    records = instance.get_run_records(
        dg.RunsFilter(statuses=ACTIVE_STATUSES, tags={SUPERVISED_TAG: component}), order_by="create_timestamp"
    )
    out = []
    for record in records:
        pid = record.dagster_run.tags.get(PID_TAG, "")
        out.append(ActiveRun(record.dagster_run.run_id, record.start_time, int(pid) if pid.isdigit() else None))
    return out


def _ended_by_itself(instance: dg.DagsterInstance, run_id: str, deadline: float) -> bool:
    """Whether the run leaves the active statuses before `deadline` (monotonic) without being terminated."""
    while True:
        run = instance.get_run_by_id(run_id)
        if run is None or run.status not in ACTIVE_STATUSES:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.5)


def _stop_stale_run(context: dg.SensorEvaluationContext, run_id: str, deadline: float | None) -> None:
    """Let a run whose process is gone fail by itself; otherwise terminate it (or mark it failed if unreachable).

    Terminating a run whose worker is already failing it would record the crash as a cancellation,
    and the failure sensor would never see it.
    """
    if deadline is not None and _ended_by_itself(context.instance, run_id, deadline):
        context.log.info(f"stale run {run_id} ended by itself")
        return
    context.log.warning(f"terminating stale run {run_id}")
    if not context.instance.run_launcher.terminate(run_id):
        # The worker is gone or unreachable: mark the run failed so the replacement can leave the queue.
        context.instance.report_run_failed(context.instance.get_run_by_id(run_id))


def build_supervisor_sensor(
    name: str,
    job: dg.JobDefinition,
    component: str,
    interval_seconds: int = 10,
    startup_grace_seconds: float = STARTUP_GRACE_SECONDS,
    own_end_grace_seconds: float = OWN_END_GRACE_SECONDS,
) -> dg.SensorDefinition:
    """A sensor that keeps exactly one run of `job` alive, judged by the `component` heartbeat."""

    @dg.sensor(
        name=name,
        job=job,
        minimum_interval_seconds=interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Keeps one {job.name} run alive: starts one when none is active or the {component} heartbeat is stale.",
    )
    def _supervisor(context: dg.SensorEvaluationContext, redis: RedisResource) -> dg.SensorResult | dg.SkipReason:
        runs = _active_runs(context.instance, component)
        decision = decide(component, runs, redis.heartbeat(component), time.time(), startup_grace_seconds)
        context.log.info(decision.reason)
        if not decision.launch:
            return dg.SkipReason(decision.reason)
        # One deadline for all stale runs, so the tick stays well inside the sensor's evaluation timeout.
        deadline = time.monotonic() + own_end_grace_seconds if decision.may_end_by_itself else None
        for run_id in decision.terminate_run_ids:
            _stop_stale_run(context, run_id, deadline)
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
    """Insert one row per failed run into `run_failures` (idempotent on run id)."""
    run = context.dagster_run
    message = (context.failure_event.message or "")[:4000]
    context.log.warning(f"run {run.run_id} of {run.job_name} failed: {message[:300]}")
    postgres.migrate()
    with postgres.connect() as conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO run_failures (run_id, job_name, component, error) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (run_id) DO NOTHING",
            (run.run_id, run.job_name, run.tags.get(SUPERVISED_TAG), message),
        )
