"""Sink benchmark: the same quotes through the same Spark job shape, written several ways.

`python -m bench.bench_sink [--quick] [--rows N]`

One Kafka topic is filled with N contract-valid quotes (1,000,000 by default,
100,000 with --quick). Each variant then runs the stream job's shape, a
Kafka -> foreachBatch query with Trigger.AvailableNow and the same
maxOffsetsPerTrigger, into its own empty table. Two figures per variant:
end to end (Kafka to committed rows) and the write step alone (time inside the
sink call, summed over batches; the parse before it is the same for all).

- per_row_insert: parse on the driver, one INSERT per row, one commit per batch;
- jdbc_append: parse in Spark (`parse_kafka_frame`, cached), Spark's JDBC writer, mode append;
- execute_values: parse on the driver, psycopg2 execute_values ... ON CONFLICT DO NOTHING;
- our_sink: `PostgresSink.write_span` on a parsed batch (COPY to a temp table, INSERT ON
  CONFLICT, candles, dead letters, span record, one transaction);
- our_batch_path: exactly the job's `BatchProcessor` (Spark tasks parse and write their own
  partitions, chunk by chunk) — end to end only, since parse and write overlap;
- driver_path: the job as it was, the batch collected and written on the driver (`bench.driver_path`);
- bare_copy: parse on the driver, COPY into an unindexed table with no constraints
  (the ceiling: no idempotence, no candles);
- parse_only: everything but the write, to show the fixed cost.
"""

from __future__ import annotations

import argparse
import io
import logging
import platform
import sys
import time
import uuid
from collections.abc import Callable

import psycopg2
from psycopg2 import sql
from psycopg2.extras import execute_values

from bench.results_io import figure, postgres_version, write_results
from stock_platform.config import Settings, load_settings
from stock_platform.storage.migrations import apply_migrations
from stock_platform.storage.postgres import connect

logger = logging.getLogger("bench.bench_sink")

BASE_MS = 1_764_000_000_000
N_SYMBOLS = 50
MAX_OFFSETS = 100_000
# Seconds spent inside each variant's write step (summed over batches): the sink alone.
WRITE_SECONDS: dict[str, float] = {}
_COLUMNS = (
    "symbol",
    "price",
    "volume",
    "day_high",
    "day_low",
    "open_price",
    "prev_close",
    "event_time",
    "source",
    "producer_id",
    "seq",
)
_INSERT_ONE = (
    "INSERT INTO stock_prices (symbol, price, volume, day_high, day_low, open_price, prev_close, event_time, source, producer_id, seq)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, TIMESTAMP '1970-01-01' + %s * INTERVAL '1 millisecond', %s, %s, %s)"
    " ON CONFLICT (symbol, event_time) DO NOTHING"
)
_INSERT_MANY = (
    "INSERT INTO stock_prices (symbol, price, volume, day_high, day_low, open_price, prev_close, event_time, source, producer_id, seq)"
    " VALUES %s ON CONFLICT (symbol, event_time) DO NOTHING"
)
_ROW_TEMPLATE = "(%s, %s, %s, %s, %s, %s, %s, TIMESTAMP '1970-01-01' + %s * INTERVAL '1 millisecond', %s, %s, %s)"
_BARE_TABLE = """
CREATE TABLE IF NOT EXISTS bench_bare_copy (
    symbol TEXT, price NUMERIC, volume BIGINT, day_high NUMERIC, day_low NUMERIC, open_price NUMERIC,
    prev_close NUMERIC, event_time_ms BIGINT, source TEXT, producer_id TEXT, seq BIGINT)
"""


def _row(q) -> tuple:
    return (
        q.symbol,
        q.price,
        q.volume,
        q.day_high,
        q.day_low,
        q.open_price,
        q.prev_close,
        q.event_time_ms,
        q.source,
        q.producer_id,
        q.seq,
    )


