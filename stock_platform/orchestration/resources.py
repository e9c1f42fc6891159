"""Dagster resources: typed handles on Kafka, PostgreSQL, Redis, Finnhub and Spark.

Each resource holds only configuration (set with `dg.EnvVar` in
`stock_platform.definitions`, so a secret is read at launch and shown masked in
the UI) and opens a connection only when a method asks for one. Each field is a
setting of `stock_platform.config`, whose declaration gives its description and
variable; `env()` turns a resource back into those variables, so the producer
and stream subprocesses that Dagster launches see exactly the configuration the
run was given.
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import redis
from pydantic import Field

from stock_platform.config import Settings, setting_env_name, setting_help
from stock_platform.kafka_options import KafkaSecurity
from stock_platform.storage import kafka_offsets
from stock_platform.storage.migrations import apply_migrations
from stock_platform.storage.postgres import PgConnection, connect
from stock_platform.storage.redis_client import redis_client
from stock_platform.storage.redis_keys import RedisKeys

__all__ = ["FinnhubResource", "KafkaResource", "PostgresResource", "RedisResource", "SparkResource"]

logger = logging.getLogger(__name__)


def _setting(name: str) -> Any:
    """A resource field for the setting `name`: its description, and its default unless that follows other settings."""
    info = Settings.model_fields[name]
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    if extra.get("derived") or info.is_required():
        return Field(description=setting_help(name))
    default = info.get_default(call_default_factory=True)
    plain = default.get_secret_value() if hasattr(default, "get_secret_value") else default
    if isinstance(plain, tuple):
        plain = ",".join(plain)
    return Field(default=str(plain) if isinstance(plain, Path) else plain, description=setting_help(name))


class PostgresResource(dg.ConfigurableResource):
    """The platform's PostgreSQL database (stock_prices and friends)."""

    dsn: str = _setting("postgres_dsn")

    @contextmanager
    def connect(self, autocommit: bool = False) -> Iterator[PgConnection]:
        """A connection closed on exit; without autocommit, committed on success and rolled back on error."""
        conn = connect(self.dsn, "stock-platform-dagster")
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
        return {setting_env_name("postgres_dsn"): self.dsn}


class RedisResource(dg.ConfigurableResource):
    """The Redis that holds hot quotes and the long-running processes' heartbeats."""

    url: str = _setting("redis_url")
    key_prefix: str = _setting("redis_key_prefix")

    def key_layout(self) -> RedisKeys:
        """The shared key layout for this prefix."""
        return RedisKeys(self.key_prefix)

    def client(self) -> redis.Redis:
        """A client with the platform's timeouts and retry policy (`storage.redis_client`); the caller closes it."""
        return redis_client(self.url)

    def env(self) -> dict[str, str]:
        """Environment variables that point a child process at this Redis."""
        return {setting_env_name("redis_url"): self.url, setting_env_name("redis_key_prefix"): self.key_prefix}


class KafkaResource(dg.ConfigurableResource):
    """The Kafka cluster and the quotes topic, and how to log in to it (the password set with `dg.EnvVar`)."""

    bootstrap_servers: str = _setting("kafka_bootstrap_servers")
    topic: str = _setting("kafka_topic")
    security_protocol: str = _setting("kafka_security_protocol")
    sasl_mechanism: str = _setting("kafka_sasl_mechanism")
    sasl_username: str = _setting("kafka_sasl_username")
    sasl_password: str = _setting("kafka_sasl_password")

    def security(self) -> KafkaSecurity:
        """The security settings, checked as `load_settings` checks them."""
        return KafkaSecurity(
            self.security_protocol.strip().upper() or "PLAINTEXT",
            self.sasl_mechanism.strip().upper(),
            self.sasl_username.strip(),
            self.sasl_password.strip(),
        )

    def end_offsets(self) -> dict[int, int]:
        """The next offset of every partition of the topic (what has been published so far); empty without the topic."""
        return kafka_offsets.end_offsets(self.bootstrap_servers, self.topic, self.security(), client_id="stock-platform-dagster")

    def env(self) -> dict[str, str]:
        """Environment variables that point a child process at this topic (the password only through the environment)."""
        values = {"kafka_bootstrap_servers": self.bootstrap_servers, "kafka_topic": self.topic}
        security = self.security()
        if security.protocol != "PLAINTEXT":
            values |= {"kafka_security_protocol": security.protocol, "kafka_sasl_mechanism": security.mechanism}
            values |= {"kafka_sasl_username": security.username, "kafka_sasl_password": security.password}
        return {setting_env_name(name): value for name, value in values.items()}


class FinnhubResource(dg.ConfigurableResource):
    """Where quotes come from: Finnhub with an API key, or the simulated market without one."""

    api_key: str = _setting("finnhub_api_key")
    source: str = _setting("source")
    symbols: str = _setting("symbols")

    def env(self) -> dict[str, str]:
        """Environment variables for the producer; the key is passed only through the environment, never argv."""
        env = {setting_env_name("source"): self.source, setting_env_name("symbols"): self.symbols}
        if self.api_key:
            env[setting_env_name("finnhub_api_key")] = self.api_key
        return env


class SparkResource(dg.ConfigurableResource):
    """How the Spark stream job runs: master, trigger, batch cap and where it keeps its checkpoints."""

    master: str = _setting("spark_master")
    trigger_seconds: float = _setting("spark_trigger_seconds")
    max_offsets_per_trigger: int = _setting("spark_max_offsets_per_trigger")
    data_dir: str = _setting("data_dir")

    def env(self) -> dict[str, str]:
        """Environment variables for the stream job."""
        values = {"spark_master": self.master, "spark_trigger_seconds": self.trigger_seconds,
                  "spark_max_offsets_per_trigger": self.max_offsets_per_trigger, "data_dir": self.data_dir}  # fmt: skip
        return {setting_env_name(name): str(value) for name, value in values.items()}
