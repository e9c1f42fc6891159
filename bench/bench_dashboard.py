"""Dashboard query latency over 10 million ticks of 100 symbols: `python -m bench.bench_dashboard [--quick]`.

Seeds its own database (`bench_dashboard`, dropped and re-created) with a week
of ticks generated in SQL, builds 1-minute candles and daily bars from them by
aggregation, and seeds Redis hot data under a private key prefix. Then times
each page's queries uncached (the TTL cache is bypassed) and prints p50/p95
beside a naive baseline run on the same data: per-key Redis round trips for
the watchlist, aggregating raw ticks instead of reading candles, a full-table
GROUP BY instead of the loose index scan.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import psycopg2
import redis
from psycopg2 import sql

from bench.results_io import figure, postgres_version, write_results
from stock_platform.config import Settings, load_settings
from stock_platform.dashboard import health_queries, queries
from stock_platform.dashboard.connections import pg_cursor, reset_connections
from stock_platform.dashboard.hot import hot_quotes
from stock_platform.dashboard.symbols import RANGES
from stock_platform.storage.migrations import apply_migrations
from stock_platform.storage.redis_keys import RedisKeys

NAME = "bench_dashboard"
DB_NAME = "bench_dashboard"
SPAN_DAYS = 7

_TICKS_SQL = """
INSERT INTO stock_prices (symbol, price, volume, day_high, day_low, open_price, event_time, prev_close, source, producer_id, seq)
SELECT 'B' || lpad(s::text, 3, '0'),
       round((50 + 5 * s + 8 * sin(i / 900.0 + s) + 2 * sin(i / 37.0) + 0.5 * sin(i * 1.7))::numeric, 2),
       1 + (i * 7919 + s) %% 500, NULL, NULL, NULL,
       %(end)s::timestamp - make_interval(secs => (%(per)s - 1 - i) * %(step)s),
       round((50 + 5 * s)::numeric, 2), 'simulator', 'bench', i
FROM generate_series(%(lo)s, %(hi)s) AS i, generate_series(0, %(symbols)s - 1) AS s
"""

_CANDLES_SQL = """
INSERT INTO stock_candles_1m (symbol, minute, open, high, low, close, volume, trade_count, first_event_time, last_event_time)
SELECT symbol, date_trunc('minute', event_time), (array_agg(price ORDER BY event_time))[1], max(price), min(price),
       (array_agg(price ORDER BY event_time DESC))[1], coalesce(sum(volume), 0), count(*), min(event_time), max(event_time)
FROM stock_prices GROUP BY 1, 2
"""

_DAILY_SQL = """
INSERT INTO stock_daily_bars (symbol, day, open, high, low, close, volume, trade_count, candle_count, verified)
SELECT symbol, minute::date, (array_agg(open ORDER BY minute))[1], max(high), min(low),
       (array_agg(close ORDER BY minute DESC))[1], sum(volume), sum(trade_count), count(*), TRUE
FROM stock_candles_1m GROUP BY 1, 2
"""

_BATCHES_SQL = """
INSERT INTO stream_batches (query_id, batch_id, topic, start_offsets, end_offsets, rows_in, inserted, duplicates,
                            dead_letters, duration_ms, committed_at)
SELECT 'bench', b, 'stock-quotes', '{}', jsonb_build_object('stock-quotes', jsonb_build_object('0', b, '1', b, '2', b)),
       300, 298, 1, 1, 40, (now() AT TIME ZONE 'UTC') - make_interval(secs => (%(n)s - b) * 5)
FROM generate_series(1, %(n)s) AS b
"""

_DEAD_SQL = """
INSERT INTO dead_letters (topic, kafka_partition, kafka_offset, message_key, raw_payload, reason, received_at)
SELECT 'stock-quotes', o %% 3, o, 'B001', '\\x7b'::bytea, 'not valid JSON: Expecting value',
       (now() AT TIME ZONE 'UTC') - make_interval(secs => o)
