"""The market overview page against real PostgreSQL and Redis seeded by the tests."""

from __future__ import annotations

import pytest

from stock_platform_tests.dashboard.conftest import free_port, texts
from stock_platform_tests.dashboard.seed import insert_ticks, now_utc, seed_hot_quote

pytestmark = pytest.mark.integration


def _metrics(at) -> dict[str, tuple[str, str | None]]:
    return {m.label: (m.value, m.delta or None) for m in at.metric}


def test_empty_database_and_redis_says_what_is_missing(run_page, dash_settings) -> None:
    at = run_page("overview", dash_settings)
    assert not at.exception
    assert "No quotes yet" in texts(at.info)
    assert _metrics(at) == {"AAPL": ("—", None), "MSFT": ("—", None), "NVDA": ("—", None)}
    assert not at.error


def test_tiles_come_from_redis_with_change_against_previous_close(run_page, dash_settings) -> None:
    seed_hot_quote(dash_settings, "AAPL", price=110.0, prev_close=100.0, points=30)
    seed_hot_quote(dash_settings, "MSFT", price=95.0, prev_close=100.0, points=30)
    at = run_page("overview", dash_settings)
    assert not at.exception
    metrics = _metrics(at)
    assert metrics["AAPL"] == ("110.00", "+10.00 (+10.00%)")
    assert metrics["MSFT"] == ("95.00", "-5.00 (-5.00%)")
    assert metrics["NVDA"] == ("—", None)
    assert len(at.get("plotly_chart")) == 2  # one sparkline per symbol with ticks
    assert "· redis" in texts(at.caption)
    assert "No quotes yet" not in texts(at.info)


def test_falls_back_to_postgres_when_redis_has_nothing(run_page, dash_settings) -> None:
    insert_ticks(dash_settings.postgres_dsn, "NVDA", count=60, end=now_utc(), step_s=10, start_price=200.0, prev_close=190.0)
    at = run_page("overview", dash_settings)
    assert not at.exception
    value, delta = _metrics(at)["NVDA"]
    assert value == "202.95"  # 200 + 59 * 0.05
    assert delta == "+12.95 (+6.82%)"
    assert "· postgres" in texts(at.caption)
    assert len(at.get("plotly_chart")) == 1


def test_malformed_symbol_in_watchlist_gets_a_friendly_message(run_page, dash_settings) -> None:
    at = run_page("overview", dash_settings)
    at.text_input(key="watchlist_symbols").set_value("AAPL, not a symbol!, zzzz").run()
    assert not at.exception
    assert "is not a ticker symbol" in texts(at.warning)
    # The valid ones are still shown, lower case upper-cased; the unknown one says it has no data.
    assert set(_metrics(at)) == {"AAPL", "ZZZZ"}
    assert "no data yet" in texts(at.caption)


def test_redis_down_shows_a_warning_and_postgres_prices(run_page, dash_settings) -> None:
    insert_ticks(dash_settings.postgres_dsn, "AAPL", count=10, end=now_utc(), start_price=150.0)
    down = dash_settings.replace(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    at = run_page("overview", down)
    assert not at.exception
    assert "Redis is unavailable" in texts(at.warning)
    assert _metrics(at)["AAPL"][0] == "150.45"


def test_both_services_down_show_a_banner_not_a_traceback(run_page, dash_settings) -> None:
    port = free_port()
    down = dash_settings.replace(
        redis_url=f"redis://127.0.0.1:{port}/0",
        postgres_dsn=f"postgresql://stock@127.0.0.1:{port}/nothing",
    )
    at = run_page("overview", down)
    assert not at.exception
    assert "is unavailable" in texts(at.error)
    assert not at.metric


def test_invalid_setting_is_named_not_a_traceback(dash_settings, monkeypatch) -> None:
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("DASHBOARD_REFRESH_SECONDS", "soon")
    at = AppTest.from_string("from stock_platform.dashboard.views import overview\noverview.render()\n").run(timeout=60)
    assert not at.exception
    assert "DASHBOARD_REFRESH_SECONDS" in texts(at.error)


def test_missing_previous_close_comes_from_the_previous_days_last_candle(run_page, dash_settings) -> None:
    from datetime import datetime

    from stock_platform_tests.dashboard.seed import build_candles

    dsn = dash_settings.postgres_dsn
    insert_ticks(dsn, "MSFT", count=5, end=datetime(2026, 3, 1, 23, 59), start_price=80.0, drift=0.0, prev_close=None)
    insert_ticks(dsn, "MSFT", count=5, end=datetime(2026, 3, 2, 10, 0), start_price=90.0, drift=0.0, prev_close=None)
    build_candles(dsn, "MSFT")
    seed_hot_quote(dash_settings, "MSFT", price=100.0, prev_close=None)
    seed_hot_quote(dash_settings, "AAPL", price=50.0, prev_close=None)  # no candles at all: no change shown
    at = run_page("overview", dash_settings)
    assert not at.exception
    metrics = _metrics(at)
    assert metrics["MSFT"] == ("100.00", "+20.00 (+25.00%)")
    assert metrics["AAPL"] == ("50.00", None)
    assert "no previous close yet" in texts(at.caption)


def test_postgres_down_keeps_the_hot_tiles_and_says_so(run_page, dash_settings) -> None:
    seed_hot_quote(dash_settings, "AAPL", price=110.0, prev_close=100.0)
    down = dash_settings.replace(postgres_dsn=f"postgresql://stock@127.0.0.1:{free_port()}/nothing")
    at = run_page("overview", down)
    assert not at.exception
    assert "PostgreSQL is unavailable" in texts(at.warning)
    assert _metrics(at)["AAPL"] == ("110.00", "+10.00 (+10.00%)")
