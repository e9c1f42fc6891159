"""The symbol view page: candlesticks, overlays, ranges, latest ticks, unknown symbols, PostgreSQL down."""

from __future__ import annotations

from datetime import timedelta

import pytest

from stock_platform_tests.dashboard.conftest import free_port, plotly_figures, texts
from stock_platform_tests.dashboard.seed import build_candles, insert_ticks, now_utc, seed_daily_bars

pytestmark = pytest.mark.integration


def _figure(at) -> dict:
    figures = plotly_figures(at)
    assert figures, "no plotly chart rendered"
    return figures[0]


def _trace_names(figure: dict) -> list[str]:
    return [t.get("name") for t in figure["data"]]


@pytest.fixture
def aapl(dash_settings):
    # Two hours of ticks every 10 s: 120 one-minute candles.
    insert_ticks(dash_settings.postgres_dsn, "AAPL", count=720, end=now_utc(), step_s=10, start_price=100.0, drift=0.01)
    build_candles(dash_settings.postgres_dsn, "AAPL")
    return dash_settings


def test_candlestick_with_volume_panel_and_latest_ticks(run_page, aapl) -> None:
    at = run_page("symbol", aapl, symbol="AAPL")
    assert not at.exception
    figure = _figure(at)
    kinds = [t["type"] for t in figure["data"]]
    assert kinds == ["candlestick", "bar"]
    assert len(figure["data"][0]["x"]) >= 120  # the 1D default range holds every 1-minute candle
    assert "1-minute candles" in texts(at.caption)
    table = at.dataframe[0].value
    assert len(table) == 50 and table["price"].iloc[0] == pytest.approx(107.19)  # newest first
    assert "Unknown symbol" not in texts(at.warning)


def test_overlays_add_sma_ema_and_vwap_lines(run_page, aapl) -> None:
    at = run_page("symbol", aapl, symbol="AAPL")
    at.multiselect(key="symbol_overlays").set_value(["SMA", "EMA", "VWAP"]).run()
    assert not at.exception
    assert _trace_names(_figure(at))[1:4] == ["SMA 20", "EMA 20", "VWAP"]


@pytest.mark.parametrize(("range_key", "expected_label", "max_candles"), [
    ("1H", "1-minute candles", 60),
    ("5D", "15-minute candles", 9),
    ("1M", "1-hour candles", 3),
])  # fmt: skip
def test_every_range_draws(run_page, aapl, range_key, expected_label, max_candles) -> None:
    at = run_page("symbol", aapl, symbol="AAPL")
    at.radio(key="symbol_range").set_value(range_key).run()
    assert not at.exception
    assert len(_figure(at)["data"][0]["x"]) <= max_candles
    assert expected_label in texts(at.caption)


def test_month_uses_daily_bars_once_compaction_built_them(run_page, aapl) -> None:
    seed_daily_bars(aapl.postgres_dsn, "AAPL", days=40, last_day=now_utc() - timedelta(days=1))
    at = run_page("symbol", aapl, symbol="AAPL")
    at.radio(key="symbol_range").set_value("1M").run()
    assert not at.exception
    days = _figure(at)["data"][0]["x"]
    assert len(days) == 30
    # Today is not compacted yet: its bar comes from today's 1-minute candles, so the chart ends at today.
    assert str(days[-1]).startswith(now_utc().date().isoformat())
    assert "daily bars (1 newest day(s) from 1-minute candles, not compacted yet)" in texts(at.caption)


def test_ticks_without_candles_are_aggregated_on_the_fly(run_page, dash_settings) -> None:
    insert_ticks(dash_settings.postgres_dsn, "MSFT", count=30, end=now_utc(), step_s=10)
    at = run_page("symbol", dash_settings, symbol="MSFT")
    assert not at.exception
    assert 5 <= len(_figure(at)["data"][0]["x"]) <= 6
    assert "built from raw ticks" in texts(at.caption)


def test_unknown_symbol_gets_a_friendly_message(run_page, aapl) -> None:
    at = run_page("symbol", aapl, symbol="ZZZZ")
    assert not at.exception
    assert "Unknown symbol **ZZZZ**" in texts(at.warning)
    assert not at.get("plotly_chart")


def test_malformed_symbol_gets_a_friendly_message(run_page, aapl) -> None:
    at = run_page("symbol", aapl)
    at.text_input(key="symbol_input").set_value("DROP TABLE;").run()
    assert not at.exception
    assert "is not a ticker symbol" in texts(at.warning)


def test_empty_database_says_no_data(run_page, dash_settings) -> None:
    at = run_page("symbol", dash_settings)
    assert not at.exception
    assert "No data for **AAPL** yet: it is watched" in texts(at.info)
    assert "Unknown symbol" not in texts(at.warning)


def test_postgres_down_shows_a_banner(run_page, dash_settings) -> None:
    down = dash_settings.replace(postgres_dsn=f"postgresql://stock@127.0.0.1:{free_port()}/nothing")
    at = run_page("symbol", down, symbol="AAPL")
    assert not at.exception
    assert "PostgreSQL is unavailable" in texts(at.error)
