"""The daily-partitioned `stock_daily_bars` asset, its job and its nightly schedule.

One partition is one UTC day. Materialising partition D runs
`compaction.compact_day` (bars from candles, retention of verified raw ticks of
D and of any earlier day past the retention window, VACUUM (ANALYZE)); a backfill over many days runs one partition per run, so
the UI shows each day's progress and a failed day can be retried alone.
"""

import logging
from datetime import date

import dagster as dg

from stock_platform.config import load_settings
from stock_platform.orchestration.assets import stock_candles_1m, stock_prices, table_metadata
from stock_platform.orchestration.compaction import compact_day
from stock_platform.orchestration.resources import PostgresResource

__all__ = ["DAILY_PARTITIONS", "CompactionConfig", "compaction_job", "compaction_schedule", "stock_daily_bars"]

logger = logging.getLogger(__name__)

# The first day a backfill can reach; earlier market data is out of the platform's scope.
DAILY_PARTITIONS = dg.DailyPartitionsDefinition(start_date="2024-01-01", timezone="UTC")


class CompactionConfig(dg.Config):
    """Run configuration of a compaction; leave `retention_days` unset to use STOCK_RETENTION_DAYS."""

    retention_days: int | None = None


@dg.asset(
    partitions_def=DAILY_PARTITIONS,
    deps=[stock_candles_1m, stock_prices],
    group_name="daily",
    kinds={"postgres"},
    description=(
        "Daily OHLCV bars per symbol built from the 1-minute candles (daily compaction). A bar is verified when the "
        "day's raw ticks agree with it; raw ticks older than the retention window are removed for verified days only."
    ),
)
def stock_daily_bars(
    context: dg.AssetExecutionContext, config: CompactionConfig, postgres: PostgresResource
) -> dg.MaterializeResult:
    """Compact the partition's day and report the bars, the verification and what retention removed."""
    day = date.fromisoformat(context.partition_key)
    retention = config.retention_days if config.retention_days is not None else load_settings().retention_days
    applied = postgres.migrate()
    if applied:
        context.log.info(f"applied migrations: {', '.join(applied)}")
    report = compact_day(postgres.dsn, day, retention_days=retention)
    context.log.info(
        f"day {day}: {report.bars} bars ({report.verified} verified), {report.ticks_deleted} raw ticks removed; "
        f"{len(report.swept_days)} older expired day(s) swept, {report.swept_ticks_deleted} raw ticks removed there; "
        f"seconds {report.seconds}"
    )
    metadata = table_metadata(postgres, "stock_daily_bars", "day")
    metadata.update(
        {
            "day": dg.MetadataValue.text(day.isoformat()),
            "bars": dg.MetadataValue.int(report.bars),
            "bars_verified": dg.MetadataValue.int(report.verified),
            "bars_unverified": dg.MetadataValue.int(report.unverified),
            "retention_days": dg.MetadataValue.int(retention),
            "retention_cutoff": dg.MetadataValue.text(str(report.retention_cutoff)),
            "raw_ticks_deleted": dg.MetadataValue.int(report.ticks_deleted),
            "raw_ticks_kept_unverified": dg.MetadataValue.int(report.ticks_kept_unverified),
            "older_days_swept": dg.MetadataValue.json([d.isoformat() for d in report.swept_days]),
            "older_raw_ticks_deleted": dg.MetadataValue.int(report.swept_ticks_deleted),
            "older_raw_ticks_kept_unverified": dg.MetadataValue.int(report.swept_ticks_kept_unverified),
            "task_ledger_rows_deleted": dg.MetadataValue.int(report.task_ledger_rows_deleted),
            "seconds": dg.MetadataValue.json(report.seconds),
        }
    )
    return dg.MaterializeResult(metadata=metadata)


compaction_job = dg.define_asset_job(
    "compaction_job",
    selection=[stock_daily_bars],
    description="Daily compaction of one day: bars from candles, retention of verified raw ticks, VACUUM (ANALYZE).",
)

# 00:30 UTC: yesterday's candles are complete (the stream trails by one trigger) and the market is closed.
compaction_schedule = dg.build_schedule_from_partitioned_job(
    compaction_job, hour_of_day=0, minute_of_hour=30, default_status=dg.DefaultScheduleStatus.RUNNING
)
