"""Fixtures for the dashboard tests: the app's environment pointed at this test's database and Redis prefix."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import pytest
from streamlit.testing.v1 import AppTest

from stock_platform.config import Settings
from stock_platform.dashboard.cache import clear_caches
from stock_platform.dashboard.connections import reset_connections
from stock_platform.runtime.postgres_auth import READER_ROLE, as_role

WATCHED = ("AAPL", "MSFT", "NVDA")


def free_port() -> int:
    """A TCP port nothing listens on (a closed port stands in for a service that is down)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment variables that make `load_settings()` return `settings` (for what the dashboard reads).

    POSTGRES_DSN names the dashboard's read-only role, as `make up` and docker-compose give it, so every page test
    also shows that SELECT is all the dashboard needs.
    """
    return {
        "POSTGRES_DSN": as_role(settings.postgres_dsn, READER_ROLE),
        "DASHBOARD_PASSWORD": settings.dashboard_password.get_secret_value(),
        "REDIS_URL": settings.redis_url,
        "REDIS_KEY_PREFIX": settings.redis_key_prefix,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "KAFKA_TOPIC": settings.kafka_topic,
        "STOCK_SYMBOLS": ",".join(settings.symbols),
        "DAGSTER_PORT": str(settings.dagster_port),
        "DAGSTER_URL": f"http://127.0.0.1:{settings.dagster_port}",
        "DEAD_LETTERS_WARN_PER_HOUR": str(settings.dead_letters_warn_per_hour),
        "DASHBOARD_REFRESH_SECONDS": str(settings.dashboard_refresh_seconds),
    }


@pytest.fixture
def dash_settings(platform_settings: Settings, clean_tables: str) -> Settings:
    """Settings for one dashboard test: empty tables, a fresh Redis prefix, three watched symbols, no Dagster."""
    return platform_settings.replace(symbols=WATCHED, dagster_port=free_port(), dashboard_refresh_seconds=5.0)


@pytest.fixture
def run_page(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., AppTest]]:
    """Run one page (`overview`, `symbol`, `compare`, `pipeline`) under AppTest with `settings` in the environment."""

    def run(page: str, settings: Settings, **query: str) -> AppTest:
        for name, value in settings_env(settings).items():
            monkeypatch.setenv(name, value)
        clear_caches()
        at = AppTest.from_string(f"from stock_platform.dashboard.views import {page}\n{page}.render()\n", default_timeout=60)
        for name, value in query.items():
            at.query_params[name] = value
        return at.run()

    yield run
    clear_caches()
    reset_connections()


def texts(elements: object) -> str:
    """All the text of a sequence of AppTest elements (alerts, captions, markdown), joined for `in` checks."""
    return "\n".join(str(getattr(e, "value", "")) for e in elements)  # type: ignore[attr-defined]


def _decode(value: object) -> object:
    # Plotly 6+ sends numeric arrays as base64 typed arrays: {"dtype": "f8", "bdata": "..."}.
    if isinstance(value, dict) and "bdata" in value and "dtype" in value:
        import base64

        import numpy as np

        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"])).tolist()
    if isinstance(value, dict):
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def plotly_figures(at: AppTest) -> list[dict]:
    """Every Plotly figure the page drew, as JSON with numeric arrays decoded to lists."""
    import json

    return [_decode(json.loads(chart.proto.spec)) for chart in at.get("plotly_chart")]
