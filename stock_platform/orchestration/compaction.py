"""Daily compaction of one UTC day: daily OHLCV bars from the 1-minute candles, then retention of raw ticks.

For day D it (1) rebuilds every symbol's bar from that day's candles and marks
it verified when the raw ticks, while still present, agree with it (same
count, lowest and highest price); (2) if D is older than the retention window,
deletes D's raw ticks of the symbols whose bars are verified and still agree
with them, and nothing else, and marks those (symbol, day)s closed so the
stream job refuses their ticks from then on instead of counting them twice;
(3) sweeps every earlier day that is past the retention window and still holds
raw ticks the same way (rebuild and re-verify its bars, delete its verified
ticks), because the nightly run compacts yesterday, which is never old enough
itself; (4) runs VACUUM (ANALYZE) so the freed space is reused and the planner
sees the new row counts. Every step is idempotent: compacting D twice leaves
the same bars and the same ticks. The Dagster asset `stock_daily_bars` and
`bench/bench_compaction.py` both call `compact_day`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import psycopg2

from stock_platform.storage.closed_days import lock_day_for_closing
from stock_platform.storage.postgres import connect

__all__ = [
    "CompactionReport",
    "build_daily_bars",
    "compact_day",
    "delete_verified_ticks",
    "expired_days_with_ticks",
    "sweep_expired_days",
    "vacuum_tables",
]

logger = logging.getLogger(__name__)

# The day's candles aggregated per symbol, beside the day's raw ticks (count, min, max) when any remain.
_BARS_SQL = """
CREATE TEMP TABLE _day_bars ON COMMIT DROP AS
WITH candles AS (
    SELECT symbol,
           (array_agg(open ORDER BY minute))[1] AS open,
           max(high) AS high,
           min(low) AS low,
           (array_agg(close ORDER BY minute DESC))[1] AS close,
           coalesce(sum(volume), 0) AS volume,
           sum(trade_count) AS trade_count,
           count(*) AS candle_count
    FROM stock_candles_1m
    WHERE minute >= %(start)s AND minute < %(end)s
    GROUP BY symbol
), ticks AS (
    SELECT symbol, count(*) AS n, min(price) AS lo, max(price) AS hi
    FROM stock_prices
    WHERE event_time >= %(start)s AND event_time < %(end)s
    GROUP BY symbol
)
SELECT c.*, t.n AS tick_count,
       (t.n = c.trade_count AND t.lo = c.low AND t.hi = c.high) AS ticks_agree
FROM candles c LEFT JOIN ticks t USING (symbol)
"""

# Without raw ticks left to compare (already removed), a bar keeps the verdict it had.
_UPSERT_SQL = """
INSERT INTO stock_daily_bars AS b
    (symbol, day, open, high, low, close, volume, trade_count, candle_count, verified, built_at)
SELECT symbol, %(day)s, open, high, low, close, volume, trade_count, candle_count,
       coalesce(ticks_agree, FALSE), now() AT TIME ZONE 'UTC'
FROM _day_bars
ON CONFLICT (symbol, day) DO UPDATE SET
    open = EXCLUDED.open, high = EXCLUDED.high, low = EXCLUDED.low, close = EXCLUDED.close,
    volume = EXCLUDED.volume, trade_count = EXCLUDED.trade_count, candle_count = EXCLUDED.candle_count,
    verified = CASE
        WHEN (SELECT d.tick_count FROM _day_bars d WHERE d.symbol = EXCLUDED.symbol) IS NULL
        THEN b.verified AND b.trade_count = EXCLUDED.trade_count AND b.high = EXCLUDED.high AND b.low = EXCLUDED.low
        ELSE EXCLUDED.verified
    END,
    built_at = EXCLUDED.built_at