FROM generate_series(1, %(n)s) AS o
"""

# Naive baselines, run on the same data.
_NAIVE_LATEST_SQL = """
SELECT DISTINCT ON (symbol) symbol, price, event_time FROM stock_prices WHERE symbol = ANY(%(symbols)s)
ORDER BY symbol, event_time DESC
"""
_NAIVE_LAST_EVENT_SQL = "SELECT symbol, max(event_time) FROM stock_prices GROUP BY symbol ORDER BY symbol"


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _admin(settings: Settings) -> psycopg2.extensions.connection:
    conn = psycopg2.connect(f"host=127.0.0.1 port={settings.postgres_port} user=postgres dbname=postgres")
    conn.autocommit = True
    return conn


def seed_postgres(settings: Settings, ticks: int, symbols: int) -> str:
    """Re-create the benchmark database and fill it; returns its DSN."""
    admin = _admin(settings)
    with admin.cursor() as cur:
        cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DB_NAME)))
        cur.execute(sql.SQL("CREATE DATABASE {} OWNER stock").format(sql.Identifier(DB_NAME)))
    admin.close()
    dsn = f"postgresql://stock@127.0.0.1:{settings.postgres_port}/{DB_NAME}"
    apply_migrations(dsn)
    per = ticks // symbols
    step = SPAN_DAYS * 86400 / per
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    started = time.perf_counter()
    with conn.cursor() as cur:
        cur.execute("SELECT (now() AT TIME ZONE 'UTC')::timestamp(0)")
        end = cur.fetchone()[0]
        chunk = max(1, 1_000_000 // symbols)
        for lo in range(0, per, chunk):
            hi = min(per, lo + chunk) - 1
            cur.execute(_TICKS_SQL, {"end": end, "per": per, "step": step, "lo": lo, "hi": hi, "symbols": symbols})
            _log(f"  ticks {(hi + 1) * symbols:,}/{per * symbols:,} ({time.perf_counter() - started:.0f} s)")
        cur.execute(_CANDLES_SQL)
        cur.execute(_DAILY_SQL)
        cur.execute(_BATCHES_SQL, {"n": 10_000})
        cur.execute(_DEAD_SQL, {"n": 10_000})
        cur.execute("VACUUM ANALYZE")
        cur.execute("SELECT (SELECT count(*) FROM stock_prices), (SELECT count(*) FROM stock_candles_1m)")
        n_ticks, n_candles = cur.fetchone()
    conn.close()
    _log(f"  seeded {n_ticks:,} ticks, {n_candles:,} candles in {time.perf_counter() - started:.0f} s")
    return dsn


def seed_redis(settings: Settings, prefix: str, symbols: list[str]) -> None:
    """A `latest` hash and 60 sparkline ticks per symbol, as the stream job keeps them."""
    keys = RedisKeys(prefix)
    client = redis.Redis.from_url(settings.redis_url)
    now_ms = int(time.time() * 1000)
    pipe = client.pipeline(transaction=False)
    for i, symbol in enumerate(symbols):
        price = 50.0 + 5 * i
        pipe.hset(keys.latest(symbol), mapping={
            "symbol": symbol, "price": price, "prev_close": price - 1, "event_time_ms": now_ms, "source": "simulator",
            "volume": 100, "day_high": price + 1, "day_low": price - 2, "open_price": price, "updated_ms": now_ms,
        })  # fmt: skip
        for k in range(60):
            t = now_ms - 5000 * (59 - k)
            pipe.zadd(keys.ticks(symbol), {json.dumps({"t": t, "p": price + k / 100, "v": 10}): t})
        pipe.expire(keys.latest(symbol), 3600)
        pipe.expire(keys.ticks(symbol), 3600)
    pipe.execute()
    client.close()


def drop_redis(settings: Settings, prefix: str) -> None:
    """Delete every key under the benchmark's private prefix."""
    client = redis.Redis.from_url(settings.redis_url)
    batch = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if batch:
        client.delete(*batch)
    client.close()


