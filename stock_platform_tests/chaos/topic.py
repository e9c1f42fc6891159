"""The chaos suites' view of the topic: its end offsets, every record up to them, and whether the stream has caught up."""

from __future__ import annotations

import json
from collections import defaultdict

from kafka import KafkaConsumer, TopicPartition

from stock_platform.streaming.parse import KafkaRecord
from stock_platform_tests.private_platform import PrivatePlatform

__all__ = ["caught_up", "end_offsets", "read_topic"]


def _consumer(bootstrap: str) -> KafkaConsumer:
    # 8 MiB per partition fetch: the hostile set includes a 256 KiB record.
    return KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, request_timeout_ms=30_000,
                         max_partition_fetch_bytes=8 * 1024 * 1024)  # fmt: skip


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """The next offset of every partition of `topic`."""
    consumer = _consumer(bootstrap)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        return {tp.partition: int(o) for tp, o in consumer.end_offsets(tps).items()}
    finally:
        consumer.close()


def read_topic(bootstrap: str, topic: str, until: dict[int, int]) -> list[KafkaRecord]:
    """Every record of `topic` from the first offset up to `until` (partition -> end offset), as the stream job sees them."""
    consumer = _consumer(bootstrap)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(until)]
        ends = {tp: until[tp.partition] for tp in tps}
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        out: list[KafkaRecord] = []
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            for tp, messages in consumer.poll(timeout_ms=2000, max_records=20_000).items():
                out.extend(
                    KafkaRecord(
                        value=m.value,
                        topic=tp.topic,
                        partition=tp.partition,
                        offset=m.offset,
                        timestamp_ms=m.timestamp,
                        key=m.key,
                    )
                    for m in messages
                    if m.offset < ends[tp]
                )
        return out
    finally:
        consumer.close()


def caught_up(platform: PrivatePlatform, ends: dict[int, int]) -> bool:
    """True when the stream has committed every partition up to `ends` (its `stream_batches` log says so)."""
    topic = platform.settings.kafka_topic
    done: dict[int, int] = defaultdict(int)
    for (offsets,) in platform.query("SELECT end_offsets FROM stream_batches WHERE topic = %s", (topic,)):
        for partition, offset in (offsets if isinstance(offsets, dict) else json.loads(offsets)).get(topic, {}).items():
            done[int(partition)] = max(done[int(partition)], int(offset))
    return all(done[p] >= end for p, end in ends.items() if end > 0)
