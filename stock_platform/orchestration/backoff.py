"""How long a supervisor waits before relaunching a component whose runs keep failing.

A failed run is relaunched at once the first time: a single crash (a killed
process, a database restart) should cost one sensor tick, not a wait. From the
second failure in a row the supervisor waits 10 s, then 20 s, 40 s ... up to
5 minutes after the last failure, so a job that cannot start (bad
configuration, a broken dependency) does not start Spark every ten seconds on
a two-core machine. A run that lived `HEALTHY_RUN_SECONDS` or longer ends the
streak: it worked for a while, so its failure is not part of a crash loop.

A run the supervisor stopped (hung, stalled, silent) is a failure too, and its
working life ends at its last sign of work, not when it was stopped: a stream
that hangs on its first batch is stopped minutes later, but never worked.

No Dagster import here, so the rule is tested on its own.
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
    """A run of a supervised component that has ended: whether it failed, and when it started and ended (epoch s).

    `worked_until` is set for a run its supervisor stopped: its last commit or beat (or its start when it
    never showed one), which is where its working life ended.
    """

    run_id: str
    failed: bool
    started: float | None
    ended: float | None
    worked_until: float | None = None

    @property
    def lifetime(self) -> float:
        """How long it worked; 0 for a run that failed before it started."""
        end = self.ended if self.worked_until is None else self.worked_until
        if self.started is None or end is None:
            return 0.0
        return max(0.0, end - self.started)


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
        """Seconds still to wait before the next launch (0: launch now).

        With no end time known the wait counts from `now`: a streak of failures still holds a launch back.
        """
        if self.count < 1:
            return 0.0
        last_end = now if self.last_end is None else self.last_end
        return max(0.0, last_end + self.delay - now)

    def plus(self, run: EndedRun, error: str) -> FailureStreak:
        """The streak once `run` fails too; a run that worked long resets it instead."""
        if run.lifetime >= HEALTHY_RUN_SECONDS:
            return FailureStreak()
        return FailureStreak(self.count + 1, run.ended, run.run_id, error)


def streak_of(runs_newest_first: Iterable[EndedRun]) -> FailureStreak:
    """Count failed short-lived runs from the newest back to the first run that succeeded, was cancelled, or worked long.

    The caller marks a run its supervisor stopped as failed; a run cancelled by anyone else (an
    operator) ends the streak, as a success does. The streak's end is the newest failure's end, or
    its start when Dagster recorded no end.
    """
    count, newest = 0, None
    for run in runs_newest_first:
        if not run.failed or run.lifetime >= HEALTHY_RUN_SECONDS:
            break
        newest = newest or run
        count += 1
    if newest is None:
        return FailureStreak()
    last_end = newest.ended if newest.ended is not None else newest.started
    return FailureStreak(count, last_end, newest.run_id)
