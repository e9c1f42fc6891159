"""No log line of the producer (or the fake Finnhub) ever contains the API key, whatever goes wrong."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest

from stock_platform.config import Settings
from stock_platform.ingestion.fake_finnhub import LIMIT_BODY, FakeFinnhub, Scripted
from stock_platform_tests.ingestion.conftest import API_KEY

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _produce(settings: Settings, fake: FakeFinnhub, key: str, duration: float) -> subprocess.CompletedProcess[str]:
    env = os.environ | {
        "FINNHUB_API_KEY": key, "FINNHUB_REST_URL": fake.rest_url, "FINNHUB_WS_URL": fake.ws_url,
        "FINNHUB_FEEDS": "rest,ws", "STOCK_POLL_INTERVAL_SECONDS": "1", "FINNHUB_CALLS_PER_MINUTE": "600",
        "STOCK_SYMBOLS": "AAPL,MSFT,UNKNOWN", "KAFKA_TOPIC": settings.kafka_topic,
        "REDIS_KEY_PREFIX": settings.redis_key_prefix, "LOG_LEVEL": "DEBUG",
    }  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "stock_platform.cli", "produce", "--source", "finnhub", "--duration", str(duration)],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_the_key_never_reaches_a_log_line(
    platform_settings: Settings, fake: FakeFinnhub, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake.script(
        Scripted(status=500, body="Internal Server Error"), Scripted(drop=True), Scripted(delay=12.0),
        Scripted(body="{not json"), Scripted(status=429, body=LIMIT_BODY, headers={"Retry-After": "1"}), Scripted(zero=True),
    )  # fmt: skip
    fake.ws.script_error(f"bad request for token={API_KEY}")
    fake.ws.script_raw(f"garbage {API_KEY}")
    fake.ws.script_drop()
    ok = _produce(platform_settings, fake, API_KEY, duration=16)
    assert ok.returncode == 0, ok.stderr[-3000:]
    # it really went through the failure paths, with the key in play
    for sign in ("retry", "rate limited", "all-zero", "malformed", "connection lost", "reported an error", "token=****"):
        assert sign in ok.stderr, sign
    assert API_KEY not in ok.stderr and API_KEY not in ok.stdout

    wrong = "wrong-key-5c0ffee-should-not-leak"
    refused = _produce(platform_settings, fake, wrong, duration=30)
    assert refused.returncode == 2 and "FINNHUB_API_KEY" in refused.stderr
    assert wrong not in refused.stderr and wrong not in refused.stdout
    assert API_KEY not in caplog.text and wrong not in caplog.text
