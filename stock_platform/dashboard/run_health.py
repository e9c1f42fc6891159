"""Judging a supervised component's runs for the health page: its supervisor's stored decision and its failed runs.

Whether a component is backing off, and for how long, is the supervisor's own
decision (`supervisor_decisions`, written each tick by the supervisor sensor):
`run_failures` holds failures only, not the successes, cancellations and run
lifetimes the supervisor's streak weighs, so working the backoff out again
from it would show a different answer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from stock_platform.dashboard.health import Level
from stock_platform.orchestration.backoff import first_line

__all__ = ["SUPERVISOR_SILENT_S", "FailureState", "SupervisorDecision", "failure_state"]

logger = logging.getLogger(__name__)

# A supervisor decides every 10 s: a newer decision than this is its current view, an older one means it is not ticking.
SUPERVISOR_SILENT_S = 60.0


@dataclass(frozen=True)
class SupervisorDecision:
    """A supervisor's newest decision as it stored it: launch, keep or backoff, the failures in a row it weighed, and why.

    `wait_s` is what is left of a backoff's wait (0 once due) and `age_s` how long ago it decided, both by the
    database's clock, which also stamped the decision.
    """

    action: str
    failures: int
    wait_s: float
    age_s: float
    reason: str
    last_error: str = ""


@dataclass(frozen=True)
class FailureState:
    """A supervised component's failed runs: its light, failures in a row, the wait before the next launch, the last error.

    `supervisor` is a sentence on the supervisor's newest decision (empty when it never stored one).
    """

    level: Level
    in_a_row: int
    last_hour: int
    age_s: float | None
    wait_s: float
    reason: str
    supervisor: str = ""

    @property
    def word(self) -> str:
        """`backing off`, `failing`, `failed recently` or `no failed run in the last hour`."""
        if self.level is Level.GREEN:
            return "no failed run in the last hour"
        if self.level is Level.AMBER:
            return "failed recently"
        return "backing off" if self.wait_s > 0 else "failing"


def _supervisor_sentence(decision: SupervisorDecision | None) -> str:
    if decision is None:
        return ""
    if decision.age_s >= SUPERVISOR_SILENT_S:
        return (
            f"supervisor silent for {decision.age_s:,.0f} s (is the Dagster daemon running with its sensors on?);"
            f" its last decision: {first_line(decision.reason, 300)}"
        )
    return f"supervisor, {decision.age_s:,.0f} s ago: {first_line(decision.reason, 300)}"


def failure_state(failures: list[tuple[float, str]], decision: SupervisorDecision | None = None) -> FailureState:
    """Judge a component by its supervisor's newest decision and its `run_failures` rows ((age s, error), newest first).

    The failures in a row and the wait are the supervisor's (the rows hold failures only, not the
    successes and lifetimes its streak weighs). Red while a current decision holds a launch back or
    launches again after two or more failures in a row; amber for any failure in the last hour, or a
    streak behind a run that is being kept; green otherwise.
    """
    current = decision if decision is not None and decision.age_s < SUPERVISOR_SILENT_S else None
    last_hour = sum(1 for age, _ in failures if age < 3600)
    age, error = failures[0] if failures else (None, "")
    in_a_row = current.failures if current else 0
    wait = max(0.0, current.wait_s) if current and current.action == "backoff" else 0.0
    if current and current.action != "keep" and in_a_row >= 2:
        level = Level.RED
    elif last_hour or in_a_row:
        level = Level.AMBER
    else:
        level = Level.GREEN
    reason = first_line(error or (current.last_error if current else ""))
    return FailureState(level, in_a_row, last_hour, age, wait, reason, _supervisor_sentence(decision))
