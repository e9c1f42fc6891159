"""Each Finnhub REST behaviour and the poller's reaction, against the fake Finnhub and the real Kafka broker."""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from stock_platform.config import Settings
from stock_platform.ingestion.fake_finnhub import LIMIT_BODY, FakeFinnhub, Scripted
from stock_platform.ingestion.producer import QuoteProducer
from stock_platform.ingestion.rest_poller import RestPoller
from stock_platform.ingestion.run import ProduceOptions, run_produce
from stock_platform.ingestion.stats import FeedStats
from stock_platform.runtime.processes import wait_until
from stock_platform_tests.ingestion.conftest import API_KEY, read_topic, values

pytestmark = pytest.mark.integration


def _poll(settings: Settings, done: Callable[[FeedStats], bool], timeout: float = 30.0, **kw: float) -> tuple[FeedStats, list]:
    """Run a poller publishing to Kafka until `done(stats)`; returns the stats and any error it raised."""
    stats, stop, errors = FeedStats(), threading.Event(), []
    producer = QuoteProducer(settings, stats)
    options = {"backoff_base": 0.05, "backoff_cap": 0.2, "rate_limit_backoff": 0.3, "timeout": 1.0} | kw
    poller = RestPoller(settings, producer.send, stats, stop, **options)

    def run() -> None:
        try:
            poller.run()
        except Exception as e:  # noqa: BLE001 - the test inspects it
            errors.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    wait_until(lambda: done(stats) or not thread.is_alive(), timeout, interval=0.05)
    stop.set()
    thread.join(10)
    producer.close()
    return stats, errors


def test_quotes_are_published_with_finnhubs_fields(finnhub_settings: Settings) -> None:
    stats, errors = _poll(finnhub_settings, lambda s: s.published >= 4)
    assert not errors and stats.published >= 4
    records = values(read_topic(finnhub_settings, expected=stats.published))
    assert len(records) == stats.published
    assert {r["symbol"] for r in records} == {"AAPL", "MSFT"}
    for r in records:
        assert r["source"] == "finnhub-rest" and r["event_time_ms"] % 1000 == 0
        assert r["day_low"] <= r["price"] <= r["day_high"] and r["prev_close"] > 0 and r["open_price"] > 0
        assert r["volume"] is None  # /quote has no volume and no trade stream ran


def test_all_zero_answers_are_counted_and_skipped(finnhub_settings: Settings, fake: FakeFinnhub) -> None:
    settings = finnhub_settings.replace(symbols=("UNKNOWN", "AAPL"))
    fake.script(Scripted(zero=True), symbol="AAPL")
    stats, _ = _poll(settings, lambda s: s.skipped["all_zero"] >= 3 and s.published >= 1)
    assert stats.skipped["all_zero"] >= 3
    records = values(read_topic(settings, expected=stats.published))
    assert records and {r["symbol"] for r in records} == {"AAPL"}
    assert all(r["price"] > 0 for r in records)


def test_an_unchanged_t_is_published_once(finnhub_settings: Settings, fake: FakeFinnhub) -> None:
    settings = finnhub_settings.replace(symbols=("AAPL",))
    fake.script(*[Scripted(t=1_764_100_000)] * 3, symbol="AAPL")
    stats, _ = _poll(settings, lambda s: s.skipped["unchanged"] >= 2)
    assert stats.skipped["unchanged"] >= 2
    records = values(read_topic(settings, expected=stats.published))
    assert [r["event_time_ms"] for r in records].count(1_764_100_000_000) == 1


