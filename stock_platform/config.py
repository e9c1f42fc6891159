"""Every setting of the platform, read from the environment in one place.

Each field names its environment variable; every one has a default that works
on one laptop, so `make up` needs no configuration at all. The secrets (the
Finnhub key, the Kafka and dashboard passwords) are held in fields excluded from
`repr` so they never reach a log line. The local PostgreSQL's passwords are in
no setting at all: libpq reads them from the password file `services up` writes,
which the platform names in each child's PGPASSFILE (`runtime.apps`, `runtime.app_env`).
Reading the settings changes nothing, not even this process's environment.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path

from stock_platform.config_checks import check_cluster

__all__ = ["Settings", "load_settings"]

DEFAULT_SYMBOLS = ("AAPL", "MSFT", "GOOGL", "AMZN", "NVDA", "META", "TSLA", "JPM")


def _env_str(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as e:
        raise ValueError(f"setting {name} must be a whole number, got {raw!r}") from e


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError as e:
        raise ValueError(f"setting {name} must be a number, got {raw!r}") from e


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"setting {name} must be true or false, got {raw!r}")


def _env_symbols(name: str) -> tuple[str, ...]:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return DEFAULT_SYMBOLS
    symbols = tuple(s.strip().upper() for s in raw.split(",") if s.strip())
    if not symbols:
        raise ValueError(f"setting {name} must list at least one symbol, got {raw!r}")
    return symbols


@dataclass(frozen=True)
class Settings:
    """The platform's settings; build with `load_settings()` (reads the environment)."""

    # Market data
    finnhub_api_key: str = field(default="", repr=False)  # FINNHUB_API_KEY
    finnhub_rest_url: str = "https://finnhub.io/api/v1"  # FINNHUB_REST_URL
    finnhub_ws_url: str = "wss://ws.finnhub.io"  # FINNHUB_WS_URL
    finnhub_feeds: str = "rest,ws"  # FINNHUB_FEEDS: rest, ws or both
    finnhub_calls_per_minute: int = 60  # FINNHUB_CALLS_PER_MINUTE
    finnhub_calls_per_second: int = 30  # FINNHUB_CALLS_PER_SECOND
    symbols: tuple[str, ...] = DEFAULT_SYMBOLS  # STOCK_SYMBOLS (comma separated)
    poll_interval_seconds: float = 30.0  # STOCK_POLL_INTERVAL_SECONDS
    source: str = "auto"  # STOCK_SOURCE: auto, simulator, finnhub, replay
    simulator_quotes_per_second: float = 2.0  # SIMULATOR_QUOTES_PER_SECOND (all symbols)
    simulator_seed: int = 42  # SIMULATOR_SEED
    producer_id: str = ""  # PRODUCER_ID (default: host-pid)
    # Kafka
    kafka_bootstrap_servers: str = "127.0.0.1:9092"  # KAFKA_BOOTSTRAP_SERVERS
    kafka_topic: str = "stock-quotes"  # KAFKA_TOPIC
    kafka_partitions: int = 3  # KAFKA_PARTITIONS
    kafka_port: int = 9092  # KAFKA_PORT (the local broker)
    kafka_controller_port: int = 9093  # KAFKA_CONTROLLER_PORT (the local broker's KRaft quorum)
    kafka_brokers: int = 1  # KAFKA_BROKERS: local KRaft nodes `services up` starts (see kafka_node_ports)
    kafka_replication_factor: int = 1  # KAFKA_REPLICATION_FACTOR of the topic (default: min(3, KAFKA_BROKERS))
    kafka_min_insync_replicas: int = 1  # KAFKA_MIN_INSYNC_REPLICAS of the topic (default: 2 from 3 replicas, else 1)
    kafka_security_protocol: str = "PLAINTEXT"  # KAFKA_SECURITY_PROTOCOL: PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL
    kafka_sasl_mechanism: str = ""  # KAFKA_SASL_MECHANISM: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (SASL_* only)
    kafka_sasl_username: str = ""  # KAFKA_SASL_USERNAME
    kafka_sasl_password: str = field(default="", repr=False)  # KAFKA_SASL_PASSWORD: a secret, never shown
    # PostgreSQL
    postgres_dsn: str = "postgresql://stock@127.0.0.1:5432/stock"  # POSTGRES_DSN
    postgres_port: int = 5432  # POSTGRES_PORT (the local server)
    # Redis
    redis_url: str = "redis://127.0.0.1:6379/0"  # REDIS_URL
    redis_port: int = 6379  # REDIS_PORT (the local server)
    redis_ttl_seconds: int = 300  # REDIS_TTL_SECONDS (the seed's 5 minutes)
    redis_key_prefix: str = "stock:"  # REDIS_KEY_PREFIX (lets several platforms or tests share one Redis)
    # Spark
    spark_master: str = "local[2,4]"  # SPARK_MASTER (local[cores,task attempts]: a failed task is retried)
    spark_trigger_seconds: float = 0.5  # SPARK_TRIGGER_SECONDS (why 0.5 s: BENCHMARKS.md, end to end)
    spark_max_offsets_per_trigger: int = 200_000  # SPARK_MAX_OFFSETS_PER_TRIGGER
    spark_workers: int = 0  # SPARK_WORKERS: local standalone workers `services up` starts (0: local mode, none)
    spark_master_port: int = 7077  # SPARK_MASTER_PORT (the local standalone master)
    spark_master_ui_port: int = 8080  # SPARK_MASTER_UI_PORT (worker i's UI listens on this port + i)
    spark_worker_cores: int = 1  # SPARK_WORKER_CORES (each local worker)
    spark_worker_memory: str = "1g"  # SPARK_WORKER_MEMORY (each local worker, e.g. 1g or 512m)
    # SPARK_CHECKPOINT_LOCATION: a path or a URI (hdfs://, s3a://) given to Spark untouched; empty means
    # <data dir>/checkpoints/<topic>. A cluster needs storage that a restarted driver can reach.
    spark_checkpoint_location: str = ""
    spark_conf: str = ""  # SPARK_CONF: extra Spark settings, "key=value;key=value", applied last
    # SPARK_MIN_PARTITIONS: tasks per micro-batch at least (Kafka source `minPartitions`); 0 means twice the job's
    # cores, so a 3-partition topic keeps 2 cores evenly busy instead of running its third task alone.
    spark_min_partitions: int = 0
    # SPARK_SHIP_ENVIRONMENT: on a cluster, send executors a packed Python environment and the code (off when
    # the workers' image already has them).
    spark_ship_environment: bool = True
    # Local runtime
    data_dir: Path = Path(".stock-data")  # STOCK_DATA_DIR
    cache_dir: Path = Path.home() / ".cache" / "stock-platform"  # STOCK_CACHE_DIR
    dagster_port: int = 3000  # DAGSTER_PORT
    dagster_url: str = "http://127.0.0.1:3000"  # DAGSTER_URL (where the dashboard finds Dagster's GraphQL)
    dagster_postgres_url: str = "postgresql://stock@127.0.0.1:5432/dagster"  # DAGSTER_POSTGRES_URL (Dagster's own storage)
    dashboard_port: int = 8501  # DASHBOARD_PORT
    dashboard_refresh_seconds: float = 5.0  # DASHBOARD_REFRESH_SECONDS
    dashboard_password: str = field(default="", repr=False)  # DASHBOARD_PASSWORD: set, visitors must give it first
    # Every dashboard query is a small indexed read: longer than this, or waiting on a lock, is cut off.
    dashboard_statement_timeout_ms: int = 5000  # DASHBOARD_STATEMENT_TIMEOUT_MS
    dashboard_lock_timeout_ms: int = 2000  # DASHBOARD_LOCK_TIMEOUT_MS
    # Orchestration (Dagster)
    retention_days: int = 7  # STOCK_RETENTION_DAYS: raw ticks older than this are removed once their daily bars verify
    dead_letters_warn_per_hour: int = 100  # DEAD_LETTERS_WARN_PER_HOUR: the dead-letter asset check warns above this

    @property
    def use_simulator(self) -> bool:
        """True when quotes come from the simulated market (no key, or asked for)."""
        if self.source == "auto":
            return not self.finnhub_api_key
        return self.source == "simulator"

    @property
    def checkpoint_dir(self) -> Path:
        """Where the Spark job keeps its Kafka offsets between restarts."""
        return self.data_dir / "checkpoints"

    @property
    def postgres_passfile(self) -> Path:
        """The writers' libpq password file (mode 0600): only the platform role's password, which `services up` generated."""
        return self.data_dir / "secrets" / "pgpass"

    @property
    def kafka_node_ports(self) -> list[tuple[int, int]]:
        """(client, controller) port of each local KRaft node: node i (from 0) on KAFKA_PORT+2i and KAFKA_CONTROLLER_PORT+2i.

        With the defaults: 9092/9093, 9094/9095, 9096/9097, clear of every other default port.
        """
        return [(self.kafka_port + 2 * i, self.kafka_controller_port + 2 * i) for i in range(self.kafka_brokers)]

    @property
    def spark_worker_ui_ports(self) -> list[int]:
        """Each local Spark worker's UI port, SPARK_MASTER_UI_PORT + i as in Spark's own layout (8080, 8081, ...)."""
        return [self.spark_master_ui_port + i for i in range(1, self.spark_workers + 1)]

    def to_env(self) -> dict[str, str]:
        """The environment variables that recreate these settings in a child process (key included)."""
        env = {
            "STOCK_DATA_DIR": str(self.data_dir),
            "STOCK_CACHE_DIR": str(self.cache_dir),
            "STOCK_SYMBOLS": ",".join(self.symbols),
            "STOCK_SOURCE": self.source,
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap_servers,
            "KAFKA_TOPIC": self.kafka_topic,
            "KAFKA_BROKERS": str(self.kafka_brokers),
            "KAFKA_REPLICATION_FACTOR": str(self.kafka_replication_factor),
            "KAFKA_MIN_INSYNC_REPLICAS": str(self.kafka_min_insync_replicas),
            "KAFKA_SECURITY_PROTOCOL": self.kafka_security_protocol,
            "KAFKA_SASL_MECHANISM": self.kafka_sasl_mechanism,
            "KAFKA_SASL_USERNAME": self.kafka_sasl_username,
            "POSTGRES_DSN": self.postgres_dsn,
            "REDIS_URL": self.redis_url,
            "REDIS_KEY_PREFIX": self.redis_key_prefix,
            "REDIS_TTL_SECONDS": str(self.redis_ttl_seconds),
            "SPARK_MASTER": self.spark_master,
            "SPARK_TRIGGER_SECONDS": str(self.spark_trigger_seconds),
            "SPARK_MAX_OFFSETS_PER_TRIGGER": str(self.spark_max_offsets_per_trigger),
            "SPARK_WORKERS": str(self.spark_workers),
            "SPARK_MASTER_PORT": str(self.spark_master_port),
            "SPARK_MASTER_UI_PORT": str(self.spark_master_ui_port),
            "SPARK_WORKER_CORES": str(self.spark_worker_cores),
            "SPARK_WORKER_MEMORY": self.spark_worker_memory,
            "SPARK_CHECKPOINT_LOCATION": self.spark_checkpoint_location,
            "SPARK_CONF": self.spark_conf,
            "SPARK_MIN_PARTITIONS": str(self.spark_min_partitions),
            "SPARK_SHIP_ENVIRONMENT": str(self.spark_ship_environment).lower(),
        }
        if self.finnhub_api_key:
            env["FINNHUB_API_KEY"] = self.finnhub_api_key
        if self.kafka_sasl_password:
            env["KAFKA_SASL_PASSWORD"] = self.kafka_sasl_password
        return env

    def describe(self) -> dict[str, str]:
        """All settings as strings with the secrets (Finnhub key, Kafka and dashboard passwords) masked, for logs and the CLI."""
        out = {f.name: str(getattr(self, f.name)) for f in fields(self)}
        out["finnhub_api_key"] = "****" if self.finnhub_api_key else "(unset: simulated market)"
        out["kafka_sasl_password"] = "****" if self.kafka_sasl_password else "(unset)"
        out["dashboard_password"] = "****" if self.dashboard_password else "(unset: no login)"
        return out


