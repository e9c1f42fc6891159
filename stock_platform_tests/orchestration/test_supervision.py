"""The supervisors' rule on its own (no services): launch, keep, replace gone/hung/silent/stalled runs, back off, Redis unknown."""

import os
import subprocess
import sys

from stock_platform.orchestration.backoff import FailureStreak
from stock_platform.orchestration.stall import STALL_SECONDS, StreamProgress, records_waiting
from stock_platform.orchestration.supervision import (
    HEARTBEAT_TTL_SECONDS,
    STARTUP_GRACE_SECONDS,
    ActiveRun,
    decide,
)

NOW = 10_000.0
REDIS_DOWN = "Redis unreachable (ConnectionError)"


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _beat(updated_ago_s: float = 1.0, last_batch_ago_s: float | None = None) -> dict[str, str]:
    beat = {"pid": str(os.getpid()), "updated_ms": str(int((NOW - updated_ago_s) * 1000))}
    if last_batch_ago_s is not None:
        beat["last_batch_ms"] = str(int((NOW - last_batch_ago_s) * 1000))
    return beat


# --- launch, keep, replace: a run that is missing, starting, gone, or no longer beating ---


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


# --- silent: a live process with no heartbeat of its own (hash expired, or Redis flushed) ---

SILENT_AGE = STARTUP_GRACE_SECONDS + HEARTBEAT_TTL_SECONDS + 10


def test_a_live_process_silent_past_grace_and_ttl_is_replaced() -> None:
    run = ActiveRun("abcdef123456", NOW - SILENT_AGE, pid=os.getpid())
    decision = decide("producer", [run], None, NOW, silent_since=NOW - 70)
    assert decision.launch and decision.terminate_run_ids == ("abcdef123456",) and not decision.may_end_by_itself
    assert "is alive but has shown no heartbeat of its own for 70 s, started 310 s ago (heartbeat absent)" in decision.reason
    assert decision.stop_reason == decision.reason
    # Its hash outlives a last beat by the TTL, so it worked until a TTL before the hash was first seen missing.
    assert decision.worked_until == max(run.started, NOW - 70 - HEARTBEAT_TTL_SECONDS)
    # A heartbeat of some other, dead process is no beat of its own either.
    other = decide("producer", [run], {"pid": str(_dead_pid())}, NOW, silent_since=NOW - 70)
    assert other.launch and "heartbeat stale: pid" in other.reason


def test_a_silent_process_is_kept_until_the_supervisor_has_missed_beats_for_a_minute() -> None:
    """A flushed or restarted Redis is empty until the next beat (5 s, 10 s): that alone must not replace a run."""
    run = ActiveRun("abcdef123456", NOW - 3600, pid=os.getpid())
    first = decide("stream", [run], None, NOW)
    assert not first.launch and "starting up or idle" in first.reason and first.silent_since == NOW
    assert not decide("stream", [run], None, NOW, silent_since=NOW - 30).launch
    assert decide("stream", [run], None, NOW, silent_since=NOW - 60).launch


def test_a_silent_stream_whose_ledger_shows_recent_batches_is_kept() -> None:
    """A stream run with `--no-redis` (or whose Redis writes fail) never beats, but its committed batches say it works."""
    run = ActiveRun("abcdef123456", NOW - SILENT_AGE, pid=os.getpid())
    working = StreamProgress(last_commit=NOW - 20)
    kept = decide("stream", [run], None, NOW, silent_since=NOW - 70, progress=working)
    assert not kept.launch and "starting up or idle" in kept.reason
    before_this_run = StreamProgress(last_commit=run.started - 5)  # a batch of the previous run proves nothing
    assert decide("stream", [run], None, NOW, silent_since=NOW - 70, progress=before_this_run).launch
    long_ago = StreamProgress(last_commit=NOW - STALL_SECONDS - 1)
    assert decide("stream", [run], None, NOW, silent_since=NOW - 70, progress=long_ago).launch


