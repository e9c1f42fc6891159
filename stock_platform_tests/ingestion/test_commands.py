"""The command line: `stock-platform fake-finnhub` serves a demo Finnhub that `stock-platform produce` reads from."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import pytest
import requests

from stock_platform.config import Settings
from stock_platform.quotes import parse_quote
from stock_platform_tests.ingestion.conftest import read_topic

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_fake_finnhub_command_feeds_the_produce_command(platform_settings: Settings) -> None:
    rest_port, ws_port = _free_port(), _free_port()
    fake = subprocess.Popen(
        [sys.executable, "-m", "stock_platform.cli", "fake-finnhub", "--port", str(rest_port), "--ws-port", str(ws_port),
         "--api-key", "demo-key"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert fake.stdout is not None
        urls = dict(fake.stdout.readline().strip().split("=", 1) for _ in range(2))
        assert urls["FINNHUB_REST_URL"] == f"http://127.0.0.1:{rest_port}/api/v1"
        quote = requests.get(
            f"{urls['FINNHUB_REST_URL']}/quote", params={"symbol": "AAPL", "token": "demo-key"}, timeout=5
        ).json()
        assert set(quote) == {"c", "d", "dp", "h", "l", "o", "pc", "t"} and quote["c"] > 0
        env = os.environ | urls | {
            "FINNHUB_API_KEY": "demo-key", "KAFKA_TOPIC": platform_settings.kafka_topic,
            "REDIS_KEY_PREFIX": platform_settings.redis_key_prefix, "STOCK_POLL_INTERVAL_SECONDS": "1",
        }  # fmt: skip
        produced = subprocess.run(
            [sys.executable, "-m", "stock_platform.cli", "produce", "--symbols", "AAPL", "MSFT", "--max-records", "30"],
            env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert produced.returncode == 0, produced.stderr[-2000:]
    finally:
        fake.send_signal(signal.SIGTERM)
        fake.wait(timeout=30)
    assert fake.returncode == 0
    quotes = [parse_quote(r.value) for r in read_topic(platform_settings, expected=30)]
    assert len(quotes) == 30
    assert {q.symbol for q in quotes} == {"AAPL", "MSFT"}
    assert {q.source for q in quotes} <= {"finnhub-rest", "finnhub-ws"} and "finnhub-ws" in {q.source for q in quotes}
