"""The health page's judgement of failed runs and dead letters (pure: no services)."""

from __future__ import annotations

from stock_platform.dashboard.health import Level, dead_letter_level, failure_state


def test_no_failure_in_the_last_hour_is_green() -> None:
    assert failure_state([]).level is Level.GREEN
    old = failure_state([(4000.0, "boom")])
    assert old.level is Level.GREEN and old.word == "no failed run in the last hour" and old.last_hour == 0


def test_one_recent_failure_is_amber_with_its_first_line() -> None:
    state = failure_state([(30.0, "\nRuntimeError: boom\nTraceback ...")])
    assert (state.level, state.in_a_row, state.last_hour, state.wait_s) == (Level.AMBER, 1, 1, 0.0)
    assert state.reason == "RuntimeError: boom" and state.word == "failed recently"


def test_a_crash_loop_is_red_and_shows_the_supervisors_wait() -> None:
    # Four failures a minute apart: the supervisor waits 40 s after the newest (10 s doubling from the second).
    state = failure_state([(15.0, "exit 1"), (75.0, "exit 1"), (135.0, "exit 1"), (195.0, "exit 1")])
    assert (state.level, state.in_a_row, state.word) == (Level.RED, 4, "backing off")
    assert state.wait_s == 25.0
    # Once the wait is over and a run is being tried again, it is still failing until a run lives long enough.
    later = failure_state([(60.0, "exit 1"), (120.0, "exit 1")])
    assert (later.level, later.word, later.wait_s) == (Level.RED, "failing", 0.0)


def test_failures_far_apart_are_not_a_streak() -> None:
    state = failure_state([(100.0, "exit 1"), (100.0 + 11 * 60 + 1, "exit 1"), (2000.0, "exit 1")])
    assert (state.level, state.in_a_row, state.last_hour) == (Level.AMBER, 1, 3)
    # A streak whose newest failure is long past (a run has lived since) is amber, not red.
    assert failure_state([(1000.0, "x"), (1060.0, "x")]).level is Level.AMBER


def test_dead_letters_red_for_database_refusals_or_a_high_rate() -> None:
    assert dead_letter_level({}, 100) is Level.GREEN
    assert dead_letter_level({"contract": (0, 50)}, 100) is Level.GREEN
    assert dead_letter_level({"contract": (3, 50), "conflict": (2, 2)}, 100) is Level.AMBER
    assert dead_letter_level({"database": (1, 1)}, 100) is Level.RED
    assert dead_letter_level({"database": (0, 9), "contract": (101, 101)}, 100) is Level.RED
