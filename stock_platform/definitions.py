"""The one Dagster `Definitions` of the platform, loaded by `workspace.yaml`.

Resources are configured from the environment the webserver and daemon run in
(`stock-platform platform up` exports it): each setting that is set becomes a
`dg.EnvVar`, read when a run launches and shown by name, never by value, in the
UI (the Finnhub key in particular); an unset one takes its value from the loaded
settings (a secret that is not set stays empty). Built inside a `@dg.definitions` function so that
importing this module does no work.
"""

import os

import dagster as dg
from pydantic import SecretStr

from stock_platform.config import Settings, load_settings, setting_env_name
from stock_platform.orchestration.assets import (
    dead_letters,
    observe_topic_job,
    observe_topic_schedule,
    stock_candles_1m,
    stock_prices,
    stock_quotes_topic,
)
from stock_platform.orchestration.checks import all_checks, table_checks_job, table_checks_schedule
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


def _bound(settings: Settings, name: str) -> str:
    """`dg.EnvVar` of the setting when its variable is set (read at launch, masked in the UI), else its value in `settings`.

    A secret is never bound by value (the UI shows resource values): unset in the environment, it stays empty.
    """
    variable = setting_env_name(name)
    if os.environ.get(variable, "").strip():
        return dg.EnvVar(variable)
    return "" if isinstance(getattr(settings, name), SecretStr) else settings.env_value(name)


def build_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    """The five resources, each field bound to its setting's variable or to its value in `settings`."""

    def bound(name: str) -> str:
        return _bound(settings, name)

    return {
        "postgres": PostgresResource(dsn=bound("postgres_dsn")),
        "redis": RedisResource(url=bound("redis_url"), key_prefix=bound("redis_key_prefix")),
        "kafka": KafkaResource(
            bootstrap_servers=bound("kafka_bootstrap_servers"),
            topic=bound("kafka_topic"),
            security_protocol=bound("kafka_security_protocol"),
            sasl_mechanism=bound("kafka_sasl_mechanism"),
            sasl_username=bound("kafka_sasl_username"),
            sasl_password=bound("kafka_sasl_password"),
        ),
        "finnhub": FinnhubResource(api_key=bound("finnhub_api_key"), source=bound("source"), symbols=bound("symbols")),
        "spark": SparkResource(
            master=bound("spark_master"),
            trigger_seconds=settings.spark_trigger_seconds,
            max_offsets_per_trigger=settings.spark_max_offsets_per_trigger,
            data_dir=bound("data_dir"),
        ),
    }


@dg.definitions
def defs() -> dg.Definitions:
    """Assets, checks, jobs, the schedules, the supervisors and the failure sensor, with resources."""
    return dg.Definitions(
        assets=[stock_quotes_topic, stock_prices, dead_letters, stock_candles_1m, stock_daily_bars],
        asset_checks=all_checks(),
        jobs=[streaming_job, producer_job, compaction_job, observe_topic_job, table_checks_job],
        schedules=[compaction_schedule, observe_topic_schedule, table_checks_schedule],
        sensors=[
            build_supervisor_sensor("producer_supervisor", producer_job, "producer"),
            build_supervisor_sensor("streaming_supervisor", streaming_job, "stream"),
            record_run_failures,
        ],
        resources=build_resources(load_settings()),
    )
