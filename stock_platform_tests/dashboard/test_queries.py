"""The query modules directly against the session database: candle merging, fallbacks, connection recovery."""

from __future__ import annotations

from datetime import datetime, timedelta

import psycopg2
import pytest

from stock_platform.dashboard import queries
from stock_platform.dashboard.cache import clear_caches
from stock_platform.dashboard.connections import DataUnavailable, pg_cursor, reset_connections
from stock_platform.dashboard.symbols import RANGES
from stock_platform_tests.dashboard.seed import build_candles, insert_ticks

pytestmark = pytest.mark.integration


@pytest.fixture
def dsn(clean_tables: str):
    clear_caches()
    yield clean_tables
    clear_caches()
    reset_connections()


def test_fifteen_minute_buckets_merge_open_high_low_close_and_volume(dsn: str) -> None:
    end = datetime(2026, 3, 2, 10, 29, 50)
    # One tick a minute for 30 minutes from 10:00: prices 100.00 .. 100.29, volume 100 each.
    insert_ticks(dsn, "AAPL", count=30, end=end, step_s=60, start_price=100.0, drift=0.01)
    build_candles(dsn, "AAPL")
    frame, label = queries.candles(dsn, "AAPL", RANGES["5D"])
    assert "15-minute" in label
    assert list(frame["time"]) == [datetime(2026, 3, 2, 10, 0), datetime(2026, 3, 2, 10, 15)]
    first = frame.iloc[0]
    assert (first["open"], first["high"], first["low"], first["close"]) == pytest.approx((100.0, 100.14, 100.0, 100.14))
    assert list(frame["volume"]) == [1500, 1500]


def test_range_is_anchored_on_the_newest_candle_not_the_clock(dsn: str) -> None:
    old = datetime(2020, 1, 6, 15, 0, 0)
    insert_ticks(dsn, "MSFT", count=120, end=old, step_s=60)
    build_candles(dsn, "MSFT")
    frame, _ = queries.candles(dsn, "MSFT", RANGES["1H"])
    assert len(frame) == 60
    assert frame["time"].iloc[-1] == old.replace(second=0)


def test_latest_quotes_and_recent_ticks_per_symbol(dsn: str) -> None:
    end = datetime(2026, 3, 2, 12, 0, 0)
    insert_ticks(dsn, "AAPL", count=100, end=end, step_s=10, start_price=50.0)
    insert_ticks(dsn, "NVDA", count=3, end=end - timedelta(days=1), step_s=10, start_price=70.0)
    latest = queries.latest_quotes(dsn, ("AAPL", "NVDA", "ZZZZ"))
    assert dict(zip(latest["symbol"], latest["price"], strict=True)) == {
        "AAPL": pytest.approx(54.95),
        "NVDA": pytest.approx(70.1),
    }
    recent = queries.recent_ticks(dsn, ("AAPL", "NVDA"))
    counts = recent.groupby("symbol").size().to_dict()
    assert counts == {"AAPL": 31, "NVDA": 3}  # five minutes of 10-second ticks, inclusive


def test_pool_recovers_after_the_server_drops_its_connections(dsn: str) -> None:
    with pg_cursor(dsn) as cur:
        cur.execute("SELECT 1")
    admin = psycopg2.connect(dsn)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = 'stock-platform-dashboard' AND datname = current_database()"
        )
    admin.close()
    with pytest.raises(DataUnavailable) as failed:
        with pg_cursor(dsn) as cur:
            cur.execute("SELECT 1")
    assert failed.value.service == "PostgreSQL"
    with pg_cursor(dsn) as cur:  # the dead connection was dropped: the next query gets a fresh one
        cur.execute("SELECT 2")
        assert cur.fetchone() == (2,)
