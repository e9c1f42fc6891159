"""The streaming job: Kafka topic -> parse -> PostgreSQL + Redis, until SIGTERM (or the topic is drained).

Run it as `stock-platform stream`, as `python -m stock_platform.streaming.job`,
or with spark-submit, which loads data sources only from `--jars`:

    spark-submit --jars "$(python -m stock_platform.streaming.job --print-jars)" \
        stock_platform/streaming/job.py [options]

All take the same options. It applies pending migrations first, keeps its Kafka offsets in a
checkpoint under the data directory, and on SIGTERM or Ctrl-C lets the running
micro-batch finish before stopping, so a stop never wastes work (and a crash
never loses any: every write is idempotent, see `pg_sink`).
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import re
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from stock_platform.config import Settings, load_settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession
    from pyspark.sql.streaming import StreamingQuery

    from stock_platform.streaming.processor import BatchProcessor, TaskWriterFactory
    from stock_platform.streaming.progress import ProgressReporter
    from stock_platform.streaming.redis_sink import RedisSink

__all__ = [
    "StreamOptions",
    "add_stream_arguments",
    "main",
    "min_tasks_per_batch",
    "options_from_args",
    "print_submit_jars",
    "run_stream",
    "spark_submit_jars",
    "start_query",
]

logger = logging.getLogger(__name__)

# How many times one run restarts its query after Spark's known post-replay failure.
_RESTARTS = 3
# The heartbeat is refreshed this often even when no batch runs (an idle topic is not a dead job).
HEARTBEAT_INTERVAL_S = 10.0


@dataclass(frozen=True)
class StreamOptions:
    """How one run of the job reads the topic."""

    trigger_seconds: float = 0.5
    starting_offsets: str = "earliest"  # only used when the checkpoint is new
    available_now: bool = False  # drain what the topic holds now, then exit
    checkpoint: str | Path | None = None  # a path or URI; default: settings.spark_checkpoint_location
    max_offsets_per_trigger: int | None = None  # default: settings.spark_max_offsets_per_trigger
    redis: bool = True


def _stop_on_signal(stop: threading.Event, signum: int, _frame: object) -> None:
    logger.info("signal %s: stopping after the current batch", signum)
    stop.set()


def add_stream_arguments(parser: argparse.ArgumentParser) -> None:
    """The job's command-line options (shared by the CLI and the spark-submit entry point)."""
    parser.add_argument(
        "--trigger-seconds", type=float, default=None, help="micro-batch interval (default SPARK_TRIGGER_SECONDS, 0.5)"
    )
    parser.add_argument("--starting-offsets", choices=("earliest", "latest"), default="earliest",
                        help="where a NEW checkpoint starts reading (default earliest: nothing is skipped)")  # fmt: skip
    parser.add_argument("--available-now", action="store_true", help="process what the topic holds now, then exit")
    parser.add_argument(
        "--checkpoint", default=None,
        help="checkpoint path or URI, e.g. s3a://bucket/cp (default SPARK_CHECKPOINT_LOCATION, or <data dir>/checkpoints/<topic>)",
    )  # fmt: skip
    parser.add_argument(
        "--max-offsets-per-trigger", type=int, default=None, help="back-pressure: records per micro-batch at most"
    )
    parser.add_argument("--no-redis", action="store_true", help="write PostgreSQL only")
    parser.add_argument("--print-jars", action="store_true",
                        help="print the Kafka connector jars as spark-submit --jars wants them, and exit")  # fmt: skip


def options_from_args(args: argparse.Namespace, settings: Settings) -> StreamOptions:
    """`StreamOptions` from parsed arguments, falling back to the settings."""
    return StreamOptions(
        trigger_seconds=args.trigger_seconds if args.trigger_seconds is not None else settings.spark_trigger_seconds,
        starting_offsets=args.starting_offsets,
        available_now=args.available_now,
        checkpoint=args.checkpoint,
        max_offsets_per_trigger=args.max_offsets_per_trigger,
        redis=not args.no_redis,
    )


def checkpoint_for(settings: Settings, options: StreamOptions) -> str:
    """The checkpoint this run uses: a URI (hdfs://, s3a://, file:) is passed to Spark untouched, a path made absolute."""
    location = str(options.checkpoint or settings.spark_checkpoint_location or settings.checkpoint_dir / settings.kafka_topic)
    if "://" in location or location.startswith("file:"):
        return location
    return str(Path(location).expanduser().resolve())