def fill_topic(spark, settings: Settings, rows: int) -> None:
    """Write `rows` valid quotes (N_SYMBOLS symbols, unique event times) to the topic with Spark's Kafka sink."""
    from pyspark.sql import functions as F  # noqa: N812

    df = spark.range(rows).select(
        F.concat(F.lit("SYM"), (F.col("id") % N_SYMBOLS).cast("string")).alias("symbol"),
        F.col("id"),
    )
    quote = F.struct(
        F.lit(1).alias("v"), F.col("symbol"), F.round(F.lit(100.0) + (F.col("id") % 1000) / 100.0, 2).alias("price"),
        (BASE_MS + F.col("id") * 10).alias("event_time_ms"), F.lit("simulator").alias("source"),
        F.lit("bench").alias("producer_id"), F.col("id").alias("seq"), (F.col("id") % 500 + 1).alias("volume"),
    )  # fmt: skip
    out = df.select(F.col("symbol").cast("binary").alias("key"), F.to_json(quote).cast("binary").alias("value"))
    out.write.format("kafka").option("kafka.bootstrap.servers", settings.kafka_bootstrap_servers).option(
        "topic", settings.kafka_topic
    ).save()


def _driver_batch(batch_df):
    from pyspark.sql import functions as F  # noqa: N812

    from stock_platform.streaming.parse import parse_batch, records_from_pandas

    frame = batch_df.select(
        "key", "value", "topic", "partition", "offset", F.unix_millis("timestamp").alias("timestamp_ms")
    ).toPandas()
    return parse_batch(records_from_pandas(frame))


def run_variant(spark, settings: Settings, name: str, sink: Callable, tmp: str) -> float:
    """Seconds to drain the topic through foreachBatch(sink) from a fresh checkpoint."""
    query = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", settings.kafka_bootstrap_servers)
        .option("subscribe", settings.kafka_topic)
        .option("startingOffsets", "earliest")
        .option("maxOffsetsPerTrigger", str(MAX_OFFSETS))
        .load()
        .writeStream.foreachBatch(sink)
        .option("checkpointLocation", f"{tmp}/{name}-{uuid.uuid4().hex[:6]}")
        .trigger(availableNow=True)
    )
    t0 = time.perf_counter()
    q = query.start()
    q.awaitTermination()
    elapsed = time.perf_counter() - t0
    if q.exception() is not None:
        raise RuntimeError(f"{name} failed: {q.exception()}")
    return elapsed


def _reset(dsn: str) -> None:
    conn = psycopg2.connect(dsn)
    with conn, conn.cursor() as cur:
        cur.execute("TRUNCATE stock_prices, stock_candles_1m, dead_letters, stream_batches, stream_task_commits RESTART IDENTITY")
        cur.execute(_BARE_TABLE)
        cur.execute("TRUNCATE bench_bare_copy")
    conn.close()
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("VACUUM ANALYZE stock_prices")
    conn.close()


def _count(dsn: str, table: str) -> int:
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
            return int(cur.fetchone()[0])
    finally:
        conn.close()


