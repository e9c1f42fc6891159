"""The supervisors' rule: from what one tick observed, launch, replace, keep, or back off, and say why.

No Dagster, Redis, Kafka or PostgreSQL here (only `pid_alive`, which reads
/proc), so every case is a unit test. `orchestration.sensors` gathers the
observations and carries out the decision.

What the rule weighs, in order:
- a run being stopped is waited for: until it has ended, its end is not in the
  failure streak, and the concurrency limit would hold a new run anyway;
- the heartbeat in Redis, or, when Redis cannot be read, the run's own process
  (its pid tag): a supervisor must keep working through a Redis outage, and the
  stream and producer keep working through one too. A live process that has
  written no heartbeat of its own for longer than a beat could be missing (its
  startup grace, then the hash's TTL, and a minute of the supervisor seeing no
  beat, so a flushed Redis is refilled first) is hung, and is replaced;
- for the stream, progress: a live, beating process whose batches stopped while
  records wait in Kafka is stalled (a batch hung on a lock, a lost executor), and
  is replaced; one with nothing to read is idle, and is kept;
- the failure streak (`orchestration.backoff`), which counts the runs the
  supervisor stopped as failures: a launch waits while it lasts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from stock_platform.liveness import pid_alive
from stock_platform.orchestration.backoff import EndedRun, FailureStreak, first_line
from stock_platform.orchestration.stall import STALL_SECONDS, StreamProgress, quiet_since, stall_verdict
from stock_platform.storage.heartbeats import HEARTBEAT_TTL_SECONDS, STALE_AFTER_SECONDS, beat_time, is_stale

__all__ = [
    "HEARTBEAT_TTL_SECONDS",
    "STARTUP_GRACE_SECONDS",
    "ActiveRun",
    "Decision",
    "decide",
]

logger = logging.getLogger(__name__)

# A new run gets this long to load code, start Spark and write its first heartbeat before it is judged stale.
STARTUP_GRACE_SECONDS = 180.0


@dataclass(frozen=True)
class Decision:
    """What a supervisor tick does (launch or not, stop which runs, why) and what it records for the health page."""

    launch: bool
    reason: str
    terminate_run_ids: tuple[str, ...] = ()
    # True when the stale run's process is gone: its worker should fail the run itself, so wait for that first.
    may_end_by_itself: bool = False
    # Why the runs are stopped (recorded as their failure), and the judged run's last sign of work (for the streak).
    stop_reason: str = ""
    worked_until: float | None = None
    # The failure streak weighed, with its last error, and the seconds a held-back launch still waits.
    failures: int = 0
    last_error: str = ""
    wait_s: float = 0.0
    # Since when this supervisor has seen no fresh heartbeat (Redis readable); the sensor keeps it for the next tick.
    silent_since: float | None = None

    @property
    def action(self) -> str:
        """`backoff` (a launch held back), `launch`, or `keep` (nothing to start)."""
        return "backoff" if self.wait_s > 0 else "launch" if self.launch else "keep"


@dataclass(frozen=True)
class ActiveRun:
    """An active run: when it started (None while queued), its process id once known, whether it is being stopped."""

    run_id: str
    started: float | None = None
    pid: int | None = None
    stopping: bool = False


@dataclass(frozen=True)
class _Beat:
    """The heartbeat as judged: alive (None: unknown), its pid and last beat (epoch s), and a description."""

    alive: bool | None
    pid: int | None
    updated: float | None
    text: str


def _heartbeat_state(heartbeat: dict[str, str] | None, heartbeat_error: str, now: float) -> _Beat:
    """Alive: the hash exists (TTL ~120 s), its pid runs, and it is not stale by the shared rule. Unknown when unreadable."""
    if heartbeat_error:
        return _Beat(None, None, None, f"heartbeat unknown: {heartbeat_error}")
    if not heartbeat:
        return _Beat(False, None, None, "heartbeat absent")
    try:
        pid = int(heartbeat.get("pid", "0")) or None
    except ValueError:
        pid = None
    updated = beat_time(heartbeat)
    if pid and not pid_alive(pid):
        return _Beat(False, pid, updated, f"heartbeat stale: pid {pid} is gone")
    if updated is not None and is_stale(heartbeat, now):
        return _Beat(False, pid, updated, f"heartbeat stale: last beat {now - updated:.0f} s ago (pid {pid})")
    return _Beat(True, pid, updated, f"heartbeat fresh (pid {pid or '?'})")


def _replacing(runs: list[ActiveRun], why: str, worked_until: float | None, may_end_by_itself: bool = False) -> Decision:
    """Stop `runs` and launch another; `why` is also what the stopped run's failure record says."""
    reason = f"{why}: replacing the run"
    return Decision(True, reason, tuple(r.run_id for r in runs), may_end_by_itself, reason, worked_until)


