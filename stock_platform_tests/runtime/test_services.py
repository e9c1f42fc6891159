"""The local services start, answer, report their state and stop only what they started."""

from __future__ import annotations

import shutil
import socket
import uuid

import psycopg2
import pytest
import redis
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer

from stock_platform.config import Settings
from stock_platform.runtime.errors import ServiceError
from stock_platform.runtime.jars import spark_kafka_jars
from stock_platform.runtime.kafka_broker import KafkaBroker, delete_topic, ensure_topic
from stock_platform.runtime.postgres import PostgresServer
from stock_platform.runtime.postgres_auth import read_passwords
from stock_platform.runtime.processes import wait_until
from stock_platform.runtime.redis_server import RedisServer
from stock_platform.runtime.services import services_env, services_status, services_up
from stock_platform.spark_jars import cached_spark_kafka_jars, pyspark_scala_binary

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
    # The writers' password file by its path: a shell that evals these lines reaches PostgreSQL as the platform role,
    # and nothing prints a password.
    assert env["PGPASSFILE"] == str(services.postgres_passfile)
    for password in read_passwords(PostgresServer(services).admin_passfile).values():
        assert password not in str(env)


def test_taken_port_is_reported_with_the_setting_to_change(services: Settings, tmp_path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        other = services.replace(data_dir=tmp_path, redis_port=port)
        with pytest.raises(ServiceError, match=f"redis: port {port} is taken.*REDIS_PORT"):
            RedisServer(other).start()


def test_stop_touches_only_what_we_started(services: Settings, tmp_path) -> None:
    other = services.replace(data_dir=tmp_path, redis_port=services.redis_port)
    # Another data dir never started a Redis: stopping it must leave ours running.
    assert RedisServer(other).stop() is False
    assert RedisServer(services).healthy()


def test_private_redis_starts_stops_and_keeps_its_data(services: Settings, tmp_path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = RedisServer(services.replace(data_dir=tmp_path, redis_port=port))
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


def test_spark_connector_matches_the_installed_pyspark(services: Settings) -> None:
    import pyspark

    scala = pyspark_scala_binary()
    assert scala == "2.13", "Spark 4 is built for Scala 2.13"
    names = {p.name for p in spark_kafka_jars(services.cache_dir)}
    assert f"spark-sql-kafka-0-10_{scala}-{pyspark.__version__}.jar" in names
    assert any(n.startswith("kafka-clients-") for n in names)
    # The stream job reads the very folder the launcher filled.
    assert cached_spark_kafka_jars(services.cache_dir) == spark_kafka_jars(services.cache_dir)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_private_postgres_and_kafka_keep_their_data_across_stop_and_start(services: Settings, tmp_path) -> None:
    kafka_port = _free_port()
    settings = services.replace(data_dir=tmp_path, postgres_port=_free_port(), kafka_port=kafka_port,
        kafka_controller_port=_free_port(), kafka_bootstrap_servers=f"127.0.0.1:{kafka_port}",
    )  # fmt: skip
    postgres, kafka = PostgresServer(settings), KafkaBroker(settings)
    # Its own admin password file: the session's PGPASSFILE holds the shared server's passwords.
    dsn = f"host=127.0.0.1 port={settings.postgres_port} user=postgres dbname=postgres passfile={postgres.admin_passfile}"

    def sql_value(query: str) -> object:
        conn = psycopg2.connect(dsn)
        try:
            with conn, conn.cursor() as cur:
                cur.execute(query)
                return cur.fetchone()[0] if cur.description else None
        finally:
            conn.close()

    def topic_records() -> list[bytes]:
        consumer = KafkaConsumer(
            settings.kafka_topic, bootstrap_servers=settings.kafka_bootstrap_servers,
            auto_offset_reset="earliest", consumer_timeout_ms=5000,
        )  # fmt: skip
        try:
            return [record.value for record in consumer]
        finally:
            consumer.close()

    try:
        postgres.start()
        kafka.start()
        sql_value("CREATE TABLE survives (x int); INSERT INTO survives VALUES (42)")
        producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all")
        producer.send(settings.kafka_topic, b"kept").get(timeout=30)
        producer.close()
        assert postgres.stop() is True and kafka.stop() is True
        assert not postgres.running() and not kafka.running()

        postgres.start()
        kafka.start()
        assert sql_value("SELECT x FROM survives") == 42
        assert topic_records() == [b"kept"]
    finally:
        kafka.stop()
        postgres.stop()
        if not postgres.root.is_relative_to(tmp_path):  # as root, the cluster lives in /var/lib/stock-platform
            shutil.rmtree(postgres.root.parent, ignore_errors=True)
