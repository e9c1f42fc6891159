"""Shared fixtures: the real local services, and an isolated database, topic and Redis prefix per test.

Every test session uses the project's own PostgreSQL, Redis and Kafka (started
if not running) but its own database, topics and key prefix, so sessions
running side by side, or a running `make up`, never see each other's data.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg2
import pytest
from psycopg2 import sql

from stock_platform.config import Settings, load_settings
from stock_platform_tests.databases import scratch_database


@pytest.fixture(scope="session")
def base_settings() -> Settings:
    """The settings of the environment the tests run in (Makefile exports STOCK_DATA_DIR)."""
    return load_settings()


@pytest.fixture(scope="session")
def services(base_settings: Settings) -> Iterator[Settings]:
    """Start PostgreSQL, Redis and Kafka if they are not running (idempotent), and fetch Spark's connector.

    The tests act as the operator: they make scratch databases as the superuser and read as each role,
    so for the session PGPASSFILE names the admin password file (every role), as an operator's shell
    would; the platform's own programs each get a narrower one.
    """
    from stock_platform.config_passfile import dsn_is_local
    from stock_platform.runtime.postgres import PostgresServer
    from stock_platform.runtime.services import services_up

    services_up(base_settings)
    with pytest.MonkeyPatch.context() as mp:
        if dsn_is_local(base_settings.postgres_dsn, base_settings.postgres_port):
            mp.setenv("PGPASSFILE", str(PostgresServer(base_settings).admin_passfile))
        yield base_settings


@pytest.fixture(scope="session")
def session_database(services: Settings) -> Iterator[str]:
    """A fresh database for this test session with every migration applied; dropped afterwards."""
    from stock_platform.storage.migrations import apply_migrations

    with scratch_database(services.postgres_port, "test") as dsn:
        apply_migrations(dsn)
        yield dsn


@pytest.fixture
def platform_settings(services: Settings, session_database: str) -> Iterator[Settings]:
    """Settings pointing at this session's database, a new 3-partition topic and a new Redis prefix.

    The topic and the prefix's Redis keys are removed afterwards, so test runs leave no scratch data
    in the broker and Redis that `make up` also uses.
    """
    import redis

    from stock_platform.runtime.kafka_broker import delete_topic, ensure_topic

    tag = uuid.uuid4().hex[:8]
    topic = f"test-quotes-{tag}"
    prefix = f"test:{tag}:"
    ensure_topic(services.kafka_bootstrap_servers, topic, 3)
    yield services.replace(postgres_dsn=session_database, kafka_topic=topic, redis_key_prefix=prefix)
    delete_topic(services.kafka_bootstrap_servers, topic)
    try:
        client = redis.Redis.from_url(services.redis_url, socket_timeout=5)
        try:
            keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
            if keys:
                client.delete(*keys)
        finally:
            client.close()
    except redis.RedisError:
        pass  # a test that stopped Redis; its keys expire by TTL


@pytest.fixture
def clean_tables(session_database: str) -> Iterator[str]:
    """The session database with every data table emptied before the test."""
    conn = psycopg2.connect(session_database)
    with conn, conn.cursor() as cur:
        cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'schema_migrations'")
        tables = [r[0] for r in cur.fetchall()]
        if tables:
            cur.execute(sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(sql.SQL(", ").join(map(sql.Identifier, tables))))
    conn.close()
    yield session_database


@pytest.fixture(scope="session")
def spark(services: Settings):
    """One SparkSession for the whole test session (it takes ~9 s to start)."""
    from stock_platform.streaming.session import build_spark_session

    session = build_spark_session(services, app_name="stock-platform-tests")
    yield session
    session.stop()
