"""The compare page: symbols rebased to 100 at the range start on one chart."""

from __future__ import annotations

import pytest

from stock_platform_tests.dashboard.conftest import free_port, plotly_figures, texts
from stock_platform_tests.dashboard.seed import build_candles, insert_ticks, now_utc

pytestmark = pytest.mark.integration


@pytest.fixture
def two_symbols(dash_settings):
    end = now_utc()
    # AAPL rises 10% over the hour (100 -> 110), MSFT falls 10% (300 -> 270).
    insert_ticks(dash_settings.postgres_dsn, "AAPL", count=61, end=end, step_s=60, start_price=100.0, drift=10 / 60)
    insert_ticks(dash_settings.postgres_dsn, "MSFT", count=61, end=end, step_s=60, start_price=300.0, drift=-30 / 60)
    build_candles(dash_settings.postgres_dsn, "AAPL")
    build_candles(dash_settings.postgres_dsn, "MSFT")
    return dash_settings


def _lines(at) -> dict[str, list[float]]:
    figure = plotly_figures(at)[0]
    return {t["name"]: t["y"] for t in figure["data"] if t.get("name")}


def test_symbols_are_rebased_to_100(run_page, two_symbols) -> None:
    at = run_page("compare", two_symbols)
    at.text_input(key="compare_symbols").set_value("AAPL, msft").run()
    assert not at.exception
    lines = _lines(at)
    assert set(lines) == {"AAPL", "MSFT"}
    assert lines["AAPL"][0] == pytest.approx(100.0) and lines["MSFT"][0] == pytest.approx(100.0)
    assert lines["AAPL"][-1] == pytest.approx(110.0, abs=0.1)
    assert lines["MSFT"][-1] == pytest.approx(90.0, abs=0.1)
    table = at.dataframe[0].value
    assert list(table["symbol"]) == ["AAPL", "MSFT"]


def test_unknown_and_malformed_symbols_are_named(run_page, two_symbols) -> None:
    at = run_page("compare", two_symbols)
    at.text_input(key="compare_symbols").set_value("AAPL, ZZZZ, bad symbol!").run()
    assert not at.exception
    warnings = texts(at.warning)
    assert "No candles for ZZZZ" in warnings
    assert "is not a ticker symbol" in warnings
    assert set(_lines(at)) == {"AAPL"}


def test_empty_database_says_nothing_to_compare(run_page, dash_settings) -> None:
    at = run_page("compare", dash_settings)
    assert not at.exception
    assert "Nothing to compare yet" in texts(at.info)
    assert not at.get("plotly_chart")


def test_postgres_down_shows_a_banner(run_page, dash_settings) -> None:
    down = dash_settings.replace(postgres_dsn=f"postgresql://stock@127.0.0.1:{free_port()}/nothing")
    at = run_page("compare", down)
    assert not at.exception
    assert "PostgreSQL is unavailable" in texts(at.error)
