"""The whole app through its entry point: navigation builds and the default page is the overview."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from stock_platform.dashboard.app import APP_PATH
from stock_platform.dashboard.cache import clear_caches
from stock_platform_tests.dashboard.conftest import settings_env
from stock_platform_tests.dashboard.seed import seed_hot_quote

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