def test_429_with_retry_after_pauses_every_call_and_keeps_the_schedule(finnhub_settings: Settings, fake: FakeFinnhub) -> None:
    fake.script(Scripted(status=429, body=LIMIT_BODY, headers={"Retry-After": "2"}), symbol="AAPL")
    stats, _ = _poll(finnhub_settings, lambda s: s.events["rate_limited"] >= 1 and s.published >= 3)
    limited = next(r for r in fake.requests if r.status == 429)
    later = [r for r in fake.requests if r.at > limited.at]
    assert later and min(r.at for r in later) - limited.at >= 1.9  # no call at all during Retry-After
    assert any(r.symbol == "AAPL" and r.status == 200 for r in later)  # the same symbol was tried again
    assert any(r.symbol == "MSFT" for r in later)  # and the other symbol kept its slots
    symbols = {r["symbol"] for r in values(read_topic(finnhub_settings, expected=stats.published))}
    assert symbols == {"AAPL", "MSFT"}


def test_429_with_an_http_date_retry_after_is_honoured(finnhub_settings: Settings, fake: FakeFinnhub) -> None:
    settings = finnhub_settings.replace(symbols=("AAPL",))
    until = format_datetime(datetime.now(UTC) + timedelta(seconds=3), usegmt=True)  # whole seconds: 2-3 s from now
    fake.script(Scripted(status=429, body=LIMIT_BODY, headers={"Retry-After": until}), symbol="AAPL")
    stats, _ = _poll(settings, lambda s: s.events["rate_limited"] >= 1 and s.published >= 1)
    limited = next(r for r in fake.requests if r.status == 429)
    later = [r for r in fake.requests if r.at > limited.at]
    assert later and min(r.at for r in later) - limited.at >= 1.5, "the poller did not wait for the date it was given"


def test_429_without_retry_after_backs_off_exponentially(finnhub_settings: Settings, fake: FakeFinnhub) -> None:
    settings = finnhub_settings.replace(symbols=("AAPL",))
    fake.script(*[Scripted(status=429, body=LIMIT_BODY)] * 3, symbol="AAPL")
    stats, _ = _poll(settings, lambda s: s.published >= 1)
    assert stats.events["rate_limited"] == 3 and stats.published >= 1
    times = [r.at for r in fake.requests[:4]]
    assert [r.status for r in fake.requests[:4]] == [429, 429, 429, 200]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert all(g >= 0.29 for g in gaps)  # at least the base backoff each time


def test_5xx_timeouts_and_dropped_connections_are_retried(finnhub_settings: Settings, fake: FakeFinnhub) -> None:
    settings = finnhub_settings.replace(symbols=("AAPL",))
    fake.script(
        Scripted(status=500, body="Internal Server Error"), Scripted(status=503, body="unavailable"),
        Scripted(delay=2.0), Scripted(drop=True), symbol="AAPL",
    )  # fmt: skip
    stats, errors = _poll(settings, lambda s: s.published >= 1, max_attempts=6)
    assert not errors
    assert stats.events["retry"] == 4 and stats.published >= 1
    # the slow 200 is logged when the fake finally answered, after the client had given up on it
    assert sorted(fake.statuses("AAPL")[:5]) == [0, 200, 200, 500, 503]
    assert len(read_topic(settings, expected=stats.published)) == stats.published


def test_a_symbol_is_given_up_for_the_cycle_after_max_attempts(finnhub_settings: Settings, fake: FakeFinnhub) -> None:
    settings = finnhub_settings.replace(symbols=("AAPL",))
    fake.script(*[Scripted(status=502, body="Bad Gateway")] * 3, symbol="AAPL")
    stats, _ = _poll(settings, lambda s: s.published >= 1, max_attempts=3)
    assert stats.events["gave_up"] == 1 and stats.events["retry"] == 3
    assert stats.published >= 1  # the next cycle went on


def test_malformed_json_is_counted_and_skipped(finnhub_settings: Settings, fake: FakeFinnhub) -> None:
    settings = finnhub_settings.replace(symbols=("AAPL",))
    fake.script(Scripted(body='{"c": 1.5, "t": '), Scripted(body='["not", "an", "object"]'), symbol="AAPL")
    stats, _ = _poll(settings, lambda s: s.published >= 1)
    assert stats.skipped["malformed"] == 2 and stats.published >= 1


