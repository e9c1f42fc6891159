"""Each Finnhub WebSocket behaviour and the trade stream's reaction, against the fake Finnhub and the real Kafka broker."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import defaultdict
from collections.abc import Callable

import pytest

from stock_platform.config import Settings
from stock_platform.ingestion.fake_finnhub import FakeFinnhub
from stock_platform.ingestion.finnhub_ws import TradeStream
from stock_platform.ingestion.producer import QuoteProducer
from stock_platform.ingestion.run import ProduceOptions, run_produce
from stock_platform.ingestion.stats import FeedStats
from stock_platform.runtime.processes import wait_until
from stock_platform_tests.ingestion.conftest import API_KEY, read_topic, values

pytestmark = pytest.mark.integration


def _stream(
    settings: Settings,
    done: Callable[[FeedStats], bool],
    timeout: float = 30.0,
    during: Callable[[FeedStats], None] | None = None,
    **kw: float,
) -> tuple[FeedStats, TradeStream]:
    """Run a trade stream publishing to Kafka until `done(stats)`; `during` runs once it is connected."""
    stats, stop = FeedStats(), threading.Event()
    producer = QuoteProducer(settings, stats)
    stream = TradeStream(settings, producer.send, stats, stop, backoff_base=0.1, backoff_cap=0.5, **kw)
    thread = threading.Thread(target=stream.run, daemon=True)
    thread.start()
    if during is not None:
        assert wait_until(lambda: stats.events["ws_connect"] >= 1 and stats.published >= 1, timeout, interval=0.05)
        during(stats)
    wait_until(lambda: done(stats) or not thread.is_alive(), timeout, interval=0.05)
    stop.set()
    thread.join(10)
    producer.close()
    return stats, stream


def test_trades_are_published_with_their_volume(finnhub_settings: Settings, fake: FakeFinnhub) -> None:
    t = int(time.time() * 1000) + 600_000  # later than anything the fake streams meanwhile
    trades = [
        {"p": 101.25, "s": "AAPL", "t": t, "v": 10, "c": ["1"]},
        {"p": 101.5, "s": "AAPL", "t": t, "v": 5, "c": ["1"]},  # same millisecond: merged
        {"p": 250.0, "s": "MSFT", "t": t, "v": 3, "c": ["1"]},
    ]
    stats, _ = _stream(finnhub_settings, lambda s: s.published >= 20, during=lambda _: fake.ws.script_trades(trades))
    records = values(read_topic(finnhub_settings, expected=stats.published))
    assert len(records) == stats.published >= 20
    assert wait_until(lambda: fake.ws.unsubscribed == ["AAPL", "MSFT"], 5)  # a clean stop unsubscribes
    assert all(r["source"] == "finnhub-ws" and r["volume"] >= 1 and r["day_high"] is None for r in records)
    at_t = {(r["symbol"], r["price"], r["volume"]) for r in records if r["event_time_ms"] == t}
    assert at_t == {("AAPL", 101.5, 15), ("MSFT", 250.0, 3)}
    last: dict[str, int] = defaultdict(int)
    for r in records:  # one symbol is one partition, so its records are read in order
        assert r["event_time_ms"] > last[r["symbol"]]
        last[r["symbol"]] = r["event_time_ms"]


def test_pings_are_answered_and_the_connection_stays_up(finnhub_settings: Settings) -> None:
    with FakeFinnhub(API_KEY, json_ping_interval=0.3, protocol_ping_interval=0.3) as pinging:
        settings = finnhub_settings.replace(finnhub_ws_url=pinging.ws_url)
        stats, stream = _stream(settings, lambda s: s.events["ws_ping"] >= 8)
        assert stats.events["ws_ping"] >= 8  # JSON pings seen over > 2 s ...
        assert pinging.ws.connections == 1 and stream.connections == 1  # ... and protocol pings answered in time


def test_a_dropped_connection_is_reopened_and_resubscribed(finnhub_settings: Settings, fake: FakeFinnhub) -> None:
    published_before: list[int] = []

    def drop(stats: FeedStats) -> None:
        published_before.append(stats.published)
        fake.ws.script_drop()

    stats, _ = _stream(
        finnhub_settings, lambda s: s.events["ws_connect"] >= 2 and s.published > published_before[0] + 5, during=drop
    )
    assert stats.events["ws_reconnect"] >= 1 and fake.ws.connections >= 2
    assert fake.ws.subscriptions[0] == fake.ws.subscriptions[1] == ["AAPL", "MSFT"]
    assert len(read_topic(finnhub_settings, expected=stats.published)) == stats.published


def test_error_messages_are_counted_and_streaming_goes_on(finnhub_settings: Settings, fake: FakeFinnhub) -> None:
    marks: list[int] = []

    def inject(stats: FeedStats) -> None:
        fake.ws.script_error("Subscribing to too many symbols")
        fake.ws.script_raw("{this is not json")
        marks.append(stats.published)

    stats, _ = _stream(finnhub_settings, lambda s: s.events["ws_error"] >= 1 and s.published > marks[0] + 5, during=inject)
    assert stats.events["ws_error"] == 1 and stats.skipped["malformed"] == 1
    assert stats.events["ws_connect"] == 1  # neither needed a reconnect


def test_non_finite_and_absurd_trades_are_malformed_not_crashes(
    finnhub_settings: Settings, fake: FakeFinnhub, caplog: pytest.LogCaptureFixture
) -> None:
    t = int(time.time() * 1000) + 600_000  # later than anything the fake streams meanwhile
    good = {"p": 101.25, "s": "AAPL", "t": t, "v": 10, "c": ["1"]}
    bad = [
        {"p": math.inf}, {"p": -math.inf}, {"p": math.nan}, {"p": "101.5"}, {"v": math.inf}, {"v": math.nan},
        {"v": -5}, {"t": math.inf}, {"t": 12345678901234567890}, {"t": -1}, {"t": str(t)},
    ]  # fmt: skip
    marks: list[int] = []

    def inject(stats: FeedStats) -> None:
        fake.ws.script_trades([good | fields for fields in bad] + [good])  # json writes Infinity, NaN
        marks.append(stats.published)

    stats, stream = _stream(
        finnhub_settings, lambda s: s.skipped["malformed"] >= len(bad) and s.published > marks[0] + 5, during=inject
    )
    assert stats.skipped["malformed"] == len(bad) and stats.published > marks[0] + 5  # the stream went on
    assert stats.skipped["invalid"] == 0 and stream.connections == 1
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "malformed" in r.getMessage()]
    # once per kind: p not finite, p not a number, v not finite, v out of range, t not finite, t out of range,
    # t not a number
    assert len(warned) == 7, warned
    records = values(read_topic(finnhub_settings, expected=stats.published))
    assert [(r["price"], r["volume"]) for r in records if r["event_time_ms"] == t] == [(101.25, 10)]


def test_a_silent_connection_is_reopened(finnhub_settings: Settings) -> None:
    with FakeFinnhub(API_KEY, json_ping_interval=60.0) as quiet:
        settings = finnhub_settings.replace(finnhub_ws_url=quiet.ws_url, symbols=("UNKNOWN",))
        stats, _ = _stream(settings, lambda s: s.events["ws_connect"] >= 2, idle_timeout=1.0)
        assert stats.events["ws_idle"] >= 1 and quiet.ws.connections >= 2


def test_a_rejected_key_stops_with_one_clear_message(
    finnhub_settings: Settings, fake: FakeFinnhub, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = finnhub_settings.replace(finnhub_api_key="not-the-key", finnhub_feeds="ws")
    code = run_produce(settings, ProduceOptions(source="finnhub", symbols=settings.symbols, duration=30))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and fake.ws.refused == 1
    assert len(err) == 1 and "401" in err[0] and "FINNHUB_API_KEY" in err[0]


def test_rest_quotes_get_the_days_volume_from_trades(finnhub_settings: Settings) -> None:
    settings = finnhub_settings.replace(finnhub_feeds="rest,ws")
    stats, stop = FeedStats(), threading.Event()
    worker = threading.Thread(
        target=run_produce, args=(settings, ProduceOptions(source="finnhub", symbols=settings.symbols), stop, stats), daemon=True
    )
    worker.start()
    wait_until(lambda: stats.published >= 60, 30, interval=0.1)
    time.sleep(1.5)  # one more round of REST polls after trades have been counted
    stop.set()
    worker.join(30)
    records = values(read_topic(settings, expected=stats.published))
    trades: dict[str, int] = defaultdict(int)
    filled = 0
    for r in records:
        if r["source"] == "finnhub-ws":
            trades[r["symbol"]] += r["volume"]
        elif r["volume"] is not None:
            filled += 1
            assert 0 < r["volume"] <= trades[r["symbol"]]  # never more than the trades seen before it
    assert filled >= 1
    assert {r["source"] for r in records} == {"finnhub-ws", "finnhub-rest"}