def _time(func: Callable[[], Any], runs: int) -> tuple[float, float]:
    """(p50, p95) in milliseconds of `runs` calls after two warm-up calls."""
    for _ in range(2):
        func()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        func()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(round(0.95 * (len(samples) - 1))))]


def _naive_redis(url: str, prefix: str, symbols: tuple[str, ...]) -> Callable[[], Any]:
    """The same reads and parsing as `hot_quotes`, but one round trip per key and one JSON parse per tick."""
    client = redis.Redis.from_url(url, decode_responses=True)
    keys = RedisKeys(prefix)

    def run() -> list[Any]:
        out = []
        for s in symbols:
            latest, members = client.hgetall(keys.latest(s)), client.zrange(keys.ticks(s), 0, -1)
            out.append((latest, [json.loads(m) for m in members]))
        return out

    return run


def _sql(dsn: str, query: str, params: dict[str, Any]) -> Callable[[], Any]:
    def run() -> Any:
        with pg_cursor(dsn) as cur:
            cur.execute(query, params)
            return cur.fetchall()

    return run


def _raw(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The function under its TTL cache: the benchmark measures the query, not the cache."""
    return getattr(fn, "__wrapped__", fn)


def measure(settings: Settings, dsn: str, prefix: str, symbols: list[str], runs: int) -> list[dict[str, Any]]:
    """Every figure: p50 and p95 of each page's queries, beside its naive baseline."""
    url = settings.redis_url
    watch8, all_syms, one = tuple(symbols[:8]), tuple(symbols), symbols[len(symbols) // 2]
    from_ticks = queries._CANDLES_FROM_TICKS_SQL
    origin = queries._ORIGIN

    def ticks_params(key: str, bucket: timedelta | None = None) -> dict[str, Any]:
        r = RANGES[key]
        return {"symbol": one, "span": r.span, "bucket": bucket or r.bucket, "origin": origin}

    cases: list[tuple[str, Callable[[], Any], Callable[[], Any] | None, str | None, str]] = [
        ("overview: watchlist from Redis, 8 symbols", lambda: hot_quotes(url, prefix, watch8),
         _naive_redis(url, prefix, watch8), "p95 <= 5 ms", "a round trip per key"),
        ("overview: watchlist from Redis, 100 symbols", lambda: hot_quotes(url, prefix, all_syms),
         _naive_redis(url, prefix, all_syms), None, "a round trip per key"),
        ("overview: PostgreSQL fallback, 8 symbols",
         lambda: (_raw(queries.latest_quotes)(dsn, watch8), _raw(queries.recent_ticks)(dsn, watch8)),
         _sql(dsn, _NAIVE_LATEST_SQL, {"symbols": list(watch8)}), None, "DISTINCT ON over the symbols' rows"),
    ]  # fmt: skip
    for key in RANGES:
        target = "p95 <= 50 ms" if key == "1D" else None
        cases.append((f"symbol view: {key} candles", lambda k=key: _raw(queries.candles)(dsn, one, RANGES[k]),
                      _sql(dsn, from_ticks, ticks_params(key)), target, "aggregating raw ticks"))  # fmt: skip
    cases += [
        ("symbol view: latest 50 ticks", lambda: _raw(queries.latest_ticks)(dsn, one, 50), None, None, ""),
        ("compare: 4 symbols, 1D", lambda: [_raw(queries.candles)(dsn, s, RANGES["1D"]) for s in symbols[:4]],
         lambda: [_sql(dsn, from_ticks, {**ticks_params("1D"), "symbol": s})() for s in symbols[:4]],
         None, "aggregating raw ticks"),
        ("health: last event per symbol", lambda: _raw(health_queries.last_event_per_symbol)(dsn),
         _sql(dsn, _NAIVE_LAST_EVENT_SQL, {}), None, "GROUP BY over every tick"),
        ("health: rows per minute", lambda: _raw(health_queries.rows_per_minute)(dsn, 30), None, None, ""),
        ("health: committed offsets", lambda: _raw(health_queries.committed_offsets)(dsn, "stock-quotes"), None, None, ""),
        ("health: dead letters", lambda: _raw(health_queries.dead_letter_summary)(dsn, 10), None, None, ""),
    ]  # fmt: skip
    figures = []
    for name, func, naive, target, how in cases:
        p50, p95 = _time(func, runs)
        b50, b95 = _time(naive, max(5, runs // 10)) if naive else (None, None)
        for label, value, base in (("p50", p50, b50), ("p95", p95, b95)):
            t = target if label == "p95" else None
            figures.append(figure(f"{name} {label}", round(value, 3), "ms", None if base is None else round(base, 3), t))
        shown = f"baseline ({how}) p50 {b50:8.2f} p95 {b95:8.2f} ms  ratio p95 {p95 / b95:6.3f}" if naive else ""
        print(f"{name:48s} p50 {p50:8.2f} p95 {p95:8.2f} ms  {shown}", flush=True)
    return figures


def main(argv: list[str] | None = None) -> int:
    """Seed, measure, print and write `bench/results/bench_dashboard.json`."""
    parser = argparse.ArgumentParser(prog="python -m bench.bench_dashboard")
    parser.add_argument("--quick", action="store_true", help="1 million ticks instead of 10 million")
    parser.add_argument("--ticks", type=int, default=0, help="ticks to seed (default 10,000,000; 1,000,000 with --quick)")
    parser.add_argument("--symbols", type=int, default=100)
    parser.add_argument("--runs", type=int, default=200, help="timed calls per query")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database afterwards")
    parser.add_argument("--reuse", action="store_true", help="measure the database a previous --keep run left")
    args = parser.parse_args(argv)
    ticks = args.ticks or (1_000_000 if args.quick else 10_000_000)
    settings = load_settings()
    symbols = [f"B{i:03d}" for i in range(args.symbols)]
    prefix = f"bench:{uuid.uuid4().hex[:8]}:"
    if args.reuse:
        dsn = f"postgresql://stock@127.0.0.1:{settings.postgres_port}/{DB_NAME}"
        ticks = _count_ticks(dsn)
        _log(f"reusing database {DB_NAME} with {ticks:,} ticks")
    else:
        _log(f"seeding {ticks:,} ticks of {args.symbols} symbols over {SPAN_DAYS} days into database {DB_NAME}")
        dsn = seed_postgres(settings, ticks, args.symbols)
    try:
        seed_redis(settings, prefix, symbols)
        load_before = os.getloadavg()[0]
        figures = measure(settings, dsn, prefix, symbols, args.runs)
        # Other work on the machine shows up in p95: keep the load beside the figures.
        load = [
            figure("load average (1 min) before timing", round(load_before, 2), "processes"),
            figure("load average (1 min) after timing", round(os.getloadavg()[0], 2), "processes"),
        ]
        figures = [figure("ticks seeded", ticks, "rows"), *load, *figures]
    finally:
        drop_redis(settings, prefix)
        reset_connections()
        if not args.keep:
            admin = _admin(settings)
            with admin.cursor() as cur:
                cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DB_NAME)))
            admin.close()
    import pandas
    import psycopg2 as pg
    import redis as redis_py

    versions = {"postgresql": postgres_version(settings.postgres_dsn), "redis-py": redis_py.__version__, "psycopg2": pg.__version__,
                "pandas": pandas.__version__}  # fmt: skip
    command = "python -m bench.bench_dashboard" + " ".join(["", *(argv if argv is not None else sys.argv[1:])]).rstrip()
    path = write_results(NAME, figures, versions, command)
    _log(f"wrote {path}")
    return 0


def _count_ticks(dsn: str) -> int:
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM stock_prices")
            return int(cur.fetchone()[0])
    finally:
        conn.close()


if __name__ == "__main__":
    sys.exit(main())
