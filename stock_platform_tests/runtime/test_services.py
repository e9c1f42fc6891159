"""The local services start, answer, report their state and stop only what they started."""

from __future__ import annotations

import dataclasses
import socket
import uuid

import pytest
import redis
from kafka import KafkaAdminClient

from stock_platform.config import Settings
from stock_platform.runtime.errors import ServiceError
from stock_platform.runtime.kafka_broker import delete_topic, ensure_topic
from stock_platform.runtime.processes import wait_until
from stock_platform.runtime.redis_server import RedisServer
from stock_platform.runtime.services import services_env, services_status, services_up

pytestmark = pytest.mark.integration


def test_up_twice_is_harmless_and_all_are_healthy(services: Settings) -> None:
    services_up(services)
    assert services_status(services) == {"postgres": "healthy", "redis": "healthy", "kafka": "healthy"}


def test_quote_topic_has_three_partitions(services: Settings) -> None:
    admin = KafkaAdminClient(bootstrap_servers=services.kafka_bootstrap_servers)
    try:
        described = admin.describe_topics([services.kafka_topic])
    finally:
        admin.close()
    assert len(described[0]["partitions"]) == 3


def test_scratch_topics_are_created_and_deleted_idempotently(services: Settings) -> None:
    topic = f"scratch-{uuid.uuid4().hex[:8]}"
    ensure_topic(services.kafka_bootstrap_servers, topic, 3)
    ensure_topic(services.kafka_bootstrap_servers, topic, 3)
    admin = KafkaAdminClient(bootstrap_servers=services.kafka_bootstrap_servers)
    try:
        assert topic in admin.list_topics()
        assert delete_topic(services.kafka_bootstrap_servers, topic)
        assert wait_until(lambda: topic not in admin.list_topics(), 30), "topic still listed after delete_topic"
    finally:
        admin.close()
    assert delete_topic(services.kafka_bootstrap_servers, topic), "deleting a missing topic is not an error"
    assert not delete_topic("127.0.0.1:1", topic, timeout_s=2), "an unreachable broker is reported, not raised"


def test_env_lines_point_at_the_services(services: Settings) -> None:
    env = services_env(services)
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "POSTGRES_DSN", "REDIS_URL", "STOCK_DATA_DIR"):
        assert env[name]
    assert "FINNHUB_API_KEY" not in env


def test_taken_port_is_reported_with_the_setting_to_change(services: Settings, tmp_path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        other = dataclasses.replace(services, data_dir=tmp_path, redis_port=port)
        with pytest.raises(ServiceError, match=f"redis: port {port} is taken.*REDIS_PORT"):
            RedisServer(other).start()


def test_stop_touches_only_what_we_started(services: Settings, tmp_path) -> None:
    other = dataclasses.replace(services, data_dir=tmp_path, redis_port=services.redis_port)
    # Another data dir never started a Redis: stopping it must leave ours running.
    assert RedisServer(other).stop() is False
    assert RedisServer(services).healthy()


def test_private_redis_starts_stops_and_keeps_its_data(services: Settings, tmp_path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = RedisServer(dataclasses.replace(services, data_dir=tmp_path, redis_port=port))
    server.start()
    try:
        assert server.running() and server.healthy()
        redis.Redis(port=port).set("survives", "yes")
    finally:
        assert server.stop() is True
    assert not server.running()
    server.start()
    try:
        assert redis.Redis(port=port).get("survives") == b"yes"
    finally:
        server.stop()
