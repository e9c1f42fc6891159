"""`streamlit run` for real, each page opened in Debian's headless Chromium (driven by Playwright).

Waits for every page's Plotly charts to draw, checks Streamlit shows no
exception box, and saves one PNG per page under `.test-artifacts/dashboard/`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from stock_platform.config import DEFAULT_SYMBOLS, Settings
from stock_platform.dashboard.commands import streamlit_argv
from stock_platform.runtime.processes import start_detached, stop_pid, wait_until
from stock_platform.runtime.system_packages import ensure_commands
from stock_platform_tests.dashboard.conftest import free_port, settings_env
from stock_platform_tests.dashboard.seed import (
    build_candles,
    insert_ticks,
    now_utc,
    seed_dead_letter,
    seed_heartbeat,
    seed_hot_quote,
    seed_stream_batch,
)

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.slow]

ARTIFACTS = Path(__file__).resolve().parents[2] / ".test-artifacts" / "dashboard"
CHROMIUM = "/usr/bin/chromium"
# Headless Debian has no colour emoji font; the pages use emoji for the traffic lights and page icons.
EMOJI_FONT = "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
]  # fmt: skip
# (name, path, Plotly charts the page must draw, its heading)
PAGES = [
    ("overview", "", len(DEFAULT_SYMBOLS), "Market overview"),  # the default page lives at /
    ("symbol", "symbol?symbol=AAPL", 1, "Symbol view"),
    ("compare", "compare", 1, "Compare"),
    ("health", "health", 1, "Pipeline health"),
]


def _seed(settings: Settings) -> None:
    end = now_utc()
    for i, symbol in enumerate(settings.symbols):
        base = 100.0 + 50 * i
        insert_ticks(
            settings.postgres_dsn, symbol, count=1080, end=end, step_s=20, start_price=base, drift=0.004 * (i % 3 - 1), noise=1.5
        )
        build_candles(settings.postgres_dsn, symbol)
        # Some symbols up on the day, some down, so the tiles show both colours.
        seed_hot_quote(settings, symbol, price=base, prev_close=base * (0.98 if i % 3 else 1.015), points=60, noise=0.4)
    seed_heartbeat(settings, "producer", age_s=2, published=360, failed=0)
    seed_heartbeat(settings, "stream", age_s=4, batch_id=12)
    seed_stream_batch(settings.postgres_dsn, settings.kafka_topic, 12, {settings.kafka_topic: {"0": 0, "1": 0, "2": 0}}, 1080)
    seed_dead_letter(settings.postgres_dsn, settings.kafka_topic, 7, "not valid JSON: Expecting value: line 1 column 1")


@contextmanager
def _serving(settings: Settings, tmp_path: Path) -> Iterator[str]:
    """`streamlit run` serving the dashboard with `settings` on a free port; its URL; stopped afterwards."""
    port = free_port()
    env = {**os.environ, **settings_env(settings), "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    env["DASHBOARD_REFRESH_SECONDS"] = "600"  # no self-refresh in the middle of a screenshot
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pid = start_detached(streamlit_argv(port), ARTIFACTS / "streamlit.log", tmp_path / "streamlit.pid", env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        assert wait_until(lambda: requests.get(f"{url}/_stcore/health", timeout=1).ok, 60), "streamlit did not start"
        yield url
    finally:
        stop_pid(pid, timeout=10)


@pytest.fixture
def seeded(dash_settings: Settings) -> Settings:
    """Every default symbol with ticks, candles and a hot quote; heartbeats, a stream batch and a dead letter."""
    seeded = dash_settings.replace(symbols=DEFAULT_SYMBOLS)
    _seed(seeded)
    return seeded


@pytest.fixture
def dashboard_url(seeded: Settings, tmp_path: Path) -> Iterator[str]:
    """The seeded platform's dashboard, open to all."""
    with _serving(seeded, tmp_path) as url:
        yield url


def test_every_page_renders_in_chromium(dashboard_url: str) -> None:
    ensure_commands([(CHROMIUM, "chromium"), (EMOJI_FONT, "fonts-noto-color-emoji")])
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1500})
            for name, path, charts, heading in PAGES:
                page.goto(f"{dashboard_url}/{path}", wait_until="domcontentloaded")
                page.get_by_role("heading", name=heading).first.wait_for(timeout=30_000)
                drawn = page.locator('[data-testid="stPlotlyChart"] .js-plotly-plot .main-svg')
                drawn.nth(charts - 1).wait_for(timeout=30_000)
                # The run is over when Streamlit's "running" widget is gone; then let the last traces paint.
                page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden", timeout=30_000)
                page.wait_for_timeout(800)
                page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
                assert page.locator('[data-testid="stException"]').count() == 0, f"{name}: Streamlit shows an exception"
                assert page.locator('[data-testid="stPlotlyChart"]').count() >= charts
                assert (ARTIFACTS / f"{name}.png").stat().st_size > 10_000
        finally:
            browser.close()


def test_with_a_password_every_url_shows_only_the_login_until_it_is_given(seeded: Settings, tmp_path: Path) -> None:
    """The navigation is built but hidden and no page runs until the password is given, so no URL reaches a page or its data."""
    ensure_commands([(CHROMIUM, "chromium")])
    from playwright.sync_api import sync_playwright

    with _serving(seeded.replace(dashboard_password="s3cret-dashboard"), tmp_path) as url:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                for name, path, _, heading in PAGES:
                    page.goto(f"{url}/{path}", wait_until="domcontentloaded")
                    page.get_by_label("Dashboard password").wait_for(timeout=30_000)
                    page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden", timeout=30_000)
                    page.screenshot(path=str(ARTIFACTS / f"login-{name}.png"))
                    assert page.get_by_role("heading", name=heading).count() == 0, f"{name}: a page heading shows"
                    for testid in ("stMetric", "stPlotlyChart", "stDataFrame", "stSidebarNav", "stException"):
                        assert page.locator(f'[data-testid="{testid}"]').count() == 0, f"{name}: {testid} shows"
                page.goto(f"{url}/symbol?symbol=AAPL", wait_until="domcontentloaded")
                page.get_by_label("Dashboard password").fill("not-it")
                page.get_by_role("button", name="Sign in").click()
                page.get_by_text("Wrong password.").wait_for(timeout=30_000)
                assert page.get_by_role("heading", name="Symbol view").count() == 0
                page.get_by_label("Dashboard password").fill("s3cret-dashboard")
                page.get_by_role("button", name="Sign in").click()
                page.get_by_role("heading", name="Symbol view").first.wait_for(timeout=30_000)
                page.locator('[data-testid="stPlotlyChart"]').first.wait_for(timeout=30_000)
            finally:
                browser.close()
