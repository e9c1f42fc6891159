"""Fixtures for the ingestion tests: a fake Finnhub, settings that point at it, a private broker, and a topic reader."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from kafka import KafkaConsumer, TopicPartition

from stock_platform.config import Settings
from stock_platform.ingestion.fake_finnhub import FakeFinnhub
from stock_platform.runtime.kafka_broker import KafkaBroker
from stock_platform.runtime.processes import read_pid, wait_until
from stock_platform.storage.redis_keys import RedisKeys

API_KEY = "fk-7d1e0c2b9a-known-test-key"


@pytest.fixture
def fake() -> Iterator[FakeFinnhub]:
    """A fake Finnhub on free ports, accepting API_KEY, with the free plan's limits."""
    with FakeFinnhub(API_KEY, trade_interval=0.2, json_ping_interval=0.5) as server:
        yield server


@pytest.fixture
def finnhub_settings(platform_settings: Settings, fake: FakeFinnhub) -> Settings:
    """Isolated platform settings reading from the fake Finnhub, polling fast."""
    return platform_settings.replace(
        finnhub_api_key=API_KEY,
        finnhub_rest_url=fake.rest_url,
        finnhub_ws_url=fake.ws_url,
        symbols=("AAPL", "MSFT"),
        poll_interval_seconds=1.0,
        finnhub_calls_per_second=30,
        finnhub_calls_per_minute=600,
        source="finnhub",
        producer_id=f"test-{platform_settings.kafka_topic[-8:]}",
    )


def read_topic(settings: Settings, expected: int | None = None, idle_s: float = 3.0, timeout_s: float = 90.0) -> list[Any]:
    """Every record on the settings' topic: until `expected` are read, or nothing new came for `idle_s`."""
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False, group_id=None,
        auto_offset_reset="earliest", consumer_timeout_ms=int(idle_s * 1000),
    )  # fmt: skip
    try:
        partitions = [
            TopicPartition(settings.kafka_topic, p) for p in sorted(consumer.partitions_for_topic(settings.kafka_topic))
        ]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        records: list[Any] = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            batch = consumer.poll(timeout_ms=int(idle_s * 1000), max_records=50_000)
            if not batch:
                if expected is None or len(records) >= expected:
                    break
                continue
            for part_records in batch.values():
                records.extend(part_records)
            if expected is not None and len(records) >= expected:
                # one more short poll to notice duplicates beyond the expected count
                for extra in consumer.poll(timeout_ms=1000).values():
                    records.extend(extra)
                break
        return records
    finally:
        consumer.close()


def values(records: list[Any]) -> list[dict[str, Any]]:
    """The decoded JSON values of consumer records."""
    return [json.loads(r.value) for r in records]


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def private_kafka(services: Settings, tmp_path: Path) -> Iterator[tuple[Settings, KafkaBroker]]:
    """A one-node Kafka of the test's own (about 3 s to start), with its topic, to kill without disturbing anyone else."""
    port = free_port()
    settings = services.replace(data_dir=tmp_path, kafka_port=port, kafka_controller_port=free_port(), kafka_brokers=1,
        kafka_replication_factor=1, kafka_min_insync_replicas=1, kafka_bootstrap_servers=f"127.0.0.1:{port}",
        kafka_topic="loss-test", redis_key_prefix=f"test:{uuid.uuid4().hex[:8]}:", producer_id="loss-test",
    )  # fmt: skip
    broker = KafkaBroker(settings)
    broker.start()
    try:
        yield settings, broker
    finally:
        broker.stop()
        client = redis.Redis.from_url(settings.redis_url, socket_timeout=5)
        try:
            keys = RedisKeys(settings.redis_key_prefix)
            client.delete(keys.producer_heartbeat(settings.producer_id), keys.producers)
        finally:
            client.close()


def kill_broker(broker: KafkaBroker) -> None:
    """SIGKILL the broker: from now on its port refuses every connection."""
    pid = read_pid(broker.pid_file)
    assert pid is not None, "the private broker is not running"
    os.killpg(pid, signal.SIGKILL)
    assert wait_until(lambda: not broker.running(), 30)


def heartbeat(settings: Settings) -> dict[str, str]:
    """The producer's heartbeat hash in Redis (empty when there is none)."""
    client = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    try:
        return client.hgetall(RedisKeys(settings.redis_key_prefix).producer_heartbeat(settings.producer_id))
    finally:
        client.close()
