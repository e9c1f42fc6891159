"""Run history as the supervisors read it: runs they stopped count as failures, a stopping run is seen as such.

Against a throwaway local Dagster instance (no services).
"""

from datetime import UTC, datetime, timedelta

import dagster as dg

from stock_platform.orchestration.run_history import active_runs, failure_reason, failure_streak
from stock_platform.orchestration.supervised import STOPPED_TAG, SUPERVISED_TAG, WORKED_UNTIL_TAG, streaming_job


def _run(instance: dg.DagsterInstance, started_ago: float, tags: dict[str, str] | None = None) -> dg.DagsterRun:
    run = instance.create_run_for_job(streaming_job, tags={SUPERVISED_TAG: "stream", **(tags or {})})
    instance.handle_run_event(
        run.run_id,
        dg.DagsterEvent(event_type_value=dg.DagsterEventType.RUN_START.value, job_name=streaming_job.name),
        update_timestamp=datetime.now(UTC) - timedelta(seconds=started_ago),
    )
    return instance.get_run_by_id(run.run_id)


def _stopped_by_supervisor(instance: dg.DagsterInstance, started_ago: float, worked_until: float) -> dg.DagsterRun:
    run = _run(instance, started_ago)
    # What the supervisor sensor does before it terminates a run.
    instance.add_run_tags(run.run_id, {STOPPED_TAG: "run is alive but stalled", WORKED_UNTIL_TAG: f"{worked_until:.3f}"})
    instance.report_run_canceled(instance.get_run_by_id(run.run_id))
    return run


def test_runs_the_supervisor_stopped_are_a_streak_though_they_ended_cancelled() -> None:
    with dg.instance_for_test() as instance:
        operator = _run(instance, 5000)
        instance.report_run_canceled(operator)
        for _ in range(2):
            # An hour old, but silent since its start: it never worked.
            started = datetime.now(UTC).timestamp() - 3600
            _stopped_by_supervisor(instance, 3600, worked_until=started)
        newest = _stopped_by_supervisor(instance, 200, worked_until=datetime.now(UTC).timestamp() - 190)
        streak = failure_streak(instance, "stream")
        assert streak.count == 3, "the operator's cancellation before them ends the streak"
        assert streak.last_run_id == newest.run_id
        assert streak.last_error == "stopped by its supervisor: run is alive but stalled"
        assert failure_reason(instance, operator.run_id) != streak.last_error


def test_a_stopped_run_that_had_worked_long_ends_the_streak() -> None:
    with dg.instance_for_test() as instance:
        failed = _run(instance, 100)
        instance.report_run_failed(failed)
        _stopped_by_supervisor(instance, 3600, worked_until=datetime.now(UTC).timestamp() - 60)
        assert failure_streak(instance, "stream").count == 0


def test_a_cancelling_run_is_active_and_stopping() -> None:
    with dg.instance_for_test() as instance:
        run = _run(instance, 30)
        instance.report_run_canceling(run)
        (seen,) = active_runs(instance, "stream")
        assert seen.run_id == run.run_id and seen.stopping and seen.started is not None