def load_settings() -> Settings:
    """Read every setting from the environment, falling back to the defaults."""
    d = Settings()
    data_dir = Path(_env_str("STOCK_DATA_DIR", str(d.data_dir))).expanduser().resolve()
    postgres_port = _env_int("POSTGRES_PORT", d.postgres_port)
    redis_port = _env_int("REDIS_PORT", d.redis_port)
    kafka_port = _env_int("KAFKA_PORT", d.kafka_port)
    kafka_brokers = _env_int("KAFKA_BROKERS", d.kafka_brokers)
    replication = _env_int("KAFKA_REPLICATION_FACTOR", min(3, kafka_brokers))
    spark_workers = _env_int("SPARK_WORKERS", d.spark_workers)
    spark_master_port = _env_int("SPARK_MASTER_PORT", d.spark_master_port)
    source = _env_str("STOCK_SOURCE", d.source).lower()
    if source not in {"auto", "simulator", "finnhub", "replay"}:
        raise ValueError(f"setting STOCK_SOURCE must be auto, simulator, finnhub or replay, got {source!r}")
    settings = Settings(
        finnhub_api_key=os.environ.get("FINNHUB_API_KEY", "").strip(),
        finnhub_rest_url=_env_str("FINNHUB_REST_URL", d.finnhub_rest_url).rstrip("/"),
        finnhub_ws_url=_env_str("FINNHUB_WS_URL", d.finnhub_ws_url),
        finnhub_feeds=_env_str("FINNHUB_FEEDS", d.finnhub_feeds).lower(),
        finnhub_calls_per_minute=_env_int("FINNHUB_CALLS_PER_MINUTE", d.finnhub_calls_per_minute),
        finnhub_calls_per_second=_env_int("FINNHUB_CALLS_PER_SECOND", d.finnhub_calls_per_second),
        symbols=_env_symbols("STOCK_SYMBOLS"),
        poll_interval_seconds=_env_float("STOCK_POLL_INTERVAL_SECONDS", d.poll_interval_seconds),
        source=source,
        simulator_quotes_per_second=_env_float("SIMULATOR_QUOTES_PER_SECOND", d.simulator_quotes_per_second),
        simulator_seed=_env_int("SIMULATOR_SEED", d.simulator_seed),
        producer_id=_env_str("PRODUCER_ID", f"{os.uname().nodename}-{os.getpid()}"),
        kafka_bootstrap_servers=_env_str(
            "KAFKA_BOOTSTRAP_SERVERS", ",".join(f"127.0.0.1:{kafka_port + 2 * i}" for i in range(kafka_brokers))
        ),
        kafka_topic=_env_str("KAFKA_TOPIC", d.kafka_topic),
        kafka_partitions=_env_int("KAFKA_PARTITIONS", d.kafka_partitions),
        kafka_port=kafka_port,
        kafka_controller_port=_env_int("KAFKA_CONTROLLER_PORT", kafka_port + 1),
        kafka_brokers=kafka_brokers,
        kafka_replication_factor=replication,
        kafka_min_insync_replicas=_env_int("KAFKA_MIN_INSYNC_REPLICAS", 2 if replication >= 3 else 1),
        kafka_security_protocol=_env_str("KAFKA_SECURITY_PROTOCOL", d.kafka_security_protocol).upper(),
        kafka_sasl_mechanism=_env_str("KAFKA_SASL_MECHANISM", d.kafka_sasl_mechanism).upper(),
        kafka_sasl_username=_env_str("KAFKA_SASL_USERNAME", d.kafka_sasl_username),
        kafka_sasl_password=os.environ.get("KAFKA_SASL_PASSWORD", "").strip(),
        postgres_dsn=_env_str("POSTGRES_DSN", f"postgresql://stock@127.0.0.1:{postgres_port}/stock"),
        postgres_port=postgres_port,
        redis_url=_env_str("REDIS_URL", f"redis://127.0.0.1:{redis_port}/0"),
        redis_port=redis_port,
        redis_ttl_seconds=_env_int("REDIS_TTL_SECONDS", d.redis_ttl_seconds),
        redis_key_prefix=_env_str("REDIS_KEY_PREFIX", d.redis_key_prefix),
        # A local standalone cluster (SPARK_WORKERS > 0) becomes the default master; SPARK_MASTER still wins.
        spark_master=_env_str("SPARK_MASTER", f"spark://127.0.0.1:{spark_master_port}" if spark_workers else d.spark_master),
        spark_trigger_seconds=_env_float("SPARK_TRIGGER_SECONDS", d.spark_trigger_seconds),
        spark_max_offsets_per_trigger=_env_int("SPARK_MAX_OFFSETS_PER_TRIGGER", d.spark_max_offsets_per_trigger),
        spark_workers=spark_workers,
        spark_master_port=spark_master_port,
        spark_master_ui_port=_env_int("SPARK_MASTER_UI_PORT", d.spark_master_ui_port),
        spark_worker_cores=_env_int("SPARK_WORKER_CORES", d.spark_worker_cores),
        spark_worker_memory=_env_str("SPARK_WORKER_MEMORY", d.spark_worker_memory),
        spark_checkpoint_location=os.environ.get("SPARK_CHECKPOINT_LOCATION", "").strip(),
        spark_conf=os.environ.get("SPARK_CONF", "").strip(),
        spark_min_partitions=_env_int("SPARK_MIN_PARTITIONS", d.spark_min_partitions),
        spark_ship_environment=_env_bool("SPARK_SHIP_ENVIRONMENT", d.spark_ship_environment),
        data_dir=data_dir,
        cache_dir=Path(_env_str("STOCK_CACHE_DIR", str(d.cache_dir))).expanduser().resolve(),
        dagster_port=_env_int("DAGSTER_PORT", d.dagster_port),
        dagster_url=_env_str("DAGSTER_URL", f"http://127.0.0.1:{_env_int('DAGSTER_PORT', d.dagster_port)}").rstrip("/"),
        dagster_postgres_url=_env_str("DAGSTER_POSTGRES_URL", f"postgresql://stock@127.0.0.1:{postgres_port}/dagster"),
        dashboard_port=_env_int("DASHBOARD_PORT", d.dashboard_port),
        dashboard_refresh_seconds=_env_float("DASHBOARD_REFRESH_SECONDS", d.dashboard_refresh_seconds),
        dashboard_password=os.environ.get("DASHBOARD_PASSWORD", ""),
        dashboard_statement_timeout_ms=_env_int("DASHBOARD_STATEMENT_TIMEOUT_MS", d.dashboard_statement_timeout_ms),
        dashboard_lock_timeout_ms=_env_int("DASHBOARD_LOCK_TIMEOUT_MS", d.dashboard_lock_timeout_ms),
        retention_days=_env_int("STOCK_RETENTION_DAYS", d.retention_days),
        dead_letters_warn_per_hour=_env_int("DEAD_LETTERS_WARN_PER_HOUR", d.dead_letters_warn_per_hour),
    )
    check_cluster(settings)
    return settings