"""

# Under the day's lock, so no writer adds a tick meanwhile: a verified bar whose ticks still agree with it
# (a tick stored after the bar was built makes them disagree: that symbol's day waits for the next run).
_DELETE_SQL = """
DELETE FROM stock_prices p
USING stock_daily_bars b, (
    SELECT symbol, count(*) AS n, min(price) AS lo, max(price) AS hi FROM stock_prices
    WHERE event_time >= %(start)s AND event_time < %(end)s GROUP BY symbol
) t
WHERE b.day = %(day)s AND b.verified
  AND t.symbol = b.symbol AND t.n = b.trade_count AND t.lo = b.low AND t.hi = b.high
  AND p.symbol = b.symbol
  AND p.event_time >= %(start)s AND p.event_time < %(end)s
"""

# The verified (symbol, day)s whose ticks were just removed are closed: the stream job refuses their ticks from
# now on, since ON CONFLICT can no longer recognise a replayed one (storage/closed_days.py).
_CLOSE_SQL = """
UPDATE stock_daily_bars b SET ticks_removed_at = now() AT TIME ZONE 'UTC'
WHERE b.day = %(day)s AND b.verified AND b.ticks_removed_at IS NULL
  AND NOT EXISTS (SELECT 1 FROM stock_prices p WHERE p.symbol = b.symbol AND p.event_time >= %(start)s AND p.event_time < %(end)s)
"""


@dataclass
class CompactionReport:
    """What compacting one day did; becomes the materialisation metadata of the partition."""

    day: date
    bars: int = 0
    verified: int = 0
    unverified: int = 0
    removed_stale_bars: int = 0
    retention_cutoff: date | None = None
    ticks_deleted: int = 0
    ticks_kept_unverified: int = 0
    # Earlier days past the retention window that still held raw ticks, and what the sweep removed from them.
    swept_days: list[date] = field(default_factory=list)
    swept_ticks_deleted: int = 0
    swept_ticks_kept_unverified: int = 0
    # Span-ledger rows of the stream's tasks older than the window: only a batch's re-run ever reads them.
    task_ledger_rows_deleted: int = 0
    seconds: dict[str, float] = field(default_factory=dict)


def _bounds(day: date) -> dict[str, object]:
    start = datetime(day.year, day.month, day.day)
    return {"day": day, "start": start, "end": start + timedelta(days=1)}


def build_daily_bars(conn: psycopg2.extensions.connection, day: date, report: CompactionReport) -> None:
    """Rebuild day `day`'s bars from its candles in one transaction, dropping bars whose candles are gone."""
    params = _bounds(day)
    with conn, conn.cursor() as cur:
        cur.execute(_BARS_SQL, params)
        cur.execute("DELETE FROM stock_daily_bars WHERE day = %(day)s AND symbol NOT IN (SELECT symbol FROM _day_bars)", params)
        report.removed_stale_bars = cur.rowcount
        cur.execute(_UPSERT_SQL, params)
        cur.execute("SELECT count(*), count(*) FILTER (WHERE verified) FROM stock_daily_bars WHERE day = %(day)s", params)
        report.bars, report.verified = cur.fetchone()
        report.unverified = report.bars - report.verified


def delete_verified_ticks(
    conn: psycopg2.extensions.connection, day: date, retention_days: int, today: date, report: CompactionReport
) -> None:
    """Delete `day`'s raw ticks of verified symbols, only when `day` is older than the retention window."""
    cutoff = today - timedelta(days=retention_days)
    report.retention_cutoff = cutoff
    if day >= cutoff:
        logger.info("compaction day=%s within retention (cutoff %s): raw ticks kept", day, cutoff)
        return
    params = _bounds(day)
    with conn, conn.cursor() as cur:
        # Writers that already looked at this day commit first; later ones see it closed and refuse its ticks.
        lock_day_for_closing(cur, day)
        cur.execute(_DELETE_SQL, params)
        report.ticks_deleted = cur.rowcount
        cur.execute(_CLOSE_SQL, params)
        cur.execute("SELECT count(*) FROM stock_prices WHERE event_time >= %(start)s AND event_time < %(end)s", params)
        report.ticks_kept_unverified = cur.fetchone()[0]