def min_tasks_per_batch(settings: Settings, cores_max: str | None) -> int:
    """The Kafka source's `minPartitions`: SPARK_MIN_PARTITIONS, else twice the job's cores when they are known.

    Derived from configuration only, never from executors registered at the moment, so a batch
    replayed after a restart is split into the same spans and finds them in the task ledger.
    0 leaves Spark's one task per Kafka partition.
    """
    if settings.spark_min_partitions:
        return settings.spark_min_partitions
    local = re.fullmatch(r"local\[(\d+|\*)(,\d+)?\]", settings.spark_master)
    if local:
        cores = (os.cpu_count() or 1) if local.group(1) == "*" else int(local.group(1))
        return 2 * cores
    if settings.spark_master == "local":
        return 2
    if cores_max:
        return 2 * int(cores_max)
    if settings.spark_workers:  # the local standalone cluster
        return 2 * settings.spark_workers * settings.spark_worker_cores
    return 0


def start_query(spark: SparkSession, settings: Settings, options: StreamOptions, processor: BatchProcessor) -> StreamingQuery:
    """Start the Kafka -> foreachBatch query with the options' trigger, back-pressure and checkpoint."""
    from stock_platform.kafka_options import spark_kafka_options

    max_offsets = options.max_offsets_per_trigger or settings.spark_max_offsets_per_trigger
    min_partitions = min_tasks_per_batch(settings, spark.conf.get("spark.cores.max", None))
    source = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", settings.kafka_bootstrap_servers)
        .option("subscribe", settings.kafka_topic)
        .option("startingOffsets", options.starting_offsets)
        .option("maxOffsetsPerTrigger", str(max_offsets))
        .options(**({"minPartitions": str(min_partitions)} if min_partitions else {}))
        .options(**spark_kafka_options(settings))  # security (SASL/SSL); nothing on a plain local broker
        .load()
    )
    writer = source.writeStream.queryName(f"stock-stream-{settings.kafka_topic}").foreachBatch(processor)
    writer = writer.option("checkpointLocation", str(processor.checkpoint))
    if options.available_now:
        writer = writer.trigger(availableNow=True)
    else:
        writer = writer.trigger(processingTime=f"{int(options.trigger_seconds * 1000)} milliseconds")
    return writer.start()


def _is_spark_55271(error: BaseException) -> bool:
    text = str(error)
    return "IterableOps.map" in text and 'Option.get()" is null' in text


def _run_query(
    spark: SparkSession, settings: Settings, options: StreamOptions, processor: BatchProcessor,
    reporter: ProgressReporter, stop: threading.Event,
) -> BaseException | None:  # fmt: skip
    """Run one streaming query until it ends, fails or `stop` is set; its error, if any."""
    from pyspark.errors import StreamingQueryException

    query = start_query(spark, settings, options, processor)
    processor.use_query_id(str(query.id))
    reporter.info(f"stream started: topic={settings.kafka_topic} checkpoint={processor.checkpoint} query_id={query.id}")
    last_beat = 0.0
    try:
        while query.isActive and not stop.is_set():
            if processor.redis is not None and time.monotonic() - last_beat >= HEARTBEAT_INTERVAL_S:
                last_beat = time.monotonic()
                processor.redis.beat(processor.heartbeat_fields())
            query.awaitTermination(1)
    except StreamingQueryException as e:
        return e
    if query.isActive:
        _stop_when_idle(query)
    return query.exception()


def _stop_when_idle(query: StreamingQuery, timeout_s: float = 120.0) -> None:
    """Stop the query between micro-batches (waits for a running batch to commit)."""
    deadline = time.monotonic() + timeout_s
    while query.isActive and query.status.get("isTriggerActive") and time.monotonic() < deadline:
        time.sleep(0.2)
    query.stop()


def _beat_until(redis_sink: RedisSink, processor: BatchProcessor, done: threading.Event) -> None:
    """The heartbeat while the job starts up, until `done` (the query loop beats from then on)."""
    while True:
        redis_sink.beat(processor.heartbeat_fields())
        if done.wait(HEARTBEAT_INTERVAL_S):
            return