def make_sinks(settings: Settings, jdbc_url: str, tmp: str) -> dict[str, tuple[Callable, str]]:
    """Each variant's foreachBatch function and the table it fills."""
    from pyspark.sql import functions as F  # noqa: N812

    from bench.driver_path import DriverPathProcessor
    from stock_platform.streaming.pg_sink import PostgresSink, TaskSpan, copy_text
    from stock_platform.streaming.processor import BatchProcessor
    from stock_platform.streaming.progress import ProgressReporter
    from stock_platform.streaming.tasks import TaskConfig

    reporter = ProgressReporter(use_pipes=False)

    dsn = settings.postgres_dsn

    def timed(name: str, write: Callable[[], object]) -> None:
        t0 = time.perf_counter()
        write()
        WRITE_SECONDS[name] = WRITE_SECONDS.get(name, 0.0) + time.perf_counter() - t0

    def parse_only(batch_df, batch_id: int) -> None:
        _driver_batch(batch_df)

    conn = connect(dsn, "bench-sinks")  # one long-lived connection, as the job keeps one

    def per_row(batch_df, batch_id: int) -> None:
        batch = _driver_batch(batch_df)

        def write() -> None:
            with conn, conn.cursor() as cur:
                for q in batch.quotes:
                    cur.execute(_INSERT_ONE, _row(q))

        timed("per_row_insert", write)

    def values(batch_df, batch_id: int) -> None:
        batch = _driver_batch(batch_df)

        def write() -> None:
            with conn, conn.cursor() as cur:
                execute_values(cur, _INSERT_MANY, [_row(q) for q in batch.quotes], template=_ROW_TEMPLATE, page_size=1000)

        timed("execute_values", write)

    sink = PostgresSink(dsn, "bench-our-path")

    def ours_sink(batch_df, batch_id: int) -> None:
        batch = _driver_batch(batch_df)
        span = TaskSpan("bench", batch_id, "all", -1, 0, batch.rows_in, batch.rows_in)
        timed("our_sink", lambda: sink.write_span(span, [batch]))

    task_config = TaskConfig(dsn, None, "bench:", 300, "", -1)
    # Exactly what the job's foreachBatch does: Spark tasks parse in chunks, write chunk k while parsing k+1.
    ours = BatchProcessor(tmp, task_config, sink, None, reporter)
    driver_path = DriverPathProcessor(tmp, task_config, sink, None, reporter)
    ours.use_query_id("bench-executors")
    driver_path.use_query_id("bench-driver")

    def bare(batch_df, batch_id: int) -> None:
        batch = _driver_batch(batch_df)

        def write() -> None:
            with conn, conn.cursor() as cur:
                cur.copy_expert(
                    "COPY bench_bare_copy (symbol, price, volume, day_high, day_low, open_price, prev_close, event_time_ms,"
                    " source, producer_id, seq) FROM STDIN",
                    io.StringIO(copy_text(batch.quotes)),
                )

        timed("bare_copy", write)

    def jdbc(batch_df, batch_id: int) -> None:
        from stock_platform.streaming.parse import parse_kafka_frame

        parsed = parse_kafka_frame(batch_df).where(F.col("error").isNull())
        rows = parsed.select(
            "symbol", "price", "volume", "day_high", "day_low", "open_price", "prev_close",
            F.timestamp_millis("event_time_ms").alias("event_time"), "source", "producer_id", "seq",
        ).persist()  # fmt: skip
        rows.count()  # parse now, so the timed part below is the JDBC write alone
        timed(
            "jdbc_append",
            lambda: rows.write.jdbc(jdbc_url, "stock_prices", mode="append", properties={"driver": "org.postgresql.Driver"}),
        )
        rows.unpersist()

    return {
        "parse_only": (parse_only, ""),
        "bare_copy": (bare, "bench_bare_copy"),
        "our_sink": (ours_sink, "stock_prices"),
        "our_batch_path": (ours, "stock_prices"),
        "driver_path": (driver_path, "stock_prices"),
        "execute_values": (values, "stock_prices"),
        "jdbc_append": (jdbc, "stock_prices"),
        "per_row_insert": (per_row, "stock_prices"),
    }


def _create_database(settings: Settings) -> tuple[str, str]:
    name = f"bench_sink_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(f"host=127.0.0.1 port={settings.postgres_port} user=postgres dbname=postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(sql.SQL("CREATE DATABASE {} OWNER stock").format(sql.Identifier(name)))
    admin.close()
    return name, f"postgresql://stock@127.0.0.1:{settings.postgres_port}/{name}"


