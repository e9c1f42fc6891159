"""Daily compaction of one day of 100 symbols at one tick per second (8.64 M ticks): target <= 60 s.

Loads the day (and the 1-minute candles the stream would have built) into a
private database, then times `compact_day` for that day, old enough to be past
retention: bars from candles, verification against the raw ticks, deletion of
the verified ticks, VACUUM (ANALYZE). Baseline, measured in the same run on
the same data: one aggregate pass over the day's ticks (count, min, max per
symbol), i.e. the least any verification could cost.

    .venv/bin/python -m bench.bench_compaction [--quick]
"""

import argparse
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from importlib.metadata import version

import psycopg2
from psycopg2 import sql

from bench.results_io import figure, write_results
from stock_platform.config import load_settings
from stock_platform.orchestration.compaction import compact_day
from stock_platform.storage.migrations import apply_migrations

_LOAD_TICKS = """
INSERT INTO stock_prices (symbol, price, volume, event_time, source, producer_id, seq)
SELECT 'S' || lpad(s::text, 3, '0'),
       round((100 + s + 5 * sin(t / 600.0 + s))::numeric, 2),
       1 + (t * 7 + s) %% 100,
       %(start)s::timestamp + t * interval '1 second',
       'simulator', 'bench', s * 100000 + t
FROM generate_series(0, %(symbols)s - 1) AS s, generate_series(0, %(seconds)s - 1) AS t
"""

_LOAD_CANDLES = """
INSERT INTO stock_candles_1m (symbol, minute, open, high, low, close, volume, trade_count, first_event_time, last_event_time)
SELECT symbol, date_trunc('minute', event_time),
       (array_agg(price ORDER BY event_time))[1], max(price), min(price),
       (array_agg(price ORDER BY event_time DESC))[1],
       sum(volume), count(*), min(event_time), max(event_time)
FROM stock_prices GROUP BY symbol, date_trunc('minute', event_time)
"""

# Indexes rebuilt after the bulk load (building them once is faster than maintaining them row by row).
_INDEXES = (
    ("stock_prices_symbol_event_time_key", "ALTER TABLE stock_prices ADD CONSTRAINT stock_prices_symbol_event_time_key UNIQUE (symbol, event_time)"),
    ("idx_symbol_time", "CREATE INDEX idx_symbol_time ON stock_prices (symbol, event_time DESC)"),
    ("idx_event_time", "CREATE INDEX idx_event_time ON stock_prices (event_time DESC)"),
)  # fmt: skip


def _admin() -> psycopg2.extensions.connection:
    settings = load_settings()
    conn = psycopg2.connect(f"host=127.0.0.1 port={settings.postgres_port} user=postgres dbname=postgres")
    conn.autocommit = True
    return conn


def _load(dsn: str, day: date, symbols: int, seconds: int) -> float:
    started = time.perf_counter()
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("ALTER TABLE stock_prices DROP CONSTRAINT stock_prices_symbol_event_time_key")
        cur.execute("DROP INDEX idx_symbol_time, idx_event_time")
        cur.execute("SET maintenance_work_mem = '512MB'")
        cur.execute(_LOAD_TICKS, {"start": datetime(day.year, day.month, day.day), "symbols": symbols, "seconds": seconds})
        for _name, ddl in _INDEXES:
            cur.execute(ddl)
        cur.execute(_LOAD_CANDLES)
        # As in steady state, where autovacuum has visited the table since the ticks arrived.
        cur.execute("VACUUM (ANALYZE) stock_prices")
        cur.execute("VACUUM (ANALYZE) stock_candles_1m")
    conn.close()
    return time.perf_counter() - started


def _scan(dsn: str, day: date) -> float:
    start = datetime(day.year, day.month, day.day)
    conn = psycopg2.connect(dsn)
    started = time.perf_counter()
    with conn.cursor() as cur:
        cur.execute(
            "SELECT symbol, count(*), min(price), max(price) FROM stock_prices"
            " WHERE event_time >= %s AND event_time < %s GROUP BY symbol",
            (start, start + timedelta(days=1)),
        )
        cur.fetchall()
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


def main(argv: list[str] | None = None) -> int:
    """Load, time the baseline scan and the compaction, print and write the figures."""
    parser = argparse.ArgumentParser(prog="python -m bench.bench_compaction")
    parser.add_argument("--quick", action="store_true", help="10 symbols instead of 100 (864 k ticks)")
    args = parser.parse_args(argv)
    symbols, seconds = (10 if args.quick else 100), 86_400
    ticks = symbols * seconds
    day = datetime.now(UTC).date() - timedelta(days=30)
    name = f"bench_compaction_{uuid.uuid4().hex[:8]}"
    admin = _admin()
    with admin.cursor() as cur:
        cur.execute(sql.SQL("CREATE DATABASE {} OWNER stock").format(sql.Identifier(name)))
    dsn = f"postgresql://stock@127.0.0.1:{load_settings().postgres_port}/{name}"
    try:
        apply_migrations(dsn)
        load_s = _load(dsn, day, symbols, seconds)
        print(f"loaded {ticks:,} ticks of {symbols} symbols for {day} in {load_s:.1f} s", flush=True)
        scan_s = _scan(dsn, day)
        report = compact_day(dsn, day, retention_days=7)
        total = sum(report.seconds.values())
        if report.bars != symbols or report.verified != symbols or report.ticks_deleted != ticks:
            print(f"compaction result wrong: {report}", file=sys.stderr)
            return 1
    finally:
        with admin.cursor() as cur:
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.close()
    figures = [
        figure(
            "compaction of one day (bars + verify + delete + vacuum)", total, "s", baseline=scan_s, target="<= 60 s (full size)"
        ),
        figure("compaction throughput", ticks / total, "ticks/s", baseline=ticks / scan_s),
        figure("phase: bars from candles, verified against ticks", report.seconds["bars"], "s", baseline=scan_s),
        figure("phase: delete verified ticks", report.seconds["delete"], "s", baseline=scan_s),
        figure("phase: VACUUM (ANALYZE)", report.seconds["vacuum"], "s", baseline=scan_s),
    ]
    print(f"{'figure':58} {'value':>12} {'baseline':>10} {'ratio':>7}  target")
    for f in figures:
        print(f"{f['figure']:58} {f['value']:>12,.2f} {f['baseline'] or 0:>10,.2f} {f['ratio'] or 0:>7.2f}  {f['target'] or ''}")
    print(f"baseline = one aggregate scan of the day's {ticks:,} ticks: {scan_s:.2f} s")
    command = "python -m bench.bench_compaction" + (" --quick" if args.quick else "")
    versions = {"postgresql-server": _server_version(), "psycopg2": version("psycopg2-binary"), "dagster": version("dagster")}
    path = write_results("bench_compaction", figures, versions, command)
    print(f"wrote {path}")
    return 0


def _server_version() -> str:
    conn = _admin()
    with conn.cursor() as cur:
        cur.execute("SHOW server_version")
        out = cur.fetchone()[0]
    conn.close()
    return out


if __name__ == "__main__":
    sys.exit(main())