def run_stream(
    settings: Settings, options: StreamOptions, spark: SparkSession | None = None, handle_signals: bool = True,
    writer_factory: TaskWriterFactory | None = None, processor_type: type[BatchProcessor] | None = None,
) -> int:  # fmt: skip
    """Run the job until SIGTERM/SIGINT, or until the topic is drained with `available_now`; exit code.

    `spark` lets a caller (tests, a notebook) reuse its session; `handle_signals=False`
    leaves the caller's signal handlers alone; `writer_factory` replaces what each task
    runs (tests wrap the real one to fail a task after its commit), `processor_type` the
    driver's part (the benchmarks' driver-path baseline).
    """
    from stock_platform.config_passfile import with_local_passfile
    from stock_platform.storage.migrations import apply_migrations
    from stock_platform.storage.redis_keys import RedisKeys
    from stock_platform.streaming.pg_sink import PostgresSink
    from stock_platform.streaming.processor import BatchProcessor
    from stock_platform.streaming.progress import ProgressReporter
    from stock_platform.streaming.redis_sink import RedisSink
    from stock_platform.streaming.session import build_spark_session
    from stock_platform.streaming.tasks import TaskConfig, task_writer

    dsn = with_local_passfile(settings)  # the driver's and the executors' connections find the local password
    applied = apply_migrations(dsn)
    if applied:
        logger.info("applied migrations: %s", ", ".join(applied))
    stop = threading.Event()
    if handle_signals and threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, functools.partial(_stop_on_signal, stop))
    reporter = ProgressReporter()
    redis_sink = (
        RedisSink(settings.redis_url, RedisKeys(settings.redis_key_prefix), settings.redis_ttl_seconds) if options.redis else None
    )
    task_config = TaskConfig(
        postgres_dsn=dsn, redis_url=settings.redis_url if options.redis else None,
        redis_key_prefix=settings.redis_key_prefix, redis_ttl_seconds=settings.redis_ttl_seconds, query_id="", batch_id=-1,
    )  # fmt: skip
    processor = (processor_type or BatchProcessor)(
        checkpoint_for(settings, options), task_config, PostgresSink(dsn), redis_sink, reporter,
        writer_factory or task_writer,
    )  # fmt: skip
    starting = threading.Event()
    if redis_sink is not None:
        # Alive while Spark starts (~10 s) and, on a cluster, the executors' environment is built once (a minute).
        threading.Thread(target=_beat_until, args=(redis_sink, processor, starting), daemon=True).start()
    own_spark = spark is None
    code = 0
    try:
        spark = spark or build_spark_session(settings, app_name="stock-platform-stream")
        starting.set()
        for attempt in range(1, _RESTARTS + 2):
            error = _run_query(spark, settings, options, processor, reporter, stop)
            if error is None:
                break
            if _is_spark_55271(error) and attempt <= _RESTARTS and not stop.is_set():
                # Spark 4.1 fails *after* committing a batch it re-ran from the checkpoint
                # (SPARK-55271/SPARK-57438); starting again from the same checkpoint is clean.
                logger.warning("Spark failed after replaying an uncommitted batch (SPARK-55271); restarting the query")
                continue
            logger.error("stream query failed: %s", str(error).splitlines()[0][:500])
            code = 1
            break
        reporter.info(f"stream stopped: batches={reporter.totals['batches']} inserted={reporter.totals['inserted']}")
    finally:
        starting.set()
        processor.pg.close()
        if redis_sink is not None:
            redis_sink.close()
        reporter.close()
        if own_spark and spark is not None:
            spark.stop()
    return code


def main(argv: list[str] | None = None) -> int:
    """Entry point for `python -m stock_platform.streaming.job` and spark-submit."""
    parser = argparse.ArgumentParser(prog="stock_platform.streaming.job", description="Kafka -> PostgreSQL + Redis stream job.")
    add_stream_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s", stream=sys.stderr)
    logging.getLogger("kafka").setLevel(logging.WARNING)
    settings = load_settings()
    if args.print_jars:
        return print_submit_jars(settings)
    return run_stream(settings, options_from_args(args, settings))


def spark_submit_jars(settings: Settings) -> str:
    """The connector jars, comma separated: spark-submit loads data sources only from `--jars`.

    FileNotFoundError, naming both fixes, when the cache was never filled: an empty `--jars` would
    only fail later, at the first read of the topic, with Spark's "Failed to find data source: kafka".
    """
    from stock_platform.spark_jars import cached_spark_kafka_jars, spark_kafka_dir, spark_kafka_package

    jars = cached_spark_kafka_jars(settings.cache_dir)
    if not jars:
        raise FileNotFoundError(
            f"Spark's Kafka connector is not in {spark_kafka_dir(settings.cache_dir)}: run `stock-platform services up` "
            f"once to fetch it, or give spark-submit `--packages {spark_kafka_package()}` instead of `--jars`"
        )
    return ",".join(str(p) for p in jars)


def print_submit_jars(settings: Settings) -> int:
    """`--print-jars`: the jars on stdout and 0, or why there are none on stderr and 1."""
    try:
        print(spark_submit_jars(settings))
    except FileNotFoundError as e:
        print(f"stock-platform stream: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