def expired_days_with_ticks(conn: psycopg2.extensions.connection, cutoff: date, exclude: date) -> list[date]:
    """UTC days before `cutoff` (other than `exclude`) that still hold raw ticks, oldest first.

    One index probe per day from the oldest tick on, so a history already compacted costs a single probe.
    """
    with conn, conn.cursor() as cur:
        cur.execute(
            "SELECT min(event_time) FROM stock_prices WHERE event_time < %s", (datetime(cutoff.year, cutoff.month, cutoff.day),)
        )
        oldest = cur.fetchone()[0]
        days: list[date] = []
        day = oldest.date() if oldest else cutoff
        while day < cutoff:
            if day != exclude:
                cur.execute(
                    "SELECT EXISTS (SELECT 1 FROM stock_prices WHERE event_time >= %(start)s AND event_time < %(end)s)",
                    _bounds(day),
                )
                if cur.fetchone()[0]:
                    days.append(day)
            day += timedelta(days=1)
    return days


def sweep_expired_days(
    conn: psycopg2.extensions.connection, day: date, retention_days: int, today: date, report: CompactionReport
) -> None:
    """Rebuild, re-verify and apply retention to every earlier expired day that still holds raw ticks."""
    cutoff = today - timedelta(days=retention_days)
    for old in expired_days_with_ticks(conn, cutoff, exclude=day):
        sub = CompactionReport(day=old)
        build_daily_bars(conn, old, sub)
        delete_verified_ticks(conn, old, retention_days, today, sub)
        report.swept_days.append(old)
        report.swept_ticks_deleted += sub.ticks_deleted
        report.swept_ticks_kept_unverified += sub.ticks_kept_unverified
        logger.info(
            "compaction sweep day=%s bars=%d verified=%d ticks_deleted=%d", old, sub.bars, sub.verified, sub.ticks_deleted
        )


def prune_task_ledger(conn: psycopg2.extensions.connection, retention_days: int, today: date, report: CompactionReport) -> None:
    """Delete `stream_task_commits` rows older than the retention window (a re-run task needs only its batch's)."""
    cutoff = datetime(today.year, today.month, today.day) - timedelta(days=retention_days)
    with conn, conn.cursor() as cur:
        cur.execute("DELETE FROM stream_task_commits WHERE committed_at < %s", (cutoff,))
        report.task_ledger_rows_deleted = cur.rowcount


def vacuum_tables(conn: psycopg2.extensions.connection) -> None:
    """VACUUM (ANALYZE) the tick table and the bars: reclaims deleted ticks for reuse, refreshes statistics."""
    previous = conn.autocommit
    conn.autocommit = True  # VACUUM cannot run inside a transaction block
    try:
        with conn.cursor() as cur:
            # Its four indexes are vacuumed by parallel workers (the table's heap pass stays serial).
            cur.execute("VACUUM (ANALYZE, PARALLEL 2) stock_prices")
            cur.execute("VACUUM (ANALYZE) stock_daily_bars")
    finally:
        conn.autocommit = previous


def compact_day(dsn: str, day: date, retention_days: int, today: date | None = None) -> CompactionReport:
    """Compact one UTC day: bars, retention of verified raw ticks (this day and earlier expired ones), VACUUM (ANALYZE)."""
    today = today or datetime.now(UTC).date()
    report = CompactionReport(day=day)
    conn = connect(dsn, "stock-platform-compaction")
    try:
        for name, step in (
            ("bars", lambda: build_daily_bars(conn, day, report)),
            ("delete", lambda: delete_verified_ticks(conn, day, retention_days, today, report)),
            ("sweep", lambda: sweep_expired_days(conn, day, retention_days, today, report)),
            ("task_ledger", lambda: prune_task_ledger(conn, retention_days, today, report)),
            ("vacuum", lambda: vacuum_tables(conn)),
        ):
            started = time.perf_counter()
            step()
            report.seconds[name] = round(time.perf_counter() - started, 3)
    finally:
        conn.close()
    logger.info(
        "compaction day=%s bars=%d verified=%d ticks_deleted=%d swept_days=%d swept_ticks_deleted=%d seconds=%s",
        day, report.bars, report.verified, report.ticks_deleted, len(report.swept_days), report.swept_ticks_deleted,
        report.seconds,
    )  # fmt: skip
    return report