def _keep_unless_stalled(
    keep: Decision, runs: list[ActiveRun], progress: StreamProgress | None, now: float, stall_seconds: float
) -> Decision:
    """`keep`, or a replacement when the run's batches stopped while records wait."""
    if progress is None:
        return keep
    stalled, note = stall_verdict(runs[0].started, progress, now, stall_seconds)
    if stalled:
        worked_until = quiet_since(runs[0].started, progress.last_commit)
        return _replacing(runs, f"run {runs[0].run_id[:8]} is alive but stalled: {note}", worked_until)
    return replace(keep, reason=keep.reason + note)


def _silent_for_too_long(
    runs: list[ActiveRun], beat: _Beat, now: float, startup_grace_seconds: float, silent_since: float
) -> Decision | None:
    """A replacement when the run's live process has written no heartbeat of its own for longer than any beat is missed.

    The hash expires a TTL after its last write, and Redis may have been flushed: so the run must be
    older than its grace plus the TTL, and the supervisor must have seen no beat for a minute (a live
    producer rewrites its hash every 5 s, the stream every 10 s, even when idle).
    """
    run = runs[0]
    if beat.alive is not False or beat.pid == run.pid or run.started is None:
        return None
    age, silent = now - run.started, now - silent_since
    if age <= startup_grace_seconds + HEARTBEAT_TTL_SECONDS or silent < STALE_AFTER_SECONDS:
        return None
    why = (
        f"run {run.run_id[:8]}'s process (pid {run.pid}) is alive but has shown no heartbeat of its own for {silent:.0f} s,"
        f" started {age:.0f} s ago ({beat.text})"
    )
    # Its last beat, if any, was a TTL before the hash was first seen missing.
    return _replacing(runs, why, max(run.started, silent_since - HEARTBEAT_TTL_SECONDS))


def _committing(run: ActiveRun, progress: StreamProgress | None, now: float, stall_seconds: float) -> bool:
    """True when the stream's ledger shows this run committed a batch within the stall window.

    A stream that works but does not beat (started with `--no-redis`, or Redis refusing its writes only)
    is not silent: its batches say it is alive.
    """
    if progress is None or progress.last_commit is None or run.started is None:
        return False
    return progress.last_commit >= run.started and now - progress.last_commit < stall_seconds


