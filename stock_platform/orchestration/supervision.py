"""The supervisors' rule: from what one tick observed, launch, replace, keep, or back off, and say why.

No Dagster, Redis, Kafka or PostgreSQL here (only `pid_alive`, which reads
/proc), so every case is a unit test. `orchestration.sensors` gathers the
observations and carries out the decision.

What the rule weighs, in order:
- the heartbeat in Redis, or, when Redis cannot be read, the run's own process
  (its pid tag): a supervisor must keep working through a Redis outage, and the
  stream and producer keep working through one too;
- for the stream, progress: a live, beating process whose batches stopped while
  records wait in Kafka is stalled (a batch hung on a lock, a lost executor), and
  is replaced; one with nothing to read is idle, and is kept;
- the failure streak (`orchestration.backoff`): a launch waits while it lasts.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from stock_platform.orchestration.backoff import FailureStreak, first_line
from stock_platform.runtime.processes import pid_alive

__all__ = [
    "HEARTBEAT_STALE_SECONDS",
    "STALL_SECONDS",
    "STARTUP_GRACE_SECONDS",
    "ActiveRun",
    "Decision",
    "StreamProgress",
    "decide",
    "quiet_since",
    "records_waiting",
    "stall_verdict",
]

logger = logging.getLogger(__name__)

# A new run gets this long to load code, start Spark and write its first heartbeat before it is judged stale.
STARTUP_GRACE_SECONDS = 180.0
# A heartbeat that carries `updated_ms` (the producer refreshes it every 5 s, the stream every 10 s) is stale after this.
HEARTBEAT_STALE_SECONDS = 60.0
# No committed batch for this long while records wait means stalled. Counted from the run's start at the earliest,
# which is the startup tolerance: Spark starts and commits its first batch in well under a minute here.
STALL_SECONDS = 180.0


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


@dataclass(frozen=True)
class StreamProgress:
    """What the stall check measured: the last committed batch (epoch s), committed and published offsets, or why not.

    `end_offsets` is None when Kafka was not asked (the stream committed recently) or could not be.
    """

    last_commit: float | None = None
    committed: Mapping[int, int] = field(default_factory=dict)
    end_offsets: Mapping[int, int] | None = None
    error: str = ""


def quiet_since(run: ActiveRun, last_commit: float | None) -> float | None:
    """Since when the run has committed nothing: its last commit or its start, whichever is later; None before it starts.

    The heartbeat hash outlives a restart, so its `last_batch_ms` may belong to the previous process.
    """
    if run.started is None:
        return None
    return max(run.started, last_commit or 0.0)


def records_waiting(committed: Mapping[int, int], end_offsets: Mapping[int, int]) -> int:
    """Records published but not committed by the stream.

    With no committed batch at all, everything published waits (a new checkpoint reads from the
    earliest offset). Otherwise only partitions the recent ledger names count: a partition missing
    from it has had no batch for a long while, and its position is unknown, not zero.
    """
    if not committed:
        return sum(max(0, end) for end in end_offsets.values())
    return sum(max(0, end - committed[p]) for p, end in end_offsets.items() if p in committed)


def stall_verdict(run: ActiveRun, progress: StreamProgress, now: float, stall_seconds: float) -> tuple[bool, str]:
    """(stalled, note): stalled when nothing committed for `stall_seconds` while records wait; the note says what was seen."""
    since = quiet_since(run, progress.last_commit)
    if since is None or now - since < stall_seconds:
        return False, ""
    quiet = f"no batch committed for {now - since:.0f} s"
    if progress.error:
        return False, f"; {quiet}, stall check unavailable: {progress.error}"
    if progress.end_offsets is None:
        return False, f"; {quiet}, Kafka offsets not known"
    waiting = records_waiting(progress.committed, progress.end_offsets)
    if waiting == 0:
        return False, f"; idle: {quiet} and none waiting in Kafka"
    return True, f"{quiet} while {waiting:,} records wait in Kafka"


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


def _keep_unless_stalled(
    keep: Decision, runs: list[ActiveRun], progress: StreamProgress | None, now: float, stall_seconds: float
) -> Decision:
    """`keep`, or a replacement when the run's batches stopped while records wait."""
    if progress is None:
        return keep
    stalled, note = stall_verdict(runs[0], progress, now, stall_seconds)
    if stalled:
        stale = tuple(r.run_id for r in runs)
        return Decision(True, f"run {runs[0].run_id[:8]} is alive but stalled: {note}: replacing the run", stale)
    return replace(keep, reason=keep.reason + note)


