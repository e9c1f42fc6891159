"""Dagster resources: typed handles on Kafka, PostgreSQL, Redis, Finnhub and Spark.

Each resource holds only configuration (set with `dg.EnvVar` in
`stock_platform.definitions`, so a secret is read at launch and shown masked in
the UI) and opens a connection only when a method asks for one. `env()` turns a
resource back into the environment variables `stock_platform.config` reads, so
the producer and stream subprocesses that Dagster launches see exactly the
configuration the run was given.
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import psycopg2
import psycopg2.extensions
from pydantic import Field

from stock_platform.kafka_options import KafkaSecurity, kafka_python_options
from stock_platform.storage.migrations import apply_migrations
from stock_platform.storage.redis_keys import RedisKeys

__all__ = ["FinnhubResource", "KafkaResource", "PostgresResource", "RedisResource", "SparkResource"]

logger = logging.getLogger(__name__)


class PostgresResource(dg.ConfigurableResource):
    """The platform's PostgreSQL database (stock_prices and friends)."""

    dsn: str = Field(description="libpq URL of the platform database (POSTGRES_DSN).")

    @contextmanager
    def connect(self, autocommit: bool = False) -> Iterator[psycopg2.extensions.connection]:
        """A connection closed on exit; without autocommit, committed on success and rolled back on error."""
        conn = psycopg2.connect(self.dsn)
        conn.autocommit = autocommit
        try:
            if autocommit:
                yield conn
            else:
                with conn:
                    yield conn
        finally:
            conn.close()

    def migrate(self) -> list[str]:
        """Apply pending migrations from `sql/`; returns the files applied now."""
        return apply_migrations(self.dsn)

    def env(self) -> dict[str, str]:
        """Environment variables that point a child process at this database."""
        return {"POSTGRES_DSN": self.dsn}


class RedisResource(dg.ConfigurableResource):
    """The Redis that holds hot quotes and the long-running processes' heartbeats."""

    url: str = Field(description="Redis URL (REDIS_URL).")
    key_prefix: str = Field(default="stock:", description="Prefix of every platform key (REDIS_KEY_PREFIX).")

    def key_layout(self) -> RedisKeys:
        """The shared key layout for this prefix."""
        return RedisKeys(self.key_prefix)

    def heartbeat(self, component: str) -> dict[str, str] | None:
        """The heartbeat hash of `producer` or `stream`, or None when it has expired (the process is gone)."""
        import redis

        client = redis.Redis.from_url(self.url, decode_responses=True, socket_timeout=5)
        try:
            data = client.hgetall(self.key_layout().heartbeat(component))
        finally:
            client.close()
        return dict(data) if data else None

    def env(self) -> dict[str, str]:
        """Environment variables that point a child process at this Redis."""
        return {"REDIS_URL": self.url, "REDIS_KEY_PREFIX": self.key_prefix}


class KafkaResource(dg.ConfigurableResource):
    """The Kafka cluster and the quotes topic, and how to log in to it (the password set with `dg.EnvVar`)."""

    bootstrap_servers: str = Field(description="host:port list (KAFKA_BOOTSTRAP_SERVERS).")
    topic: str = Field(default="stock-quotes", description="The quotes topic (KAFKA_TOPIC).")
    security_protocol: str = Field(default="PLAINTEXT", description="KAFKA_SECURITY_PROTOCOL.")
    sasl_mechanism: str = Field(default="", description="KAFKA_SASL_MECHANISM (with SASL_* protocols).")
    sasl_username: str = Field(default="", description="KAFKA_SASL_USERNAME.")
    sasl_password: str = Field(default="", description="KAFKA_SASL_PASSWORD (a secret: bind it with dg.EnvVar).")

    def security(self) -> KafkaSecurity:
        """The security settings, checked as `load_settings` checks them."""
        return KafkaSecurity(
            self.security_protocol.strip().upper() or "PLAINTEXT",
            self.sasl_mechanism.strip().upper(),
            self.sasl_username.strip(),
            self.sasl_password.strip(),
        )

    def end_offsets(self) -> dict[int, int]:
        """The next offset of every partition of the topic (what has been published so far)."""
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(
            bootstrap_servers=self.bootstrap_servers,
            enable_auto_commit=False,
            request_timeout_ms=15_000,
            **kafka_python_options(self.security()),
        )
        try:
            partitions = consumer.partitions_for_topic(self.topic) or set()
            tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
            offsets = consumer.end_offsets(tps) if tps else {}
        finally:
            consumer.close()
        return {tp.partition: int(offset) for tp, offset in offsets.items()}

    def env(self) -> dict[str, str]:
        """Environment variables that point a child process at this topic (the password only through the environment)."""
        env = {"KAFKA_BOOTSTRAP_SERVERS": self.bootstrap_servers, "KAFKA_TOPIC": self.topic}
        security = self.security()
        if security.protocol != "PLAINTEXT":
            env |= {"KAFKA_SECURITY_PROTOCOL": security.protocol, "KAFKA_SASL_MECHANISM": security.mechanism}
            env |= {"KAFKA_SASL_USERNAME": security.username, "KAFKA_SASL_PASSWORD": security.password}
        return env


class FinnhubResource(dg.ConfigurableResource):
    """Where quotes come from: Finnhub with an API key, or the simulated market without one."""

    api_key: str = Field(default="", description="Finnhub API key (FINNHUB_API_KEY); empty means the simulated market.")
    source: str = Field(default="auto", description="auto, simulator, finnhub or replay (STOCK_SOURCE).")
    symbols: str = Field(default="", description="Comma-separated symbols (STOCK_SYMBOLS); empty means the default list.")

    def env(self) -> dict[str, str]:
        """Environment variables for the producer; the key is passed only through the environment, never argv."""
        env = {"STOCK_SOURCE": self.source}
        if self.api_key:
            env["FINNHUB_API_KEY"] = self.api_key
        if self.symbols:
            env["STOCK_SYMBOLS"] = self.symbols
        return env


class SparkResource(dg.ConfigurableResource):
    """How the Spark stream job runs: master, trigger, batch cap and where it keeps its checkpoints."""

    master: str = Field(default="local[2,4]", description="Spark master (SPARK_MASTER).")
    trigger_seconds: float = Field(default=0.5, description="Micro-batch trigger interval (SPARK_TRIGGER_SECONDS).")
    max_offsets_per_trigger: int = Field(default=200_000, description="Batch size cap (SPARK_MAX_OFFSETS_PER_TRIGGER).")
    data_dir: str = Field(description="Platform data directory; checkpoints live under it (STOCK_DATA_DIR).")

    def env(self) -> dict[str, str]:
        """Environment variables for the stream job."""
        return {
            "SPARK_MASTER": self.master,
            "SPARK_TRIGGER_SECONDS": str(self.trigger_seconds),
            "SPARK_MAX_OFFSETS_PER_TRIGGER": str(self.max_offsets_per_trigger),
            "STOCK_DATA_DIR": self.data_dir,
        }
