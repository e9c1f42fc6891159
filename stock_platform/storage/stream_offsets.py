"""Where the stream job stands on a topic: the next offset per partition, from its `stream_batches` ledger.

A batch records only the partitions it read from, and `topic` holds the batch's
topics comma-joined, so the position of each partition is the highest end
offset among the recent batches that name the topic. The dashboard's health
page and the Dagster topic observation both read it from here.
"""

from __future__ import annotations

from typing import Any

__all__ = ["COMMITTED_OFFSETS_SQL", "merge_committed_offsets", "parse_offsets"]

# Newest first; parameters: topic, batches (how many recent batches to merge).
COMMITTED_OFFSETS_SQL = """
SELECT end_offsets, committed_at FROM stream_batches
WHERE %(topic)s = ANY(string_to_array(topic, ','))
ORDER BY committed_at DESC LIMIT %(batches)s
"""


def parse_offsets(raw: Any, topic: str) -> dict[int, int]:
    """Partition -> next offset from a `stream_batches.end_offsets` value, tolerating the shapes seen in practice.

    Accepts Spark's `{"topic": {"0": 12}}`, a bare `{"0": 12}`, and a list of
    `{"partition": 0, "offset": 12}`; anything else yields an empty dict.
    """
    if isinstance(raw, dict) and topic in raw:
        raw = raw[topic]
    elif isinstance(raw, dict) and len(raw) == 1 and isinstance(next(iter(raw.values())), dict):
        raw = next(iter(raw.values()))
    out: dict[int, int] = {}
    try:
        if isinstance(raw, dict):
            for partition, offset in raw.items():
                out[int(partition)] = int(offset)
        elif isinstance(raw, list):
            for item in raw:
                out[int(item["partition"])] = int(item["offset"])
    except (TypeError, ValueError, KeyError):
        return {}
    return out


def merge_committed_offsets(end_offsets_values: list[Any], topic: str) -> dict[int, int]:
    """The highest committed offset per partition over several batches' `end_offsets` values."""
    merged: dict[int, int] = {}
    for raw in end_offsets_values:
        for partition, offset in parse_offsets(raw, topic).items():
            merged[partition] = max(offset, merged.get(partition, 0))
    return merged