def test_a_young_silent_run_is_given_its_grace_and_the_ttl() -> None:
    young = ActiveRun("abcdef123456", NOW - STARTUP_GRACE_SECONDS - HEARTBEAT_TTL_SECONDS + 5, pid=os.getpid())
    decision = decide("stream", [young], None, NOW, silent_since=NOW - 600)
    assert not decision.launch and "starting up or idle" in decision.reason


def test_silence_is_judged_only_with_redis_readable() -> None:
    run = ActiveRun("abcdef123456", NOW - 3600, pid=os.getpid())
    unknown = decide("stream", [run], None, NOW, heartbeat_error=REDIS_DOWN, silent_since=NOW - 600)
    assert not unknown.launch and "judged by the process" in unknown.reason
    assert unknown.silent_since is None, "an outage says nothing about beats: the silence starts again afterwards"
    fresh = decide("stream", [run], _beat(), NOW, silent_since=NOW - 600)
    assert not fresh.launch and fresh.silent_since is None


# --- a run being stopped is waited for ---


def test_a_stopping_run_is_waited_for_not_judged_again() -> None:
    stopping = ActiveRun("abcdef123456", NOW - 3600, pid=_dead_pid(), stopping=True)
    queued = ActiveRun("0123456789ab")
    decision = decide("stream", [stopping, queued], None, NOW, failures=FailureStreak(5, NOW - 1000, "r", "x"))
    assert not decision.launch and not decision.terminate_run_ids
    assert decision.reason == "run abcdef12 is being stopped: waiting for it to end"


# --- backoff ---


def test_backoff_holds_a_launch_and_says_why() -> None:
    failures = FailureStreak(3, NOW - 5, "r1", "RuntimeError: spark died\n  traceback ...")
    decision = decide("stream", [], None, NOW, failures=failures)
    assert not decision.launch
    assert decision.reason.startswith("backing off: 3 failures in a row, last: RuntimeError: spark died, next launch in 15 s")
    assert "no active stream run" in decision.reason, "the underlying reason is kept"


def test_backoff_elapsed_or_single_failure_launches() -> None:
    assert decide("stream", [], None, NOW, failures=FailureStreak(3, NOW - 21, "r1", "boom")).launch
    assert decide("stream", [], None, NOW, failures=FailureStreak(1, NOW, "r1", "boom")).launch


def test_backoff_counts_a_dying_run_and_still_stops_it() -> None:
    """The sensor catches a run whose process just died: it is one more failure, so wait, but let it end."""
    dying = ActiveRun("abcdef123456", NOW - 30, pid=_dead_pid())
    decision = decide("stream", [dying], None, NOW, failures=FailureStreak(1, NOW - 60, "r0", "boom"))
    assert not decision.launch and "backing off: 2 failures in a row" in decision.reason
    assert decision.terminate_run_ids == ("abcdef123456",) and decision.may_end_by_itself
    # A run that died after working for long is a one-off crash: replaced at once.
    veteran = ActiveRun("abcdef123456", NOW - 3600, pid=_dead_pid())
    assert decide("stream", [veteran], None, NOW, failures=FailureStreak(5, NOW - 4000, "r0", "boom")).launch


def test_backoff_never_blocks_a_run_that_is_fine() -> None:
    decision = decide("stream", [ActiveRun("abcdef123456", NOW - 5)], _beat(), NOW, failures=FailureStreak(6, NOW, "r", "x"))
    assert not decision.launch and "heartbeat fresh" in decision.reason and "backing off" not in decision.reason


# --- Redis unreachable: judged by the run and its process ---


def test_redis_down_keeps_a_run_whose_process_lives() -> None:
    run = ActiveRun("abcdef123456", NOW - 3600, pid=os.getpid())
    decision = decide("producer", [run], None, NOW, heartbeat_error=REDIS_DOWN)
    assert not decision.launch
    assert f"heartbeat unknown: {REDIS_DOWN}" in decision.reason and "judged by the process" in decision.reason


