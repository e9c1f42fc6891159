"""Gaps in the platform's own producers' sequence numbers: excused when a SIGKILL cut them off, lost otherwise.

The producer numbers its records 1, 2, 3, ... (`QuoteProducer`), so a number
missing from the topic is a record that never reached Kafka. A producer killed
with SIGKILL loses, by design, what it had accepted and Kafka had not yet
acknowledged: delivery is at most once until the broker's ack, and nothing
survives the process to retry. Those are the records it accepted in the last
moments before the kill. So a gap is excused when its producer was killed and
the record just before the gap was accepted (its Kafka CreateTime, stamped when
the producer took it) at most `UNSENT_WINDOW_MS` before the kill: every record
of the gap was accepted later still. Any other gap is a lost record.

Records a killed producer accepted after the last one that reached Kafka leave
no gap: nothing after them shows they existed, so they are neither counted nor excused.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["UNSENT_WINDOW_MS", "Gap", "duplicate_seqs", "sequence_gaps"]

# With linger.ms 20 and acks=all a record waits well under a second for its ack; 10 s covers a loaded two-core
# machine. A record accepted earlier than that and never delivered was not in flight at the kill: the kill is no excuse.
UNSENT_WINDOW_MS = 10_000


@dataclass(frozen=True)
class Gap:
    """Sequence numbers `first`..`last` of `producer_id` missing from the topic, and whether the kill excuses them."""

    producer_id: str
    first: int
    last: int
    excused: bool
    # Kafka timestamp of the record just before the gap (None when the gap starts at seq 1).
    before_ms: int | None

    @property
    def count(self) -> int:
        """How many records the gap spans."""
        return self.last - self.first + 1

    def describe(self) -> str:
        """One line for the report."""
        why = "unsent when SIGKILLed (excused)" if self.excused else "missing from the topic (lost)"
        return f"{self.producer_id} seq {self.first}..{self.last} ({self.count}): {why}"


def _excused(before_ms: int | None, kill_ms: int | None) -> bool:
    return kill_ms is not None and before_ms is not None and kill_ms - UNSENT_WINDOW_MS <= before_ms <= kill_ms


def sequence_gaps(seqs: Mapping[str, Sequence[tuple[int, int | None]]], kills: Mapping[str, int]) -> list[Gap]:
    """Every gap in each producer's (seq, Kafka timestamp) list; `kills` maps a killed producer id to the kill's ms."""
    gaps: list[Gap] = []
    for producer_id, pairs in sorted(seqs.items()):
        stamp = dict(pairs)  # a copied seq has the same CreateTime in both copies
        previous = 0
        for seq in sorted(stamp):
            if seq > previous + 1:
                before = stamp.get(previous)
                gaps.append(Gap(producer_id, previous + 1, seq - 1, _excused(before, kills.get(producer_id)), before))
            previous = seq
    return gaps


def duplicate_seqs(seqs: Mapping[str, Sequence[tuple[int, int | None]]]) -> list[tuple[str, int, int, int | None]]:
    """(producer id, seq, extra copies, Kafka timestamp) of every record the topic holds more than once."""
    out = []
    for producer_id, pairs in sorted(seqs.items()):
        counts = Counter(seq for seq, _ts in pairs)
        stamp = dict(pairs)
        out += [(producer_id, seq, n - 1, stamp[seq]) for seq, n in sorted(counts.items()) if n > 1]
    return out