def _drop_database(settings: Settings, name: str) -> None:
    admin = psycopg2.connect(f"host=127.0.0.1 port={settings.postgres_port} user=postgres dbname=postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    admin.close()


def main(argv: list[str] | None = None) -> int:
    """Run every variant over the same topic, print rows/s and ratios, write bench/results/bench_sink.json."""
    parser = argparse.ArgumentParser(prog="python -m bench.bench_sink")
    parser.add_argument("--quick", action="store_true", help="100,000 quotes instead of 1,000,000")
    parser.add_argument("--rows", type=int, default=None, help="number of quotes (overrides --quick)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    rows = args.rows or (100_000 if args.quick else 1_000_000)

    import pyspark

    from stock_platform.runtime.jars import postgres_jdbc_jars
    from stock_platform.runtime.kafka_broker import delete_topic, ensure_topic
    from stock_platform.runtime.services import services_up
    from stock_platform.streaming.session import build_spark_session

    base = load_settings()
    services_up(base)
    db_name, dsn = _create_database(base)
    topic = f"bench-sink-{uuid.uuid4().hex[:8]}"
    ensure_topic(base.kafka_bootstrap_servers, topic, 3)
    settings = base.replace(postgres_dsn=dsn, kafka_topic=topic)
    apply_migrations(dsn)
    jars = [str(p) for p in postgres_jdbc_jars(base.cache_dir)]
    spark = build_spark_session(settings, app_name="bench-sink", extra_jars=jars)
    spark.sparkContext.setLogLevel("ERROR")
    jdbc_url = f"jdbc:postgresql://127.0.0.1:{base.postgres_port}/{db_name}?user=stock"
    tmp = str(base.data_dir / "bench" / f"sink-{uuid.uuid4().hex[:6]}")
    rates: dict[str, float] = {}
    sink_rates: dict[str, float] = {}
    try:
        t0 = time.perf_counter()
        fill_topic(spark, settings, rows)
        print(f"filled topic {topic} with {rows:,} quotes in {time.perf_counter() - t0:.1f} s", flush=True)
        sinks = make_sinks(settings, jdbc_url, tmp)
        run_variant(spark, settings, "warm-up", sinks["parse_only"][0], tmp)  # JIT, Python workers, Kafka consumers
        for name, (sink, table) in sinks.items():
            _reset(dsn)
            seconds = run_variant(spark, settings, name, sink, tmp)
            if table:
                stored = _count(dsn, table)
                if stored != rows:
                    raise RuntimeError(f"{name}: {stored:,} rows stored, expected {rows:,}")
            rates[name] = rows / seconds
            sink_rate = rows / WRITE_SECONDS[name] if name in WRITE_SECONDS else None
            sink_rates[name] = sink_rate or 0.0
            extra = f"; write step alone {sink_rate:>10,.0f} rows/s" if sink_rate else ""
            print(f"{name:>16}: {rows:,} rows in {seconds:7.1f} s = {rates[name]:>10,.0f} rows/s end to end{extra}", flush=True)
    finally:
        spark.stop()
        _drop_database(base, db_name)
        delete_topic(base.kafka_bootstrap_servers, topic)

    figures = []
    for label, table, ours_name in (("sink", sink_rates, "our_sink"), ("end-to-end job", rates, "our_batch_path")):
        ours = table[ours_name]
        sink_label = label == "sink"
        figures += [
            figure(
                f"{label}: {ours_name} vs per_row_insert",
                ours,
                "rows/s",
                table["per_row_insert"],
                ">= 20x" if sink_label else None,
            ),
            figure(f"{label}: {ours_name} vs jdbc_append", ours, "rows/s", table["jdbc_append"], "> 1x" if sink_label else None),
            figure(f"{label}: {ours_name} vs execute_values", ours, "rows/s", table["execute_values"], None),
            figure(
                f"{label}: {ours_name} vs bare_copy (unindexed)",
                ours,
                "rows/s",
                table["bare_copy"],
                ">= 0.5x" if sink_label else None,
            ),
        ]
    figures.append(
        figure("end-to-end job: our_batch_path vs driver_path", rates["our_batch_path"], "rows/s", rates["driver_path"])
    )
    figures.append(
        figure(
            "end-to-end job: parse_only (no write) vs our_batch_path",
            rates["parse_only"],
            "rows/s",
            rates["our_batch_path"],
            None,
        )
    )
    print()
    for f in figures:
        print(
            f"{f['figure']:<58} {f['value']:>10,.0f} vs {f['baseline']:>10,.0f} rows/s  ratio {f['ratio']:6.2f}  target {f['target'] or '-'}"
        )
    versions = {
        "python": platform.python_version(), "pyspark": pyspark.__version__, "psycopg2": psycopg2.__version__.split()[0],
        "postgresql": postgres_version(base.postgres_dsn), "rows": str(rows),
    }  # fmt: skip
    path = write_results("bench_sink", figures, versions, "python -m bench.bench_sink" + (" --quick" if args.quick else ""))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
