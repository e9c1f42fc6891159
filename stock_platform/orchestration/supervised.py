"""The long-running jobs: `producer_job` and `streaming_job`, each one run = one process launched through Dagster Pipes.

The run lasts as long as the process: its stdout/stderr are the run's compute
logs, `pipes.log` lines become run log lines, each per-batch custom message
becomes one structured log line as it arrives, and each materialisation the
stream reports (`stock_prices`) is recorded at once, not when the run ends.
Cancelling the run sends SIGTERM (what `stock-platform produce|stream` stop on),
then SIGKILL after a grace period; the child also gets SIGTERM if the run
worker itself dies, so a supervised process never outlives its run.
"""

import ctypes
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import dagster as dg

from stock_platform.orchestration.resources import (
    FinnhubResource,
    KafkaResource,
    PostgresResource,
    RedisResource,
    SparkResource,
)

__all__ = [
    "PID_TAG",
    "SUPERVISED_TAG",
    "LivePipesMessageReader",
    "SupervisedPipesClient",
    "producer_job",
    "run_supervised",
    "stream_command",
    "streaming_job",
]

logger = logging.getLogger(__name__)

# Run tag naming the supervised component; dagster.yaml limits runs to one per value of this tag.
SUPERVISED_TAG = "stock_platform/supervised"
# Run tag holding the supervised process's pid, so the supervisor can tell "idle" from "gone".
PID_TAG = "stock_platform/pid"
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Ask Linux to send SIGTERM to the child when the run worker that launched it dies."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


def _raw(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    """Pipes metadata ({"raw_value", "type"} per key) as plain values Dagster accepts."""
    out: dict[str, Any] = {}
    for key, value in (metadata or {}).items():
        out[key] = value.get("raw_value") if isinstance(value, dict) and "raw_value" in value else value
    return out


class _LiveHandler:
    """Wraps the Pipes message handler so progress reaches the run while the process is still running."""

    def __init__(self, handler: dg.PipesMessageHandler, context: dg.OpExecutionContext, component: str) -> None:
        self._handler = handler
        self._context = context
        self._component = component

    def handle_message(self, message: Mapping[str, Any]) -> None:
        method, params = message.get("method"), message.get("params") or {}
        if method == "report_custom_message":
            payload = params.get("payload")
            if isinstance(payload, dict):
                fields = " ".join(f"{k}={v}" for k, v in payload.items())
                self._context.log.info(f"[{self._component} batch] {fields}")
        elif method == "report_asset_materialization":
            # Recorded now rather than queued until the (endless) process exits.
            self._context.log_event(
                dg.AssetMaterialization(
                    asset_key=dg.AssetKey.from_user_string(params["asset_key"]),
                    metadata=_raw(params.get("metadata")),
                )
            )
            return
        self._handler.handle_message(message)  # type: ignore[arg-type]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handler, name)


class LivePipesMessageReader(dg.PipesTempFileMessageReader):
    """The temp-file message reader, passing each message through `_LiveHandler` first."""

    def __init__(self, context: dg.OpExecutionContext, component: str) -> None:
        super().__init__()
        self._live_context = context
        self._component = component

    @contextmanager
    def read_messages(self, handler: dg.PipesMessageHandler) -> Iterator[dict[str, Any]]:
        """Read messages as the base reader does, through the live wrapper."""
        live = _LiveHandler(handler, self._live_context, self._component)
        with super().read_messages(live) as params:  # type: ignore[arg-type]
            yield params


class SupervisedPipesClient(dg.PipesSubprocessClient):
    """`PipesSubprocessClient` for processes that stop on SIGTERM and must never outlive their run."""

    def run(  # type: ignore[override]
        self,
        *,
        context: dg.OpExecutionContext,
        command: Sequence[str],
        env: Mapping[str, str] | None = None,
        extras: dict[str, Any] | None = None,
        cwd: str | None = None,
    ) -> dg.PipesClientCompletedInvocation:
        """Run `command` in a Pipes session until it exits; SIGTERM then SIGKILL it if the run is cancelled."""
        with dg.open_pipes_session(
            context=context, context_injector=self.context_injector, message_reader=self.message_reader, extras=extras
        ) as session:
            process = subprocess.Popen(  # noqa: S603 - argv built by the platform
                list(command),
                cwd=cwd or self.cwd,
                env={**os.environ, **self.env, **(env or {}), **session.get_bootstrap_env_vars()},
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - only sets the parent-death signal
            )
            context.log.info(f"started pid {process.pid}: {' '.join(command)}")
            context.instance.add_run_tags(context.run_id, {PID_TAG: str(process.pid)})
            try:
                code = process.wait()
            except BaseException:
                context.log.info(f"run interrupted: sending SIGTERM to pid {process.pid}")
                process.terminate()
                try:
                    process.wait(timeout=self.termination_timeout_seconds)
                except subprocess.TimeoutExpired:
                    context.log.warning(f"pid {process.pid} ignored SIGTERM; sending SIGKILL")
                    process.kill()
                    process.wait()
                raise
            if code != 0:
                raise dg.Failure(description=f"pid {process.pid} ({' '.join(command[1:])}) exited with code {code}")
        return dg.PipesClientCompletedInvocation(session)


def stream_command(extra: Sequence[str] = ()) -> list[str]:
    """The argv of the Spark stream job (`stock-platform stream`) with this interpreter."""
    return [sys.executable, "-m", "stock_platform.cli", "stream", *extra]


def run_supervised(context: dg.OpExecutionContext, component: str, command: list[str], env: dict[str, str]) -> None:
    """Run one supervised process for the length of this op, reporting its progress live; raise if it fails."""
    client = SupervisedPipesClient(message_reader=LivePipesMessageReader(context, component), termination_timeout_seconds=45)
    client.run(context=context, command=command, env={**env, "PYTHONUNBUFFERED": "1"})


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
    run_supervised(context, "stream", stream_command(config.args), env)


class ProducerConfig(dg.Config):
    """Extra arguments of `stock-platform produce` (e.g. ["--source", "simulator"])."""

    args: list[str] = []


@dg.op(description="Run the quote producer (stock-platform produce) until it stops or the run is cancelled.")
def run_producer(
    context: dg.OpExecutionContext, config: ProducerConfig, kafka: KafkaResource, redis: RedisResource, finnhub: FinnhubResource
) -> None:
    """Launch the producer through Pipes with this run's configuration as its environment."""
    env = {**kafka.env(), **redis.env(), **finnhub.env()}
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
