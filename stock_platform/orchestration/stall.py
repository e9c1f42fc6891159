"""The stream's stall rule: a live stream that commits nothing while records wait in Kafka is stalled; with none waiting, idle.

Pure, like `orchestration.supervision`, which applies it; the observations
come from `orchestration.stream_progress`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["STALL_SECONDS", "StreamProgress", "quiet_since", "records_waiting", "stall_verdict"]

logger = logging.getLogger(__name__)

# No committed batch for this long while records wait means stalled. Counted from the run's start at the earliest,
# which is the startup tolerance: Spark starts and commits its first batch in well under a minute here.
STALL_SECONDS = 180.0


@dataclass(frozen=True)
class StreamProgress:
    """What the stall check measured: the last committed batch (epoch s), committed and published offsets, or why not.

    `end_offsets` is None when Kafka was not asked (the stream committed recently) or could not be.
    """

    last_commit: float | None = None
    committed: Mapping[int, int] = field(default_factory=dict)
    end_offsets: Mapping[int, int] | None = None
    error: str = ""


def quiet_since(started: float | None, last_commit: float | None) -> float | None:
    """Since when a run that started at `started` has committed nothing: its last commit or its start, whichever is later.

    None before it starts. The heartbeat hash outlives a restart, so its `last_batch_ms` may belong to the previous process.
    """
    if started is None:
        return None
    return max(started, last_commit or 0.0)


def records_waiting(committed: Mapping[int, int], end_offsets: Mapping[int, int]) -> int:
    """Records published but not committed by the stream.

    With no committed batch at all, everything published waits (a new checkpoint reads from the
    earliest offset). Otherwise only partitions the recent ledger names count: a partition missing
    from it has had no batch for a long while, and its position is unknown, not zero.
    """
    if not committed:
        return sum(max(0, end) for end in end_offsets.values())
    return sum(max(0, end - committed[p]) for p, end in end_offsets.items() if p in committed)


def stall_verdict(started: float | None, progress: StreamProgress, now: float, stall_seconds: float) -> tuple[bool, str]:
    """(stalled, note): stalled when nothing committed for `stall_seconds` while records wait; the note says what was seen.

    `started` is the run's start (None while queued): a run's quiet time counts from it at the earliest.
    """
    since = quiet_since(started, progress.last_commit)
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