def _judge(
    component: str, active_runs: list[ActiveRun], heartbeat: dict[str, str] | None, heartbeat_error: str, now: float,
    startup_grace_seconds: float, progress: StreamProgress | None, stall_seconds: float,
) -> Decision:  # fmt: skip
    """The decision before backoff: launch when nothing runs, replace a run that is gone, hung or stalled."""
    if heartbeat_error:
        # Unknown, not absent: say so, and judge the run by its process alone.
        alive, beat_pid, beat = None, None, f"heartbeat unknown: {heartbeat_error}"
    else:
        alive, beat_pid, beat = _heartbeat_state(heartbeat, now)
    if not active_runs:
        # With the heartbeat unknown a copy outside Dagster cannot be seen; launching anyway keeps the pipeline up,
        # and the tag's concurrency limit still keeps Dagster's own runs to one.
        if alive:
            return Decision(
                False, f"no active {component} run, but a {component} outside Dagster is running ({beat}): not starting a second"
            )
        return Decision(True, f"no active {component} run ({beat}): starting one")
    run = active_runs[0]
    stale = tuple(r.run_id for r in active_runs)
    name = f"run {run.run_id[:8]}"
    if alive:
        return _keep_unless_stalled(Decision(False, f"{name} is active and {beat}"), active_runs, progress, now, stall_seconds)
    if run.pid is not None and not pid_alive(run.pid):
        return Decision(True, f"{name}'s process (pid {run.pid}) is gone ({beat}): replacing the run", stale, True)
    if alive is False and run.pid is not None and beat_pid == run.pid:
        # Its own process is alive but no longer refreshes its heartbeat: hung.
        return Decision(True, f"{name}'s process (pid {run.pid}) is alive but {beat}: replacing the run", stale)
    if run.pid is not None:
        if alive is None:
            keep = Decision(False, f"{name}'s process (pid {run.pid}) is alive; {beat}, so judged by the process: keeping it")
        else:
            # Alive, not beating yet (Spark starting) or between beats.
            keep = Decision(False, f"{name}'s process (pid {run.pid}) is alive, {beat}: starting up or idle")
        return _keep_unless_stalled(keep, active_runs, progress, now, stall_seconds)
    age = None if run.started is None else now - run.started
    if age is None or age < startup_grace_seconds:
        waited = "queued/starting" if age is None else f"started {age:.0f} s ago"
        return Decision(False, f"{name} {waited}, no process yet: waiting up to {startup_grace_seconds:.0f} s for it")
    return Decision(True, f"{name} started {age:.0f} s ago and never started its process: replacing it", stale)


def _with_backoff(decision: Decision, active_runs: list[ActiveRun], failures: FailureStreak, now: float) -> Decision:
    """Hold a launch back while the failure streak asks for a wait; stale runs are still stopped.

    A run whose process is gone is about to fail, so it counts as one more failure, ending now.
    """
    streak = failures
    if decision.may_end_by_itself and active_runs:
        streak = failures.plus(active_runs[0].started, now, f"process of run {active_runs[0].run_id[:8]} is gone")
    wait = streak.wait(now)
    if wait <= 0:
        return decision
    last = first_line(streak.last_error) or "error unknown"
    reason = f"backing off: {streak.count} failures in a row, last: {last}, next launch in {wait:.0f} s ({decision.reason})"
    return replace(decision, launch=False, reason=reason)


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
) -> Decision:
    """The supervisor's rule: launch when nothing runs; replace a run that is gone, hung or stalled; back off while failing.

    `heartbeat_error` set means Redis could not be read (the heartbeat is unknown, not absent);
    `progress` (the stream only) enables the stall check; `failures` is the component's failure streak.
    """
    decision = _judge(component, active_runs, heartbeat, heartbeat_error, now, startup_grace_seconds, progress, stall_seconds)
    if not decision.launch:
        return decision
    return _with_backoff(decision, active_runs, failures or FailureStreak(), now)
