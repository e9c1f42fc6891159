"""The end offset of each partition of a topic (what has been published so far), for the stall check, assets and the lag.

One short-lived consumer without a group: it commits nothing and joins no
group, so asking never moves anyone's position. Kafka's own errors propagate;
each caller says what an unknown position means to it.
"""

from __future__ import annotations

import logging

from stock_platform.kafka_options import KafkaSecurity, kafka_python_options

__all__ = ["end_offsets"]

logger = logging.getLogger(__name__)


def end_offsets(
    bootstrap_servers: str,
    topic: str,
    security: KafkaSecurity | None = None,
    *,
    client_id: str = "stock-platform",
    request_timeout_ms: int = 15_000,
    bootstrap_timeout_ms: int | None = None,
) -> dict[int, int]:
    """Partition -> next offset of `topic`; empty when the topic does not exist.

    `bootstrap_timeout_ms` (default: the request timeout) bounds finding the cluster at all, so a
    broker that is down costs that long, not kafka-python's 30 s default.
    """
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        client_id=client_id,
        enable_auto_commit=False,
        request_timeout_ms=request_timeout_ms,
        bootstrap_timeout_ms=bootstrap_timeout_ms or request_timeout_ms,
        **kafka_python_options(security or KafkaSecurity()),
    )
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        offsets = consumer.end_offsets(tps) if tps else {}
    finally:
        consumer.close()
    return {tp.partition: int(offset) for tp, offset in offsets.items()}
