"""The long-running jobs: `producer_job` and `streaming_job`, each one run = one process launched through Dagster Pipes.

See `orchestration.pipes` for how the process is launched, stopped and reported.
The supervisor sensors (`orchestration.sensors`) start and replace these runs.
"""

import logging
import sys
from collections.abc import Callable, Sequence

import dagster as dg

from stock_platform.config import setting_env_name
from stock_platform.orchestration.pipes import PID_TAG, run_supervised
from stock_platform.orchestration.resources import (
    FinnhubResource,
    KafkaResource,
    PostgresResource,
    RedisResource,
    SparkResource,
)
from stock_platform.storage.heartbeats import supervised_producer_id

__all__ = [
    "PID_TAG",
    "STOPPED_TAG",
    "SUPERVISED_TAG",
    "WORKED_UNTIL_TAG",
    "producer_job",
    "run_supervised",
    "stream_command",
    "streaming_job",
]

logger = logging.getLogger(__name__)

# Run tag naming the supervised component; dagster.yaml limits runs to one per value of this tag.
SUPERVISED_TAG = "stock_platform/supervised"
# Set by the supervisor on a run it stops, before it stops it: why (the run then ends as cancelled, yet it failed).
STOPPED_TAG = "stock_platform/stopped_by_supervisor"
# With it, the run's last sign of work in epoch seconds: its working life for the failure streak ends there.
WORKED_UNTIL_TAG = "stock_platform/worked_until"


def stream_command(extra: Sequence[str] = ()) -> list[str]:
    """The argv of the Spark stream job (`stock-platform stream`) with this interpreter."""
    return [sys.executable, "-m", "stock_platform.cli", "stream", *extra]


class StreamConfig(dg.Config):
    """Extra arguments of `stock-platform stream` (e.g. ["--available-now"] to drain the topic and stop)."""

    args: list[str] = []


@dg.op(description="Run the Spark stream job (stock-platform stream) until it stops or the run is cancelled.")
def run_stream(
    context: dg.OpExecutionContext,
    config: StreamConfig,
    postgres: PostgresResource,
    redis: RedisResource,
    kafka: KafkaResource,
    spark: SparkResource,
) -> None:
    """Launch the stream job through Pipes with this run's configuration as its environment."""
    env = {**postgres.env(), **redis.env(), **kafka.env(), **spark.env()}
    run_supervised(context, "stream", stream_command(config.args), env, progress_asset="stock_prices")


class ProducerConfig(dg.Config):
    """Extra arguments of `stock-platform produce` (e.g. ["--source", "simulator"])."""

    args: list[str] = []


@dg.op(description="Run the quote producer (stock-platform produce) until it stops or the run is cancelled.")
def run_producer(
    context: dg.OpExecutionContext, config: ProducerConfig, kafka: KafkaResource, redis: RedisResource, finnhub: FinnhubResource
) -> None:
    """Launch the producer through Pipes with this run's configuration as its environment.

    Its producer id is the run's (`supervised_producer_id`), so its supervisor reads this producer's
    heartbeat and no other's; it also overrides a PRODUCER_ID the daemon's environment may carry.
    """
    producer_id = {setting_env_name("producer_id"): supervised_producer_id(context.run_id)}
    env = {**kafka.env(), **redis.env(), **finnhub.env(), **producer_id}
    run_supervised(context, "producer", [sys.executable, "-m", "stock_platform.cli", "produce", *config.args], env)


def _supervised_job(name: str, op: Callable[..., None], component: str, description: str) -> dg.JobDefinition:
    @dg.job(
        name=name,
        description=description,
        # The supervisor sensor, not run retries, restarts these: it checks the heartbeat before relaunching.
        tags={SUPERVISED_TAG: component, "dagster/max_retries": "0"},
    )
    def _job() -> None:
        op()

    return _job


streaming_job = _supervised_job(
    "streaming_job", run_stream, "stream",
    "Spark Structured Streaming: Kafka stock-quotes -> PostgreSQL (stock_prices, candles, dead letters) + Redis.",
)  # fmt: skip
producer_job = _supervised_job(
    "producer_job", run_producer, "producer",
    "Quote producer: Finnhub (or the simulated market) -> Kafka stock-quotes.",
)  # fmt: skip
