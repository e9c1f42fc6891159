"""The whole app through its entry point: navigation builds and the default page is the overview."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from streamlit.testing.v1 import AppTest

from stock_platform.dashboard.app import APP_PATH
from stock_platform.dashboard.cache import clear_caches
from stock_platform.dashboard.connections import reset_connections
from stock_platform_tests.dashboard.conftest import settings_env, texts
from stock_platform_tests.dashboard.seed import seed_hot_quote
from stock_platform_tests.databases import scratch_database

pytestmark = pytest.mark.integration


def test_entry_point_opens_on_the_market_overview(dash_settings, monkeypatch) -> None:
    for name, value in settings_env(dash_settings).items():
        monkeypatch.setenv(name, value)
    clear_caches()
    seed_hot_quote(dash_settings, "MSFT", price=420.5, prev_close=400.0)
    at = AppTest.from_file(str(APP_PATH), default_timeout=60).run()
    assert not at.exception
    assert at.title[0].value == "Market overview"
    assert {m.label: m.value for m in at.metric}["MSFT"] == "420.50"


@pytest.fixture
def unmigrated_database(dash_settings) -> Iterator[str]:
    """A database on the real server with none of the platform's tables."""
    with scratch_database(dash_settings.postgres_port, "bare") as dsn:
        yield dsn
        reset_connections()  # the dashboard's pooled connections to it, before it is dropped


@pytest.mark.parametrize("page", ["overview", "symbol", "compare", "pipeline"])
def test_an_unmigrated_database_is_called_not_set_up_not_down(run_page, dash_settings, unmigrated_database, page) -> None:
    at = run_page(page, dash_settings.replace(postgres_dsn=unmigrated_database))
    assert not at.exception
    warnings = texts(at.warning)
    assert "PostgreSQL is not set up yet" in warnings and "stock-platform migrate" in warnings
    assert "PostgreSQL is unavailable" not in texts(at.error)
