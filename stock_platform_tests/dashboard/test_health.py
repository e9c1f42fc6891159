"""The health page's judgement of failed runs, the supervisors' decisions and dead letters (pure: no services)."""

from __future__ import annotations

from stock_platform.dashboard.health import Level, dead_letter_level
from stock_platform.dashboard.run_health import SupervisorDecision, failure_state


def _decision(action: str, failures: int, wait_s: float = 0.0, age_s: float = 4.0) -> SupervisorDecision:
    return SupervisorDecision(action, failures, wait_s, age_s, f"{action}: the supervisor's reason", "RuntimeError: boom")


def test_no_failure_in_the_last_hour_is_green() -> None:
    assert failure_state([]).level is Level.GREEN
    old = failure_state([(4000.0, "boom")])
    assert old.level is Level.GREEN and old.word == "no failed run in the last hour" and old.last_hour == 0
    assert old.supervisor == "", "no decision stored: nothing said about the supervisor"


def test_one_recent_failure_is_amber_with_its_first_line() -> None:
    state = failure_state([(30.0, "\nRuntimeError: boom\nTraceback ...")], _decision("keep", 1))
    assert (state.level, state.in_a_row, state.last_hour, state.wait_s) == (Level.AMBER, 1, 1, 0.0)
    assert state.reason == "RuntimeError: boom" and state.word == "failed recently"
    assert state.supervisor == "supervisor, 4 s ago: keep: the supervisor's reason"


def test_backing_off_is_the_supervisors_own_decision_and_wait() -> None:
    failures = [(15.0, "exit 1"), (75.0, "exit 1"), (135.0, "exit 1"), (195.0, "exit 1")]
    state = failure_state(failures, _decision("backoff", 4, wait_s=25.0))
    assert (state.level, state.in_a_row, state.word, state.wait_s) == (Level.RED, 4, "backing off", 25.0)
    # Its wait is over and it launches again: still failing until a run works.
    again = failure_state(failures, _decision("launch", 4))
    assert (again.level, again.word, again.wait_s) == (Level.RED, "failing", 0.0)
    # A backoff whose launch is due but not yet made is failing, not backing off.
    due = failure_state(failures, _decision("backoff", 4, wait_s=-3.0))
    assert (due.word, due.wait_s) == ("failing", 0.0)


def test_failures_that_look_like_a_loop_are_not_backing_off_unless_the_supervisor_says_so() -> None:
    """The rows hold failures only: a success or a long run between them is invisible here, but not to the supervisor."""
    failures = [(15.0, "exit 1"), (75.0, "exit 1"), (135.0, "exit 1")]
    launching = failure_state(failures, _decision("launch", 1))
    assert (launching.level, launching.word, launching.wait_s, launching.in_a_row) == (Level.AMBER, "failed recently", 0.0, 1)
    assert failure_state(failures).level is Level.AMBER, "no decision: the rows alone never say backing off"
    # A streak behind a run the supervisor is keeping: amber, with the count it weighed.
    kept = failure_state(failures, _decision("keep", 3))
    assert (kept.level, kept.in_a_row) == (Level.AMBER, 3)


def test_an_old_decision_is_not_the_supervisors_current_view() -> None:
    state = failure_state([(30.0, "exit 1")], _decision("backoff", 5, wait_s=100.0, age_s=600.0))
    assert (state.level, state.word, state.in_a_row, state.wait_s) == (Level.AMBER, "failed recently", 0, 0.0)
    assert state.supervisor.startswith("supervisor silent for 600 s (is the Dagster daemon running with its sensors on?)")


def test_the_supervisors_last_error_stands_in_when_no_failure_row_was_written() -> None:
    state = failure_state([], _decision("launch", 2))
    assert (state.level, state.reason, state.age_s) == (Level.RED, "RuntimeError: boom", None)


def test_dead_letters_red_for_database_refusals_or_a_high_rate() -> None:
    assert dead_letter_level({}, 100) is Level.GREEN
    assert dead_letter_level({"contract": (0, 50)}, 100) is Level.GREEN
    assert dead_letter_level({"contract": (3, 50), "conflict": (2, 2)}, 100) is Level.AMBER
    assert dead_letter_level({"database": (1, 1)}, 100) is Level.RED
    assert dead_letter_level({"database": (0, 9), "contract": (101, 101)}, 100) is Level.RED