def test_redis_down_replaces_a_run_whose_process_is_gone() -> None:
    run = ActiveRun("abcdef123456", NOW - 3600, pid=_dead_pid())
    decision = decide("producer", [run], None, NOW, heartbeat_error=REDIS_DOWN)
    assert decision.launch and decision.may_end_by_itself and "heartbeat unknown" in decision.reason


def test_redis_down_launches_when_nothing_runs_and_waits_for_a_starting_run() -> None:
    assert decide("stream", [], None, NOW, heartbeat_error=REDIS_DOWN).launch
    starting = decide("stream", [ActiveRun("abcdef123456", NOW - 5)], None, NOW, heartbeat_error=REDIS_DOWN)
    assert not starting.launch and "waiting up to" in starting.reason


def test_redis_down_ignores_a_heartbeat_it_could_not_read() -> None:
    """An error wins over a hash passed alongside it: nothing read from Redis is trusted then."""
    run = ActiveRun("abcdef123456", NOW - 3600, pid=os.getpid())
    decision = decide("stream", [run], _beat(updated_ago_s=600), NOW, heartbeat_error=REDIS_DOWN)
    assert not decision.launch and "heartbeat unknown" in decision.reason


# --- stalls: alive and beating, but no batches while records wait ---


def _old_run() -> ActiveRun:
    return ActiveRun("abcdef123456", NOW - 3600, pid=os.getpid())


def test_stalled_stream_is_replaced() -> None:
    progress = StreamProgress(NOW - 400, {0: 10, 1: 5}, {0: 12, 1: 5})
    decision = decide("stream", [_old_run()], _beat(last_batch_ago_s=400), NOW, progress=progress)
    assert decision.launch and decision.terminate_run_ids == ("abcdef123456",) and not decision.may_end_by_itself
    assert "stalled: no batch committed for 400 s while 2 records wait in Kafka" in decision.reason


def test_idle_stream_on_a_quiet_topic_is_kept() -> None:
    progress = StreamProgress(NOW - 400, {0: 10, 1: 5}, {0: 10, 1: 5})
    decision = decide("stream", [_old_run()], _beat(last_batch_ago_s=400), NOW, progress=progress)
    assert not decision.launch and "idle: no batch committed for 400 s and none waiting in Kafka" in decision.reason


def test_stall_tolerates_startup_and_recent_batches() -> None:
    waiting = StreamProgress(None, {}, {0: 100})
    young = ActiveRun("abcdef123456", NOW - STALL_SECONDS + 10, pid=os.getpid())
    assert not decide("stream", [young], _beat(), NOW, progress=waiting).launch
    recent = StreamProgress(NOW - 30, {0: 10}, {0: 100})
    assert not decide("stream", [_old_run()], _beat(), NOW, progress=recent).launch
    # The same waiting records with a run that has had time to start and commit: stalled.
    assert decide("stream", [_old_run()], _beat(), NOW, progress=waiting).launch


def test_stall_check_without_redis_uses_the_process_and_the_ledger() -> None:
    progress = StreamProgress(NOW - 600, {0: 1}, {0: 50})
    decision = decide("stream", [_old_run()], None, NOW, heartbeat_error=REDIS_DOWN, progress=progress)
    assert decision.launch and "49 records wait" in decision.reason


def test_unmeasurable_progress_keeps_the_run_and_says_so() -> None:
    progress = StreamProgress(NOW - 600, {0: 1}, None, error="Kafka unreachable (NoBrokersAvailable)")
    decision = decide("stream", [_old_run()], _beat(), NOW, progress=progress)
    assert not decision.launch and "stall check unavailable: Kafka unreachable" in decision.reason


def test_records_waiting_counts_only_partitions_with_a_known_position() -> None:
    assert records_waiting({0: 5, 1: 7}, {0: 9, 1: 7, 2: 1000}) == 4
    assert records_waiting({}, {0: 3, 1: 4}) == 7, "nothing committed yet: a new checkpoint reads from the start"
    assert records_waiting({0: 9}, {0: 5}) == 0
