"""The platform's data as Dagster assets, in the order of the seed's diagram.

Kafka topic `stock-quotes` (observable source: end offsets and the stream's lag)
-> `stock_prices` and `dead_letters` (written by the Spark stream job)
-> `stock_candles_1m` (upserted by the same job) -> `stock_daily_bars` (daily
compaction, in `orchestration.daily`). Materialising a table asset applies the
pending migrations (which create it) and reports its row count, newest event
time and size on disk; the rows themselves are written by the stream job, whose
runs report `stock_prices` materialisations through Dagster Pipes.
"""

import logging
from typing import Any

import dagster as dg
from psycopg2 import sql

from stock_platform.orchestration.resources import KafkaResource, PostgresResource
from stock_platform.storage.stream_offsets import COMMITTED_OFFSETS_SQL, merge_committed_offsets

__all__ = [
    "STOCK_QUOTES_KEY",
    "dead_letters",
    "observe_topic_job",
    "observe_topic_schedule",
    "stock_candles_1m",
    "stock_prices",
    "stock_quotes_topic",
    "stream_lag",
    "table_metadata",
]

logger = logging.getLogger(__name__)

STOCK_QUOTES_KEY = dg.AssetKey(["kafka", "stock_quotes"])


def stream_lag(end_offsets: dict[int, int], committed: dict[int, int]) -> dict[int, int]:
    """Per-partition lag: messages published but not yet covered by a committed stream batch."""
    return {p: max(0, end - committed.get(p, 0)) for p, end in end_offsets.items()}


def _committed_offsets(postgres: PostgresResource, topic: str, batches: int = 200) -> dict[int, int]:
    """The stream job's next offset per partition of `topic`, merged over its recent batches (see storage.stream_offsets)."""
    with postgres.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('stream_batches') IS NOT NULL")
        if not cur.fetchone()[0]:
            return {}
        cur.execute(COMMITTED_OFFSETS_SQL, {"topic": topic, "batches": batches})
        rows = cur.fetchall()
    return merge_committed_offsets([raw for raw, _ in rows], topic)


@dg.observable_source_asset(
    key=STOCK_QUOTES_KEY,
    group_name="kafka",
    description=(
        "Kafka topic `stock-quotes` (3 partitions, keyed by symbol): JSON quotes published by the producer "
        "from Finnhub or the simulated market. Observations report end offsets and the stream job's lag."
    ),
)
def stock_quotes_topic(kafka: KafkaResource, postgres: PostgresResource) -> dg.ObserveResult:
    """Observe the topic: end offset per partition, total published, and lag behind the stream's last batch."""
    end = kafka.end_offsets()
    committed = _committed_offsets(postgres, kafka.topic)
    lag = stream_lag(end, committed)
    total = sum(end.values())
    return dg.ObserveResult(
        data_version=dg.DataVersion(str(total)),
        metadata={
            "topic": kafka.topic,
            "partitions": len(end),
            "end_offsets": dg.MetadataValue.json({str(p): o for p, o in sorted(end.items())}),
            "messages_published": total,
            "consumer_lag": sum(lag.values()),
            "consumer_lag_by_partition": dg.MetadataValue.json({str(p): n for p, n in sorted(lag.items())}),
        },
    )


def table_metadata(postgres: PostgresResource, table: str, time_column: str | None) -> dict[str, Any]:
    """Row count, newest value of the time column and total size on disk (table + indexes + TOAST)."""
    ident = sql.Identifier(table)
    with postgres.connect() as conn, conn.cursor() as cur:
        cur.execute(sql.SQL("SELECT count(*) FROM {}").format(ident))
        rows = cur.fetchone()[0]
        newest = None
        if time_column:
            cur.execute(sql.SQL("SELECT max({}) FROM {}").format(sql.Identifier(time_column), ident))
            newest = cur.fetchone()[0]
        cur.execute("SELECT pg_total_relation_size(%s::regclass)", (table,))
        size = cur.fetchone()[0]
    return {
        "dagster/row_count": dg.MetadataValue.int(rows),
        f"newest_{time_column}": dg.MetadataValue.text(newest.isoformat() if newest is not None else "(empty)"),
        "size_bytes": dg.MetadataValue.int(size),
        "size_mb": dg.MetadataValue.float(round(size / 1_048_576, 2)),
        "table": dg.MetadataValue.text(table),
    }


def _materialize_table(
    context: dg.AssetExecutionContext, postgres: PostgresResource, table: str, time_column: str
) -> dg.MaterializeResult:
    applied = postgres.migrate()
    if applied:
        context.log.info(f"applied migrations: {', '.join(applied)}")
    metadata = table_metadata(postgres, table, time_column)
    metadata["migrations_applied_now"] = dg.MetadataValue.text(", ".join(applied) or "(none: schema up to date)")
    return dg.MaterializeResult(metadata=metadata)


@dg.asset(
    deps=[STOCK_QUOTES_KEY],
    group_name="postgres",
    kinds={"postgres", "spark"},
    description=(
        "Raw ticks, one row per (symbol, event_time), the seed's table plus provenance columns. Written by the "
        "Spark stream job (`streaming_job`) in idempotent micro-batches; compaction removes verified old days."
    ),
)
def stock_prices(context: dg.AssetExecutionContext, postgres: PostgresResource) -> dg.MaterializeResult:
    """Apply migrations and report row count, newest event time and size of `stock_prices`."""
    return _materialize_table(context, postgres, "stock_prices", "event_time")


@dg.asset(
    deps=[STOCK_QUOTES_KEY],
    group_name="postgres",
    kinds={"postgres", "spark"},
    description="Records from the topic that broke the message contract, with the reason; written by the stream job.",
)
def dead_letters(context: dg.AssetExecutionContext, postgres: PostgresResource) -> dg.MaterializeResult:
    """Apply migrations and report row count, newest arrival and size of `dead_letters`."""
    return _materialize_table(context, postgres, "dead_letters", "received_at")


@dg.asset(
    deps=[stock_prices],
    group_name="postgres",
    kinds={"postgres", "spark"},
    description="1-minute OHLCV candles per symbol, upserted by the stream job from the ticks each batch inserts.",
)
def stock_candles_1m(context: dg.AssetExecutionContext, postgres: PostgresResource) -> dg.MaterializeResult:
    """Apply migrations and report row count, newest minute and size of `stock_candles_1m`."""
    return _materialize_table(context, postgres, "stock_candles_1m", "minute")


observe_topic_job = dg.define_asset_job(
    "observe_stock_quotes",
    selection=[STOCK_QUOTES_KEY],
    description="Observe the Kafka topic: end offsets and the stream job's lag.",
)
# Every 5 minutes: the lag history in the asset's observations is what an operator looks at first.
observe_topic_schedule = dg.ScheduleDefinition(
    job=observe_topic_job, cron_schedule="*/5 * * * *", default_status=dg.DefaultScheduleStatus.RUNNING
)
