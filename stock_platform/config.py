"""Every setting of the platform, declared once: name, variable, type, default, meaning, secret or not.

`Settings` is a pydantic-settings model, the ecosystem's standard for this: it
reads the environment and a `.env` file in the working directory (parsed, never
sourced), turns values into the declared types, and keeps the secrets as
`SecretStr`, masked in every repr and log line. Everything else is derived from
these declarations: the child processes' environment (`to_env`), the Dagster
resources (`stock_platform.definitions`), `.env.example` and the README's
settings table (`stock_platform.settings_docs`), and `stock-platform config`.

Some defaults follow other settings (the local addresses follow the ports, the
replica counts the broker count); `derived` in a field's metadata says how, and
an explicit value always wins. The local PostgreSQL's passwords are in no
setting at all: libpq reads them from the password files `services up` writes,
which the platform names in each child's PGPASSFILE. Loading the settings
changes nothing, not even this process's environment.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from stock_platform.config_checks import check_cluster

__all__ = [
    "APP_MARKER",
    "DEFAULT_SYMBOLS",
    "ENV_FILE",
    "Settings",
    "load_settings",
    "setting_env_name",
    "setting_help",
    "setting_meta",
    "setting_text",
]

DEFAULT_SYMBOLS = ("AAPL", "MSFT", "GOOGL", "AMZN", "NVDA", "META", "TSLA", "JPM")
# Read from the working directory, as docker compose does, so one file configures both deployments.
ENV_FILE = ".env"
# Every process `platform up` starts carries this variable (value: the data dir), so `down` finds them all. Such a
# child takes its settings from the environment its launcher wrote, never from a `.env` of its working directory:
# the dashboard's allowlist would mean nothing if it could read the Finnhub key from the file.
APP_MARKER = "STOCK_PLATFORM_APP"

Source = Literal["auto", "simulator", "finnhub", "replay"]


def setting(
    default: Any = None,
    description: str = "",
    *,
    group: str,
    env: str | None = None,
    derived: str | None = None,
    inherited: bool = True,
    compose_sets: bool = False,
    default_factory: Any = None,
    **constraints: Any,
) -> Any:
    """One setting's declaration: its default, meaning and documentation metadata.

    `env` names the variable when it is not the field's name in capitals; `derived` says how the default
    follows other settings; `inherited=False` keeps it out of the children's environment (`to_env`);
    `compose_sets` marks a setting docker-compose.yml fixes for the containers (documented, commented out).
    """
    extra = {"group": group, "derived": derived, "inherited": inherited, "compose_sets": compose_sets}
    kwargs: dict[str, Any] = {"description": description, "json_schema_extra": extra, **constraints}
    if env is not None:
        kwargs["validation_alias"] = env
    if default_factory is not None:
        return Field(default_factory=default_factory, **kwargs)
    return Field(default, **kwargs)


MARKET, PRODUCER, KAFKA, POSTGRES, REDIS, SPARK = "Market data", "Producer", "Kafka", "PostgreSQL", "Redis", "Spark"
RUNTIME, UPKEEP = "Runtime, Dagster, dashboard", "Data upkeep (Dagster)"


def _default_producer_id() -> str:
    return f"{os.uname().nodename}-{os.getpid()}"


class Settings(BaseSettings):
    """The platform's settings. `load_settings()` reads them (and checks combinations); `Settings.defaults()` has none set."""

    model_config = SettingsConfigDict(
        env_file=ENV_FILE,
        env_ignore_empty=True,  # an empty variable means the default, as in .env.example
        case_sensitive=True,
        extra="ignore",  # .env holds docker compose's own variables too
        frozen=True,
        str_strip_whitespace=True,
        alias_generator=str.upper,
        validate_by_name=True,
        validate_by_alias=True,
        validate_default=True,
    )

    # ---- Market data ----
    finnhub_api_key: SecretStr = setting(
        "", "Finnhub API key (https://finnhub.io); empty: the simulated market, no account needed.", group=MARKET
    )
    finnhub_rest_url: str = setting("https://finnhub.io/api/v1", "Finnhub REST endpoint.", group=MARKET)
    finnhub_ws_url: str = setting("wss://ws.finnhub.io", "Finnhub trade WebSocket endpoint.", group=MARKET)
    finnhub_feeds: str = setting("rest,ws", "Which Finnhub feeds to use: rest, ws or rest,ws.", group=MARKET)
    finnhub_calls_per_minute: int = setting(60, "Finnhub REST budget per minute (the free plan allows 60).", group=MARKET, ge=1)
    finnhub_calls_per_second: int = setting(30, "Finnhub REST budget per second (the free plan allows 30).", group=MARKET, ge=1)
    symbols: Annotated[tuple[str, ...], NoDecode] = setting(
        DEFAULT_SYMBOLS, "Symbols to follow, comma separated.", group=MARKET, env="STOCK_SYMBOLS"
    )
    poll_interval_seconds: float = setting(
        30.0, "Seconds between two REST polls of one symbol (the seed's 30 s).", group=MARKET,
        env="STOCK_POLL_INTERVAL_SECONDS", gt=0,
    )  # fmt: skip
    source: Source = setting(
        "auto", "Quote source: auto (Finnhub if a key is set, else simulated), simulator, finnhub or replay.",
        group=MARKET, env="STOCK_SOURCE",
    )  # fmt: skip
    simulator_quotes_per_second: float = setting(2.0, "Simulated quotes per second, over all symbols.", group=MARKET, gt=0)
    simulator_seed: int = setting(42, "Seed of the simulated market, so a run can be repeated.", group=MARKET)

    # ---- Producer ----
    producer_id: str = setting(
        description="Name this producer stamps on its messages and heartbeat; empty: <hostname>-<pid>.",
        group=PRODUCER, derived="<hostname>-<pid> of each producer process", inherited=False,
        default_factory=_default_producer_id,
    )  # fmt: skip
    producer_inbox_max: int = setting(
        10_000, "Quotes from the Finnhub feeds waiting for the producer; when full, the newest is dropped (counted).",
        group=PRODUCER, gt=0,
    )  # fmt: skip
    producer_queue_max_messages: int = setting(
        1_000_000, "Records the Kafka client may hold unacknowledged.", group=PRODUCER, gt=0
    )
    producer_queue_max_kbytes: int = setting(
        1_048_576, "Kilobytes the Kafka client may hold unacknowledged (librdkafka's own default).", group=PRODUCER, gt=0
    )
    producer_queue_full_timeout_seconds: float = setting(
        10.0, "How long a record waits for room in that queue before it is dropped (counted).", group=PRODUCER, gt=0
    )
    producer_flush_timeout_seconds: float = setting(
        10.0, "At a stop, how long Kafka gets to acknowledge what is queued; the rest is reported as unsent "
        "(well under the 45 s Dagster allows between SIGTERM and SIGKILL).", group=PRODUCER, gt=0,
    )  # fmt: skip

    # ---- Kafka ----
    kafka_bootstrap_servers: str = setting(
        "127.0.0.1:9092", "Bootstrap servers (the containers use kafka:29092).", group=KAFKA,
        derived="127.0.0.1:KAFKA_PORT for each local node", compose_sets=True,
    )  # fmt: skip
    kafka_topic: str = setting("stock-quotes", "Topic the quotes travel on.", group=KAFKA)
    kafka_partitions: int = setting(3, "Partitions of that topic.", group=KAFKA, ge=1)
    kafka_port: int = setting(9092, "Port of the local broker (and the host port compose publishes on 127.0.0.1).", group=KAFKA)
    kafka_controller_port: int = setting(
        9093, "KRaft controller port of the local broker.", group=KAFKA, derived="KAFKA_PORT + 1", compose_sets=True
    )
    kafka_brokers: int = setting(
        1, "KRaft nodes the local runtime starts as one cluster; node i listens on KAFKA_PORT+2i and "
        "KAFKA_CONTROLLER_PORT+2i (3 gives 9092/9093, 9094/9095, 9096/9097).", group=KAFKA, ge=1,
    )  # fmt: skip
    kafka_replication_factor: int = setting(
        1, "Replication factor of the quote topic.", group=KAFKA, derived="min(3, KAFKA_BROKERS)", ge=1
    )
    kafka_min_insync_replicas: int = setting(
        1, "Replicas that must hold a record before an acks=all write succeeds.", group=KAFKA,
        derived="2 from 3 replicas up, else 1", ge=1,
    )  # fmt: skip
    kafka_security_protocol: str = setting(
        "PLAINTEXT", "How every client reaches the brokers: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.", group=KAFKA
    )
    kafka_sasl_mechanism: str = setting("", "With SASL_*: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.", group=KAFKA)
    kafka_sasl_username: str = setting("", "With SASL_*: the user name.", group=KAFKA)
    kafka_sasl_password: SecretStr = setting("", "With SASL_*: the password (never printed or logged).", group=KAFKA)

    # ---- PostgreSQL ----
    postgres_dsn: str = setting(
        "postgresql://stock@127.0.0.1:5432/stock", "libpq URL of the platform database; the local runtime's "
        "passwords are in password files `services up` writes, never here.", group=POSTGRES,
        derived="postgresql://stock@127.0.0.1:POSTGRES_PORT/stock", compose_sets=True,
    )  # fmt: skip
    postgres_port: int = setting(5432, "Port of the local PostgreSQL (and the host port compose publishes).", group=POSTGRES)

    # ---- Redis ----
    redis_url: str = setting(
        "redis://127.0.0.1:6379/0", "Redis URL (the containers get one with the password).", group=REDIS,
        derived="redis://127.0.0.1:REDIS_PORT/0", compose_sets=True,
    )  # fmt: skip
    redis_port: int = setting(6379, "Port of the local Redis (and the host port compose publishes).", group=REDIS)
    redis_ttl_seconds: int = setting(300, "Seconds a latest quote lives in Redis (the seed's 5 minutes).", group=REDIS, ge=1)
    redis_key_prefix: str = setting("stock:", "Prefix of every Redis key, so several platforms can share one Redis.", group=REDIS)

    # ---- Spark ----
    spark_master: str = setting(
        "local[2,4]", "Master of the stream job: local[N,F] is one JVM with N cores and a failed task tried up to "
        "F times; spark://host:7077 a standalone cluster.", group=SPARK,
        derived="spark://127.0.0.1:SPARK_MASTER_PORT when SPARK_WORKERS > 0", compose_sets=True,
    )  # fmt: skip
    spark_trigger_seconds: float = setting(
        0.5, "Seconds between two micro-batches: 0.5 s keeps p95 latency near 1 s at 2-3 % of a core when idle "
        "(measured in BENCHMARKS.md).", group=SPARK, ge=0,
    )  # fmt: skip
    spark_max_offsets_per_trigger: int = setting(200_000, "Most Kafka records one micro-batch reads.", group=SPARK, ge=1)
    spark_min_partitions: int = setting(
        0, "Tasks per micro-batch at least (Kafka source minPartitions); 0: twice the job's cores, so a "
        "3-partition topic keeps 2 cores evenly busy.", group=SPARK, ge=0,
    )  # fmt: skip
    spark_checkpoint_location: str = setting(
        "", "Where the job keeps its Kafka offsets: a path, or a URI (hdfs://, s3a://) given to Spark untouched; "
        "empty: STOCK_DATA_DIR/checkpoints/KAFKA_TOPIC. A cluster needs storage a restarted driver can reach.",
        group=SPARK,
    )  # fmt: skip
    spark_conf: str = setting("", 'Extra Spark settings, "key=value;key=value", applied after ours.', group=SPARK)
    spark_ship_environment: bool = setting(
        True, "On a cluster, send executors a packed Python environment and the code (off when the workers' "
        "image already has them).", group=SPARK,
    )  # fmt: skip
    spark_driver_memory: str = setting(
        "2g", "Heap of the Spark driver (the stream job; docker-compose.yml gives containers 1g).", group=SPARK,
        compose_sets=True,
    )  # fmt: skip
    spark_workers: int = setting(
        0, "Spark standalone workers the local runtime starts beside a master (0: none, local mode).", group=SPARK, ge=0
    )
    spark_master_port: int = setting(7077, "Port of the local standalone master.", group=SPARK)
    spark_master_ui_port: int = setting(8080, "Port of its web UI (worker i's UI: this + i).", group=SPARK)
    spark_worker_cores: int = setting(1, "Cores of each local worker.", group=SPARK, ge=1)
    spark_worker_memory: str = setting("1g", "Memory of each local worker, e.g. 1g or 512m.", group=SPARK)

    # ---- Runtime, Dagster, dashboard ----
    data_dir: Path = setting(
        Path(".stock-data"), "Folder for checkpoints, logs and the local services' data (containers: /data).",
        group=RUNTIME, env="STOCK_DATA_DIR", compose_sets=True,
    )  # fmt: skip
    cache_dir: Path = setting(
        Path("~/.cache/stock-platform"), "Folder for downloaded jars and packages (images: /opt/stock-platform/cache).",
        group=RUNTIME, env="STOCK_CACHE_DIR", compose_sets=True,
    )  # fmt: skip
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = setting(
        "INFO", "Logging level of every stock-platform process.", group=RUNTIME
    )
    dagster_port: int = setting(3000, "Port of the Dagster UI.", group=RUNTIME)
    dagster_url: str = setting(
        "http://127.0.0.1:3000", "Where the dashboard and `platform status` reach Dagster's GraphQL.", group=RUNTIME,
        derived="http://127.0.0.1:DAGSTER_PORT", compose_sets=True,
    )  # fmt: skip
    dagster_postgres_url: str = setting(
        "postgresql://stock@127.0.0.1:5432/dagster", "Dagster's own storage.", group=RUNTIME,
        derived="postgresql://stock@127.0.0.1:POSTGRES_PORT/dagster", compose_sets=True,
    )  # fmt: skip
    dashboard_port: int = setting(8501, "Port of the dashboard.", group=RUNTIME)
    dashboard_refresh_seconds: float = setting(5.0, "Seconds between two dashboard refreshes.", group=RUNTIME, gt=0)
    dashboard_password: SecretStr = setting(
        "", "Set, every visitor must give it before any page shows; empty, the dashboard is open to all.",
        group=RUNTIME, inherited=False,
    )  # fmt: skip
    # 0 would switch the limits off in PostgreSQL, not make them instant.
    dashboard_statement_timeout_ms: int = setting(
        5000, "Longest a dashboard query may run before PostgreSQL cancels it (ms).", group=RUNTIME, ge=1
    )
    dashboard_lock_timeout_ms: int = setting(2000, "Longest a dashboard query may wait for a lock (ms).", group=RUNTIME, ge=1)

    # ---- Data upkeep (Dagster) ----
    retention_days: int = setting(
        7, "Days raw ticks are kept; older ones are removed once their daily bars verify.", group=UPKEEP,
        env="STOCK_RETENTION_DAYS", ge=1,
    )  # fmt: skip
    dead_letters_warn_per_hour: int = setting(
        100, "Dead letters per hour above which the Dagster asset check warns.", group=UPKEEP, ge=0
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, then the environment, then `.env`; no secrets directory (compose passes variables)."""
        return init_settings, env_settings, dotenv_settings

    @classmethod
    def defaults(cls) -> Settings:
        """Every setting at its default, whatever the environment holds (for tests and documentation)."""
        return cls.model_validate({})

    def replace(self, **changes: Any) -> Self:
        """A copy with `changes` applied and checked; other values stay as they are (derived ones too)."""
        values = {name: getattr(self, name) for name in type(self).model_fields}
        return self.model_validate(values | changes)

    @model_validator(mode="before")
    @classmethod
    def _derive_defaults(cls, data: Any) -> Any:
        """Fill the defaults that follow other settings; an explicit value always wins."""
        if not isinstance(data, dict):
            return data
        # Blank means unset, as an empty variable does (pydantic-settings drops only the empty ones).
        given = {_field_name(k): v for k, v in data.items() if not (isinstance(v, str) and not v.strip())}

        def number(name: str) -> int:
            try:
                return int(given.get(name, cls.model_fields[name].default))
            except (TypeError, ValueError):  # the field's own validation names the bad value
                return int(cls.model_fields[name].default)

        kafka_port, brokers = number("kafka_port"), number("kafka_brokers")
        postgres_port, workers = number("postgres_port"), number("spark_workers")
        derived = {
            "kafka_bootstrap_servers": ",".join(f"127.0.0.1:{kafka_port + 2 * i}" for i in range(max(brokers, 1))),
            "kafka_controller_port": kafka_port + 1,
            "kafka_replication_factor": min(3, max(brokers, 1)),
            "postgres_dsn": f"postgresql://stock@127.0.0.1:{postgres_port}/stock",
            "dagster_postgres_url": f"postgresql://stock@127.0.0.1:{postgres_port}/dagster",
            "redis_url": f"redis://127.0.0.1:{number('redis_port')}/0",
            "dagster_url": f"http://127.0.0.1:{number('dagster_port')}",
        }
        if workers > 0:
            derived["spark_master"] = f"spark://127.0.0.1:{number('spark_master_port')}"
        given = derived | given
        given.setdefault("kafka_min_insync_replicas", 2 if number("kafka_replication_factor") >= 3 else 1)
        return given

    @field_validator("symbols", mode="before")
    @classmethod
    def _split_symbols(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return tuple(value)
        symbols = tuple(s.strip().upper() for s in value.split(",") if s.strip())
        if not symbols:
            raise ValueError("must list at least one symbol")
        return symbols

    @field_validator("source", "finnhub_feeds", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("kafka_security_protocol", "kafka_sasl_mechanism", "log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("finnhub_rest_url", "dagster_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("data_dir", "cache_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @property
    def use_simulator(self) -> bool:
        """True when quotes come from the simulated market (no key, or asked for)."""
        if self.source == "auto":
            return not self.finnhub_api_key.get_secret_value()
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

    def env_value(self, name: str) -> str:
        """One setting as its variable's text (secrets in clear: only for a child's environment)."""
        return setting_text(getattr(self, name))

    def to_env(self, names: Any = None) -> dict[str, str]:
        """The variables that recreate these settings in a child process: every inherited one, or `names`.

        An unset secret is left out, so a child does not see an empty password as one that was set.
        """
        chosen = [n for n, f in type(self).model_fields.items() if setting_meta(f)["inherited"]] if names is None else names
        env = {setting_env_name(n): self.env_value(n) for n in chosen}
        return {k: v for k, v in env.items() if v or not _is_secret(type(self).model_fields[_field_name(k)])}

    def describe(self) -> dict[str, str]:
        """All settings as text, secrets masked (set or unset shown), for logs and `stock-platform config`.

        A password inside a URL (a deployment's POSTGRES_DSN or REDIS_URL) is masked too.
        """
        out = {}
        for name, info in type(self).model_fields.items():
            if _is_secret(info):
                out[name] = "****" if self.env_value(name) else "(unset)"
            else:
                out[name] = _URL_PASSWORD.sub(r"\1****@", self.env_value(name))
        return out


_URL_PASSWORD = re.compile(r"(://[^/@:]*:)[^/@]*@")


def setting_text(value: Any) -> str:
    """A setting's value as its variable's text: secrets in clear, booleans lower case, lists comma separated."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        return ",".join(value)
    return "" if value is None else str(value)


def setting_meta(info: FieldInfo) -> dict[str, Any]:
    """The documentation metadata `setting()` stored on a field (group, derived, inherited, compose_sets)."""
    extra = info.json_schema_extra
    return extra if isinstance(extra, dict) else {}


def _is_secret(info: FieldInfo) -> bool:
    return info.annotation is SecretStr


def setting_env_name(name: str) -> str:
    """The environment variable of the setting called `name`."""
    alias = Settings.model_fields[name].validation_alias
    return alias if isinstance(alias, str) else name.upper()


def setting_help(name: str) -> str:
    """The setting's meaning and variable, for help texts (the Dagster resources' field descriptions)."""
    return f"{Settings.model_fields[name].description} ({setting_env_name(name)})"


def _field_name(key: str) -> str:
    """The field a key names, given either as the field or as its variable."""
    return _BY_ENV.get(key, key)


_BY_ENV: dict[str, str] = {setting_env_name(name): name for name in Settings.model_fields}


def _error_message(info: FieldInfo, error: Any) -> str:
    """What a bad value must be, in words, from pydantic's error (without pydantic's jargon)."""
    kind, ctx = error["type"], error.get("ctx", {})
    noun = "whole number" if info.annotation is int else "number"
    if any(getattr(m, "gt", None) == 0 for m in info.metadata) and kind in {
        "int_parsing", "int_from_float", "float_parsing", "greater_than", "finite_number",
    }:  # fmt: skip
        return f"must be a positive {noun}"
    if kind in {"int_parsing", "int_from_float", "float_parsing", "finite_number"}:
        return f"must be a {noun}"
    if kind == "greater_than_equal":
        return f"must be at least {ctx['ge']}"
    if kind == "bool_parsing":
        return "must be true or false"
    if kind == "literal_error":
        return "must be " + str(ctx["expected"]).replace("'", "")
    if kind == "value_error":
        return str(ctx["error"])
    return str(error["msg"]).lower()


def load_settings() -> Settings:
    """Read every setting from the environment and `.env`; ValueError names the variable and the bad value."""
    env_file = None if os.environ.get(APP_MARKER) else ENV_FILE
    try:
        settings = Settings(_env_file=env_file)
    except ValidationError as e:
        first = e.errors()[0]
        name = _field_name(str(first["loc"][0]))
        raise ValueError(
            f"setting {setting_env_name(name)} {_error_message(Settings.model_fields[name], first)}, got {first['input']!r}"
        ) from None
    check_cluster(settings)
    return settings
