"""What a decision records and how the runs a supervisor stops count in the failure streak (no services)."""

import os

from stock_platform.orchestration.backoff import FailureStreak
from stock_platform.orchestration.stall import StreamProgress
from stock_platform.orchestration.supervision import ActiveRun, decide

NOW = 10_000.0


def _beat() -> dict[str, str]:
    return {"pid": str(os.getpid()), "updated_ms": str(int((NOW - 1) * 1000))}


def _stalled(started_ago: float, last_commit_ago: float) -> tuple[ActiveRun, StreamProgress]:
    run = ActiveRun("abcdef123456", NOW - started_ago, pid=os.getpid())
    return run, StreamProgress(NOW - last_commit_ago, {0: 1}, {0: 50})


def test_a_stopped_run_is_one_more_failure_so_a_second_stall_backs_off() -> None:
    run, progress = _stalled(started_ago=200, last_commit_ago=190)
    first = decide("stream", [run], _beat(), NOW, progress=progress)
    assert (first.action, first.failures, first.wait_s) == ("launch", 1, 0.0)
    assert first.last_error.startswith("run abcdef12 is alive but stalled")
    previous = FailureStreak(1, NOW - 30, "r0", first.stop_reason)
    second = decide("stream", [run], _beat(), NOW, progress=progress, failures=previous)
    assert (second.action, second.failures, second.wait_s, second.launch) == ("backoff", 2, 10.0, False)
    assert second.terminate_run_ids == ("abcdef123456",), "a stalled run is stopped even while the launch waits"
    assert second.reason.startswith("backing off: 2 failures in a row, last: run abcdef12 is alive but stalled")


def test_a_stalled_run_worked_only_until_its_last_commit() -> None:
    """An hour-old stream that committed nothing since its start never worked: it does not reset the streak."""
    run, progress = _stalled(started_ago=3600, last_commit_ago=3700)
    decision = decide("stream", [run], _beat(), NOW, progress=progress, failures=FailureStreak(3, NOW - 100, "r", "x"))
    assert decision.worked_until == run.started
    assert (decision.action, decision.failures) == ("backoff", 4)
    # One that committed for ten minutes before it stalled did work: a single stall is replaced at once.
    worked, progress = _stalled(started_ago=3600, last_commit_ago=3000)
    assert decide("stream", [worked], _beat(), NOW, progress=progress, failures=FailureStreak(3, NOW - 100, "r", "x")).launch


def test_a_hung_run_worked_until_its_last_beat() -> None:
    run = ActiveRun("abcdef123456", NOW - 400, pid=os.getpid())
    beat = {"pid": str(os.getpid()), "updated_ms": str(int((NOW - 300) * 1000))}
    decision = decide("producer", [run], beat, NOW)
    assert decision.launch and decision.worked_until == NOW - 300 and decision.failures == 1
    # One that beat for five minutes before it hung had worked: its stop starts no streak.
    veteran = ActiveRun("abcdef123456", NOW - 700, pid=os.getpid())
    assert decide("producer", [veteran], beat, NOW, failures=FailureStreak(4, NOW - 900, "r", "x")).failures == 0


def test_a_keep_decision_records_the_streak_it_saw() -> None:
    run = ActiveRun("abcdef123456", NOW - 5, pid=os.getpid())
    decision = decide("stream", [run], _beat(), NOW, failures=FailureStreak(3, NOW - 60, "r", "RuntimeError: boom\n..."))
    assert (decision.action, decision.failures, decision.last_error, decision.wait_s) == ("keep", 3, "RuntimeError: boom", 0.0)
