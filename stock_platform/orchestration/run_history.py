"""What the Dagster instance knows about a supervised component's runs: the active ones, the failure streak, why one failed.

Read from the instance's run and event storage alone, so the supervisors can
back off and explain failures while Redis (or the platform database) is down.
A run the supervisor stopped ends as cancelled, but it failed: its tags say so
(`supervised.STOPPED_TAG`), and the streak counts it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import dagster as dg

from stock_platform.orchestration.backoff import EndedRun, FailureStreak, streak_of
from stock_platform.orchestration.supervised import PID_TAG, STOPPED_TAG, SUPERVISED_TAG, WORKED_UNTIL_TAG
from stock_platform.orchestration.supervision import ActiveRun

if TYPE_CHECKING:
    from dagster_shared.error import SerializableErrorInfo

__all__ = ["ACTIVE_STATUSES", "ENDED_STATUSES", "active_runs", "ended_run", "failure_reason", "failure_streak"]

logger = logging.getLogger(__name__)

ACTIVE_STATUSES = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]
ENDED_STATUSES = [dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.CANCELED]
# The backoff stops growing after 7 failures (10 s doubling to 300 s); a few more only make the count exact.
STREAK_RUNS = 20


def active_runs(instance: dg.DagsterInstance, component: str) -> list[ActiveRun]:
    """The component's queued, running or stopping runs, oldest first, with their start time and process id (once known)."""
    records = instance.get_run_records(
        dg.RunsFilter(statuses=ACTIVE_STATUSES, tags={SUPERVISED_TAG: component}), order_by="create_timestamp"
    )
    out = []
    for record in records:
        run = record.dagster_run
        pid = run.tags.get(PID_TAG, "")
        stopping = run.status == dg.DagsterRunStatus.CANCELING
        out.append(ActiveRun(run.run_id, record.start_time, int(pid) if pid.isdigit() else None, stopping))
    return out


def _float_tag(run: dg.DagsterRun, key: str) -> float | None:
    try:
        return float(run.tags[key])
    except (KeyError, ValueError):
        return None


def ended_run(record: dg.RunRecord) -> EndedRun:
    """A run as the streak sees it: failed when it failed or its supervisor stopped it (then it worked until the tag's time)."""
    run = record.dagster_run
    stopped = STOPPED_TAG in run.tags
    failed = stopped or run.status == dg.DagsterRunStatus.FAILURE
    worked_until = _float_tag(run, WORKED_UNTIL_TAG) if stopped else None
    return EndedRun(run.run_id, failed, record.start_time, record.end_time, worked_until)


def failure_streak(instance: dg.DagsterInstance, component: str) -> FailureStreak:
    """The component's current failure streak (see `backoff.streak_of`), with the newest failure's error."""
    records = instance.get_run_records(
        dg.RunsFilter(statuses=ENDED_STATUSES, tags={SUPERVISED_TAG: component}), limit=STREAK_RUNS
    )
    streak = streak_of(ended_run(r) for r in records)
    if streak.count == 0:
        return streak
    return FailureStreak(streak.count, streak.last_end, streak.last_run_id, failure_reason(instance, streak.last_run_id))


def _deepest_message(error: SerializableErrorInfo | None) -> str:
    """The innermost cause's message: Dagster wraps an op's exception in its own step-execution error."""
    if error is None:
        return ""
    while error.cause is not None:
        error = error.cause
    return error.message.strip()


def failure_reason(instance: dg.DagsterInstance, run_id: str) -> str:
    """Why a run failed, most specific first: why its supervisor stopped it, a `dg.Failure`'s description, the op's error.

    Else the run's own message, though that alone ("Steps failed: ['run_stream']") never says why.
    """
    run = instance.get_run_by_id(run_id)
    if run is not None and run.tags.get(STOPPED_TAG):
        return f"stopped by its supervisor: {run.tags[STOPPED_TAG]}"
    events = instance.all_logs(run_id, of_type={dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.RUN_FAILURE})
    run_message = ""
    for entry in events:
        event = entry.dagster_event
        if event is None:
            continue
        if event.event_type == dg.DagsterEventType.STEP_FAILURE:
            data = event.step_failure_data
            description = data.user_failure_data.description if data.user_failure_data else None
            reason = description or _deepest_message(data.error)
            if reason:
                return reason
        elif not run_message:
            run_message = event.message or entry.user_message
    return run_message or "no failure event recorded"
