"""The one Dagster `Definitions` of the platform, loaded by `workspace.yaml`.

Resources are configured from the environment the webserver and daemon run in
(`stock-platform platform up` exports it): each setting that is set becomes a
`dg.EnvVar`, read when a run launches and shown by name, never by value, in the
UI (the Finnhub key in particular); an unset one takes its default from
`stock_platform.config`. Built inside a `@dg.definitions` function so that
importing this module does no work.
"""

import os

import dagster as dg

from stock_platform.config import Settings, load_settings
from stock_platform.orchestration.assets import (
    dead_letters,
    observe_topic_job,
    observe_topic_schedule,
    stock_candles_1m,
    stock_prices,
    stock_quotes_topic,
)
from stock_platform.orchestration.checks import all_checks
from stock_platform.orchestration.daily import compaction_job, compaction_schedule, stock_daily_bars
from stock_platform.orchestration.resources import (
    FinnhubResource,
    KafkaResource,
    PostgresResource,
    RedisResource,
    SparkResource,
)
from stock_platform.orchestration.sensors import build_supervisor_sensor, record_run_failures
from stock_platform.orchestration.supervised import producer_job, streaming_job

__all__ = ["build_resources", "defs"]


def _env(name: str, default: object) -> str:
    """`dg.EnvVar(name)` when the variable is set (read at launch, masked in the UI), else config.py's default."""
    return dg.EnvVar(name) if os.environ.get(name, "").strip() else str(default)


def build_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    """The five resources, each field bound to its environment variable or to the default in `settings`."""
    return {
        "postgres": PostgresResource(dsn=_env("POSTGRES_DSN", settings.postgres_dsn)),
        "redis": RedisResource(
            url=_env("REDIS_URL", settings.redis_url), key_prefix=_env("REDIS_KEY_PREFIX", settings.redis_key_prefix)
        ),
        "kafka": KafkaResource(
            bootstrap_servers=_env("KAFKA_BOOTSTRAP_SERVERS", settings.kafka_bootstrap_servers),
            topic=_env("KAFKA_TOPIC", settings.kafka_topic),
            security_protocol=_env("KAFKA_SECURITY_PROTOCOL", settings.kafka_security_protocol),
            sasl_mechanism=_env("KAFKA_SASL_MECHANISM", settings.kafka_sasl_mechanism),
            sasl_username=_env("KAFKA_SASL_USERNAME", settings.kafka_sasl_username),
            sasl_password=_env("KAFKA_SASL_PASSWORD", ""),
        ),
        "finnhub": FinnhubResource(
            api_key=_env("FINNHUB_API_KEY", ""),
            source=_env("STOCK_SOURCE", settings.source),
            symbols=_env("STOCK_SYMBOLS", ",".join(settings.symbols)),
        ),
        "spark": SparkResource(
            master=_env("SPARK_MASTER", settings.spark_master),
            trigger_seconds=settings.spark_trigger_seconds,
            max_offsets_per_trigger=settings.spark_max_offsets_per_trigger,
            data_dir=_env("STOCK_DATA_DIR", settings.data_dir),
        ),
    }


@dg.definitions
def defs() -> dg.Definitions:
    """Assets, checks, jobs, the compaction schedule, the supervisors and the failure sensor, with resources."""
    return dg.Definitions(
        assets=[stock_quotes_topic, stock_prices, dead_letters, stock_candles_1m, stock_daily_bars],
        asset_checks=all_checks(),
        jobs=[streaming_job, producer_job, compaction_job, observe_topic_job],
        schedules=[compaction_schedule, observe_topic_schedule],
        sensors=[
            build_supervisor_sensor("producer_supervisor", producer_job, "producer"),
            build_supervisor_sensor("streaming_supervisor", streaming_job, "stream"),
            record_run_failures,
        ],
        resources=build_resources(load_settings()),
    )
