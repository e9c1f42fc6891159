"""The work happens on the executors: tasks write their own rows, survive Spark's retries, and the driver holds no batch."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka import Producer

from stock_platform.config import Settings
from stock_platform.quotes import Quote
from stock_platform.streaming.job import StreamOptions, run_stream
from stock_platform.streaming.pg_sink import CANDLE_RECOMPUTE_SQL
from stock_platform.streaming.tasks import TaskConfig, task_writer
from stock_platform_tests.streaming.conftest import (
    BASE_MS,
    expected_prices,
    fetch,
    invalid_records,
    make_quotes,
    produce,
    snapshot,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# The driver's limit on what tasks may send back; a batch collected on the driver would exceed it 20 times over.
_TINY_RESULT = "spark.driver.maxResultSize=1m"


def _lose_first_attempt_after_commit(marks: Path) -> Callable[[TaskConfig], Callable[[Iterator], Iterator]]:
    """A task writer that runs the real one, then fails the first attempt of every task of batch 1.

    The failure comes after the task's PostgreSQL commit, as when an executor is lost before Spark
    hears of the task's success; Spark then runs the task again. Each injected loss leaves a file in
    `marks`.
    """

    def factory(config: TaskConfig) -> Callable[[Iterator], Iterator]:
        real = task_writer(config)

        def write(batches: Iterator) -> Iterator:
            from pyspark import TaskContext

            out = list(real(batches))
            context = TaskContext.get()
            if config.batch_id == 1 and context.attemptNumber() == 0:
                (marks / f"partition-{context.partitionId()}").touch()
                raise RuntimeError("injected: the executor is lost right after the task committed")
            yield from out

        return write

    return factory


def test_a_task_lost_after_its_commit_is_run_again_and_changes_nothing(
    spark, platform_settings: Settings, clean_tables: str, tmp_path
) -> None:
    from pyspark import cloudpickle

    assert spark.sparkContext.master.endswith(",4]"), "local mode must allow task retries (local[N,F])"
    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers need not import the test package
    settings = platform_settings
    quotes = make_quotes(900, step_ms=1_100)
    bad = invalid_records()
    produce(settings, list(quotes) + [(b"AAPL", v) for v, _ in bad])
    marks = tmp_path / "lost-tasks"
    marks.mkdir()
    options = StreamOptions(available_now=True, checkpoint=tmp_path / "cp", max_offsets_per_trigger=300)
    code = run_stream(
        settings, options, spark=spark, handle_signals=False, writer_factory=_lose_first_attempt_after_commit(marks)
    )
    assert code == 0

    assert len(list(marks.iterdir())) >= 2, "batch 1's tasks were not lost and re-run"  # one per Kafka partition read
    db = snapshot(settings.postgres_dsn)
    assert db["prices"] == expected_prices(quotes)
    assert len(db["dead"]) == len(bad)
    assert db["candles"] == fetch(settings.postgres_dsn, CANDLE_RECOMPUTE_SQL + " ORDER BY 1, 2")
    assert fetch(settings.postgres_dsn, "SELECT sum(trade_count) FROM stock_candles_1m")[0][0] == len(quotes)
    # Batch 1's ledger row reports what its tasks did the first time, not the re-run's nothing.
    batches = dict(fetch(settings.postgres_dsn, "SELECT batch_id, inserted + duplicates + dead_letters FROM stream_batches"))
    rows_in = dict(fetch(settings.postgres_dsn, "SELECT batch_id, rows_in FROM stream_batches"))
    assert batches[1] == rows_in[1] > 0 and sum(rows_in.values()) == len(quotes) + len(bad)
    assert fetch(settings.postgres_dsn, "SELECT sum(inserted) FROM stream_batches")[0][0] == len(quotes)


def _produce_padded(settings: Settings, n: int) -> int:
    """`n` quotes with a long producer id (about 270 bytes each); returns the bytes sent."""
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap_servers, "linger.ms": 20, "acks": "all"})
    sent = 0
    producer_id = "padded-producer-" + "x" * 44  # the column holds 64 characters
    for i in range(n):
        q = Quote(("AAPL", "MSFT", "NVDA", "AMZN")[i % 4], 100.0 + i % 500 / 10, BASE_MS + i * 10, "simulator", producer_id, i, 7)
        value = q.to_json()
        sent += len(value)
        while True:
            try:
                producer.produce(settings.kafka_topic, key=q.key, value=value)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    assert producer.flush(60) == 0
    return sent


def _run(argv: list[str], settings: Settings, extra_env: dict[str, str]) -> subprocess.CompletedProcess:
    env = {**os.environ, **settings.to_env(), **extra_env}
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)


_COLLECT_ON_DRIVER = """
from stock_platform.config import load_settings
from stock_platform.streaming.session import build_spark_session
settings = load_settings()
spark = build_spark_session(settings)
frame = (spark.read.format("kafka").option("kafka.bootstrap.servers", settings.kafka_bootstrap_servers)
         .option("subscribe", settings.kafka_topic).option("startingOffsets", "earliest").load())
print(len(frame.select("value").toPandas()))
"""


def test_a_20_mb_batch_passes_while_the_driver_may_receive_only_1_mb(
    platform_settings: Settings, clean_tables: str, tmp_path
) -> None:
    settings = platform_settings
    n = 90_000
    assert _produce_padded(settings, n) >= 20 * 1024 * 1024
    env = {"SPARK_CONF": _TINY_RESULT, "SPARK_MAX_OFFSETS_PER_TRIGGER": str(n)}

    job = _run([sys.executable, "-m", "stock_platform.cli", "stream", "--available-now", "--no-redis",
                "--checkpoint", str(tmp_path / "cp")], settings, env)  # fmt: skip
    assert job.returncode == 0, job.stderr[-3000:]
    assert fetch(settings.postgres_dsn, "SELECT count(*) FROM stock_prices")[0][0] == n
    assert fetch(settings.postgres_dsn, "SELECT count(*), max(rows_in) FROM stream_batches")[0] == (1, n)  # one batch

    # The control: collecting the same records on the driver, as the job once did, breaks that limit.
    collect = _run([sys.executable, "-c", _COLLECT_ON_DRIVER], settings, env)
    assert collect.returncode != 0 and "maxResultSize" in collect.stderr, collect.stderr[-2000:]
