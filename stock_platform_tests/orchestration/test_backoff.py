"""The backoff schedule and the failure streak it is computed from (no services)."""

from stock_platform.orchestration.backoff import (
    BACKOFF_MAX_SECONDS,
    HEALTHY_RUN_SECONDS,
    EndedRun,
    FailureStreak,
    backoff_seconds,
    first_line,
    streak_of,
)


def test_first_failure_relaunches_at_once_then_the_wait_doubles_to_the_cap() -> None:
    assert [backoff_seconds(n) for n in range(8)] == [0, 0, 10, 20, 40, 80, 160, 300]
    assert backoff_seconds(10_000) == BACKOFF_MAX_SECONDS


def _failed(run_id: str, started: float, lived: float) -> EndedRun:
    return EndedRun(run_id, True, started, started + lived)


def test_streak_counts_young_failures_back_to_a_run_that_worked() -> None:
    runs = [
        _failed("newest", 900.0, 5.0),
        _failed("second", 850.0, 30.0),
        EndedRun("cancelled", False, 100.0, 700.0),  # cancelled by an operator: ends the streak
        _failed("older", 0.0, 1.0),
    ]
    streak = streak_of(runs)
    assert (streak.count, streak.last_end, streak.last_run_id) == (2, 905.0, "newest")


def test_a_run_that_lived_long_ends_the_streak() -> None:
    runs = [_failed("young", 2000.0, 5.0), _failed("long", 1000.0, HEALTHY_RUN_SECONDS), _failed("old", 900.0, 1.0)]
    assert streak_of(runs).count == 1
    assert streak_of([_failed("long", 1000.0, HEALTHY_RUN_SECONDS + 1)]) == FailureStreak()
    assert streak_of([]) == FailureStreak()


def test_a_run_that_never_started_counts_as_a_failure() -> None:
    runs = [EndedRun("a", True, None, 100.0), EndedRun("b", True, None, None)]
    assert streak_of(runs).count == 2


def test_wait_is_counted_from_the_last_failure() -> None:
    streak = FailureStreak(3, last_end=1000.0)
    assert streak.delay == 20.0
    assert streak.wait(1005.0) == 15.0
    assert streak.wait(1030.0) == 0.0
    assert FailureStreak(1, last_end=1000.0).wait(1000.0) == 0.0


def test_wait_with_no_known_end_counts_from_now() -> None:
    assert FailureStreak(3, last_end=None).wait(5000.0) == 20.0
    assert FailureStreak(1, last_end=None).wait(5000.0) == 0.0


def test_streak_ends_at_the_newest_failures_start_when_dagster_recorded_no_end() -> None:
    streak = streak_of([EndedRun("a", True, 900.0, None), _failed("b", 800.0, 5.0)])
    assert (streak.count, streak.last_end) == (2, 900.0)


def test_a_stopped_run_worked_only_until_its_last_sign_of_work() -> None:
    """Stopped an hour after its start, but silent since a minute after it: a short-lived failure."""
    stalled = EndedRun("stalled", True, 1000.0, 4600.0, worked_until=1060.0)
    assert stalled.lifetime == 60.0
    assert streak_of([stalled, _failed("older", 0.0, 5.0)]).count == 2
    worked = EndedRun("worked", True, 1000.0, 4600.0, worked_until=1000.0 + HEALTHY_RUN_SECONDS)
    assert streak_of([worked, _failed("older", 0.0, 5.0)]) == FailureStreak()


def test_one_more_failure_extends_the_streak_unless_the_run_lived_long() -> None:
    streak = FailureStreak(2, 900.0, "r1", "boom")
    longer = streak.plus(_failed("r2", 950.0, 50.0), "gone")
    assert (longer.count, longer.last_end, longer.last_run_id, longer.last_error) == (3, 1000.0, "r2", "gone")
    assert streak.plus(_failed("r2", 0.0, 1000.0), "gone") == FailureStreak()


def test_first_line_skips_blank_lines_and_shortens() -> None:
    assert first_line("\n  RuntimeError: boom\n  at line 3\n") == "RuntimeError: boom"
    assert first_line("x" * 300, limit=10) == "x" * 9 + "…"
    assert first_line("") == ""