def test_non_finite_and_absurd_numbers_are_malformed_answers_not_crashes(
    finnhub_settings: Settings, fake: FakeFinnhub, caplog: pytest.LogCaptureFixture
) -> None:
    settings = finnhub_settings.replace(symbols=("AAPL",), poll_interval_seconds=0.2)
    bad = [
        {"c": math.inf}, {"c": math.inf}, {"h": -math.inf}, {"pc": math.nan}, {"t": math.inf},
        {"t": 12345678901234567890}, {"t": -1}, {"c": "101.5"},
    ]  # fmt: skip
    fake.script(*[Scripted(fields=fields) for fields in bad], symbol="AAPL")  # sent as Infinity, NaN, ...
    stats, errors = _poll(settings, lambda s: s.published >= 2)
    assert not errors and stats.skipped["malformed"] == len(bad) and stats.published >= 2  # and it kept polling
    assert stats.skipped["invalid"] == 0  # caught as malformed, before the contract is even asked
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "malformed" in r.getMessage()]
    # once per kind: c, h, pc and t not finite; t out of range (20 digits, negative); c not a number
    assert len(warned) == 6, warned
    records = values(read_topic(settings, expected=stats.published))
    assert len(records) == stats.published and all(math.isfinite(r["price"]) for r in records)


def test_the_poller_stays_under_both_call_limits(finnhub_settings: Settings) -> None:
    symbols = tuple(f"S{i:02d}" for i in range(20))
    settings = finnhub_settings.replace(
        symbols=symbols, poll_interval_seconds=1.0, finnhub_calls_per_second=4, finnhub_calls_per_minute=30
    )
    with FakeFinnhub(API_KEY, calls_per_second=4, calls_per_minute=30) as strict:
        settings = settings.replace(finnhub_rest_url=strict.rest_url)
        stats, _ = _poll(settings, lambda s: len(strict.requests) >= 12, timeout=30)
        times = [r.at for r in strict.requests]
        assert len(times) >= 12
        assert 429 not in strict.statuses()
        assert all(sum(1 for t in times if start <= t < start + 0.999) <= 4 for start in times)
    assert stats.published == len(times)


def test_401_stops_with_one_clear_message(
    finnhub_settings: Settings, fake: FakeFinnhub, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = finnhub_settings.replace(finnhub_api_key="wrong-key", finnhub_feeds="rest")
    code = run_produce(settings, ProduceOptions(source="finnhub", symbols=settings.symbols, duration=30))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and "FINNHUB_API_KEY" in err[0] and "401" in err[0] and "Invalid API key" in err[0]
    assert fake.statuses() == [401]  # it stopped at once instead of retrying


def test_403_stops_with_one_clear_message(
    finnhub_settings: Settings, fake: FakeFinnhub, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.script(Scripted(status=403, body='{"error":"You don\'t have access to this resource."}'))
    settings = finnhub_settings.replace(finnhub_feeds="rest")
    code = run_produce(settings, ProduceOptions(source="finnhub", symbols=settings.symbols, duration=30))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and "403" in err[0] and "FINNHUB_API_KEY" in err[0]


def test_no_key_means_no_finnhub_source(finnhub_settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    settings = finnhub_settings.replace(finnhub_api_key="")
    assert run_produce(settings, ProduceOptions(source="finnhub", symbols=settings.symbols)) == 2
    assert "FINNHUB_API_KEY" in capsys.readouterr().err


def test_the_fake_answers_429_without_a_token(fake: FakeFinnhub) -> None:
    import requests

    response = requests.get(f"{fake.rest_url}/quote", params={"symbol": "AAPL"}, timeout=5)
    assert response.status_code == 429 and response.text.startswith("API limit reached")
    candle = requests.get(f"{fake.rest_url}/stock/candle", params={"symbol": "AAPL", "token": API_KEY}, timeout=5)
    assert candle.status_code == 403