def _judge(
    component: str, active_runs: list[ActiveRun], beat: _Beat, now: float, startup_grace_seconds: float,
    progress: StreamProgress | None, stall_seconds: float, silent_since: float,
) -> Decision:  # fmt: skip
    """The decision before backoff: launch when nothing runs, replace a run that is gone, hung, silent or stalled."""
    stopping = next((r for r in active_runs if r.stopping), None)
    if stopping is not None:
        return Decision(False, f"run {stopping.run_id[:8]} is being stopped: waiting for it to end")
    if not active_runs:
        # With the heartbeat unknown a copy outside Dagster cannot be seen; launching anyway keeps the pipeline up,
        # and the tag's concurrency limit still keeps Dagster's own runs to one.
        if beat.alive:
            return Decision(
                False,
                f"no active {component} run, but a {component} outside Dagster is running ({beat.text}): not starting a second",
            )
        return Decision(True, f"no active {component} run ({beat.text}): starting one")
    run = active_runs[0]
    name = f"run {run.run_id[:8]}"
    if beat.alive:
        keep = Decision(False, f"{name} is active and {beat.text}")
        return _keep_unless_stalled(keep, active_runs, progress, now, stall_seconds)
    if run.pid is not None and not pid_alive(run.pid):
        return _replacing(active_runs, f"{name}'s process (pid {run.pid}) is gone ({beat.text})", None, True)
    if beat.alive is False and run.pid is not None and beat.pid == run.pid:
        # Its own process is alive but no longer refreshes its heartbeat: hung.
        return _replacing(active_runs, f"{name}'s process (pid {run.pid}) is alive but {beat.text}", beat.updated)
    if run.pid is not None:
        if beat.alive is None:
            keep = Decision(
                False, f"{name}'s process (pid {run.pid}) is alive; {beat.text}, so judged by the process: keeping it"
            )
        else:
            silent = _silent_for_too_long(active_runs, beat, now, startup_grace_seconds, silent_since)
            if silent is not None and not _committing(run, progress, now, stall_seconds):
                return silent
            # Alive, not beating yet (Spark starting) or between beats.
            keep = Decision(False, f"{name}'s process (pid {run.pid}) is alive, {beat.text}: starting up or idle")
        return _keep_unless_stalled(keep, active_runs, progress, now, stall_seconds)
    age = None if run.started is None else now - run.started
    if age is None or age < startup_grace_seconds:
        waited = "queued/starting" if age is None else f"started {age:.0f} s ago"
        return Decision(False, f"{name} {waited}, no process yet: waiting up to {startup_grace_seconds:.0f} s for it")
    return _replacing(active_runs, f"{name} started {age:.0f} s ago and never started its process", run.started)


def _streak_after(decision: Decision, active_runs: list[ActiveRun], failures: FailureStreak, now: float) -> FailureStreak:
    """The streak once the run this decision stops has ended: one more failure, ending now (its worker's or ours)."""
    if not decision.terminate_run_ids:
        return failures
    run = active_runs[0]
    return failures.plus(EndedRun(run.run_id, True, run.started, now, decision.worked_until), decision.stop_reason)


def decide(
    component: str,
    active_runs: list[ActiveRun],
    heartbeat: dict[str, str] | None,
    now: float,
    startup_grace_seconds: float = STARTUP_GRACE_SECONDS,
    *,
    heartbeat_error: str = "",
    failures: FailureStreak | None = None,
    progress: StreamProgress | None = None,
    stall_seconds: float = STALL_SECONDS,
    silent_since: float | None = None,
) -> Decision:
    """The supervisor's rule: launch when nothing runs; replace a run that is gone, hung or stalled; back off while failing.

    `heartbeat_error` set means Redis could not be read (the heartbeat is unknown, not absent);
    `progress` (the stream only) enables the stall check; `failures` is the component's failure streak;
    `silent_since` is the previous decision's, when the supervisor first saw no fresh heartbeat.
    """
    beat = _heartbeat_state(heartbeat, heartbeat_error, now)
    # Only a readable, not-fresh heartbeat keeps the silence going; unknown says nothing either way.
    silent = None if beat.alive is not False else (now if silent_since is None else silent_since)
    decision = _judge(
        component, active_runs, beat, now, startup_grace_seconds, progress, stall_seconds, now if silent is None else silent
    )
    streak = _streak_after(decision, active_runs, failures or FailureStreak(), now)
    decision = replace(decision, failures=streak.count, last_error=first_line(streak.last_error), silent_since=silent)
    wait = streak.wait(now) if decision.launch else 0.0
    if wait <= 0:
        return decision
    last = first_line(streak.last_error) or "error unknown"
    reason = f"backing off: {streak.count} failures in a row, last: {last}, next launch in {wait:.0f} s ({decision.reason})"
    return replace(decision, launch=False, wait_s=wait, reason=reason)
