"""How long a supervisor waits before relaunching a component whose runs keep failing.

A failed run is relaunched at once the first time: a single crash (a killed
process, a database restart) should cost one sensor tick, not a wait. From the
second failure in a row the supervisor waits 10 s, then 20 s, 40 s ... up to
5 minutes after the last failure, so a job that cannot start (bad
configuration, a broken dependency) does not start Spark every ten seconds on
a two-core machine. A run that lived `HEALTHY_RUN_SECONDS` or longer ends the
streak: it worked for a while, so its failure is not part of a crash loop.

No Dagster import here: the dashboard's health page uses the same schedule.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "BACKOFF_FIRST_SECONDS",
    "BACKOFF_MAX_SECONDS",
    "HEALTHY_RUN_SECONDS",
    "EndedRun",
    "FailureStreak",
    "backoff_seconds",
    "first_line",
    "streak_of",
]

logger = logging.getLogger(__name__)

BACKOFF_FIRST_SECONDS = 10.0
BACKOFF_MAX_SECONDS = 300.0
# Longer than Spark's start plus the stall threshold: a run that got this far was working, not crash-looping.
HEALTHY_RUN_SECONDS = 300.0


def backoff_seconds(failures: int) -> float:
    """The wait after `failures` consecutive failures: none after one, then 10 s doubling up to 5 minutes."""
    if failures < 2:
        return 0.0
    # min() before the power would overflow for absurd counts; the exponent is capped instead.
    return min(BACKOFF_FIRST_SECONDS * 2 ** min(failures - 2, 30), BACKOFF_MAX_SECONDS)


def first_line(text: str, limit: int = 200) -> str:
    """The first non-empty line of an error, shortened: what fits in a decision reason or a table cell."""
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    return line if len(line) <= limit else line[: limit - 1] + "…"


@dataclass(frozen=True)
class EndedRun:
    """A run of a supervised component that has ended: whether it failed, and when it started and ended (epoch s)."""

    run_id: str
    failed: bool
    started: float | None
    ended: float | None

    @property
    def lifetime(self) -> float:
        """How long it ran; 0 for a run that failed before it started."""
        if self.started is None or self.ended is None:
            return 0.0
        return max(0.0, self.ended - self.started)


@dataclass(frozen=True)
class FailureStreak:
    """The component's consecutive failures of short-lived runs, the newest's end time, run id and error."""

    count: int = 0
    last_end: float | None = None
    last_run_id: str = ""
    last_error: str = ""

    @property
    def delay(self) -> float:
        """The wait this streak asks for after its last failure."""
        return backoff_seconds(self.count)

    def wait(self, now: float) -> float:
        """Seconds still to wait before the next launch (0: launch now)."""
        if self.count < 1 or self.last_end is None:
            return 0.0
        return max(0.0, self.last_end + self.delay - now)

    def plus(self, started: float | None, ended: float, error: str) -> FailureStreak:
        """The streak once one more run fails at `ended`; a run that lived long resets it instead."""
        if started is not None and ended - started >= HEALTHY_RUN_SECONDS:
            return FailureStreak()
        return FailureStreak(self.count + 1, ended, "", error)


def streak_of(runs_newest_first: Iterable[EndedRun]) -> FailureStreak:
    """Count failed short-lived runs from the newest back to the first run that succeeded, was stopped, or lived long.

    A cancelled run counts as the end of the streak: the supervisor cancels only runs that hung or
    stalled, which it judges after minutes, so they cannot make a hot loop.
    """
    count, newest = 0, None
    for run in runs_newest_first:
        if not run.failed or run.lifetime >= HEALTHY_RUN_SECONDS:
            break
        newest = newest or run
        count += 1
    if newest is None:
        return FailureStreak()
    return FailureStreak(count, newest.ended, newest.run_id)
