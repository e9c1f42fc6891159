"""Creating, growing and deleting Kafka topics, on the local brokers or any cluster the settings point at."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from kafka import KafkaAdminClient
from kafka.admin import NewPartitions, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError, UnknownTopicOrPartitionError

__all__ = ["admin_client", "delete_topic", "ensure_topic"]

logger = logging.getLogger(__name__)


def admin_client(bootstrap: str, timeout_s: float, client_options: Mapping[str, Any] | None = None) -> KafkaAdminClient:
    """An admin client whose requests, and whose wait for an unreachable broker, are bounded by `timeout_s`.

    `client_options` are kafka-python's security keywords (`stock_platform.kafka_options.kafka_python_options`).
    """
    timeout_ms = int(timeout_s * 1000)
    # kafka-python 3 waits `bootstrap_timeout_ms` (default 30 s) for an unreachable broker; 2.x has no such key.
    bounded = {"bootstrap_timeout_ms": timeout_ms} if "bootstrap_timeout_ms" in KafkaAdminClient.DEFAULT_CONFIG else {}
    return KafkaAdminClient(
        bootstrap_servers=bootstrap,
        client_id="stock-platform-admin",
        request_timeout_ms=timeout_ms,
        **bounded,
        **(client_options or {}),
    )


def ensure_topic(
    bootstrap: str,
    topic: str,
    partitions: int,
    timeout_s: float = 30.0,
    *,
    replication_factor: int = 1,
    min_insync_replicas: int = 1,
    client_options: Mapping[str, Any] | None = None,
) -> None:
    """Create `topic` if missing (idempotent), or grow it to `partitions` partitions.

    `min_insync_replicas` with `acks=all` is what makes a replica count worth having: a write is
    acknowledged only once that many replicas hold it, so losing one broker loses nothing. Kafka
    cannot change an existing topic's replication factor in place; a shortfall is logged.
    """
    admin = admin_client(bootstrap, timeout_s, client_options)
    try:
        try:
            new = NewTopic(
                topic, num_partitions=partitions, replication_factor=replication_factor,
                topic_configs={"min.insync.replicas": str(min_insync_replicas)},
            )  # fmt: skip
            admin.create_topics([new])
            logger.info(
                "created topic %s with %d partitions, replication factor %d, min.insync.replicas %d",
                topic, partitions, replication_factor, min_insync_replicas,
            )  # fmt: skip
        except TopicAlreadyExistsError:
            described = admin.describe_topics([topic])
            found = described[0]["partitions"] if described else []
            current = len(found) or partitions
            if current < partitions:
                admin.create_partitions({topic: NewPartitions(total_count=partitions)})
                logger.info("grew topic %s from %d to %d partitions", topic, current, partitions)
            # kafka-python 3 says "replica_nodes", 2.x "replicas"
            replicas = min((len(p.get("replica_nodes", p.get("replicas", []))) for p in found), default=replication_factor)
            if replicas < replication_factor:
                logger.warning(
                    "topic %s keeps replication factor %d (asked for %d): Kafka cannot raise it in place; "
                    "reassign its partitions (kafka-reassign-partitions) or recreate the topic",
                    topic, replicas, replication_factor,
                )  # fmt: skip
    finally:
        admin.close()


def delete_topic(bootstrap: str, topic: str, timeout_s: float = 30.0, *, client_options: Mapping[str, Any] | None = None) -> bool:
    """Delete `topic` if it exists; True when it is gone. Never raises: used to clean up after tests and benchmarks.

    Scratch topics left behind would pile up in the user's own broker (disk, and a slower start: every
    partition is recovered after a crash).
    """
    try:
        admin = admin_client(bootstrap, timeout_s, client_options)
    except (KafkaError, OSError, ValueError) as exc:
        logger.warning("could not delete topic %s: %s", topic, exc)
        return False
    try:
        admin.delete_topics([topic])
        logger.info("deleted topic %s", topic)
        return True
    except UnknownTopicOrPartitionError:
        return True
    except (KafkaError, OSError, ValueError) as exc:
        logger.warning("could not delete topic %s: %s", topic, exc)
        return False
    finally:
        admin.close()
